/**
 * The copy-from-file lookup (issue 14, item 3): code repeats itself locally, so the longest tail of the text before
 * the cursor that occurs elsewhere in the same file often continues the way it continued there. This finds that
 * occurrence and copies what followed it up to the end of its line. It is the recipe's baseline row
 * (models/recipe/unmask/metrics.py `copy_from_file`, kind "single-line") in TypeScript, so the extension's copy candidate
 * and the eval's baseline are the same text. Pure: no I/O.
 */

export interface CopyMatch {
  /** What followed the earlier occurrence, up to the end of its line (the newline not included). */
  readonly text: string;
  /** Length in characters of the repeated tail of the prefix that found it: longer is more specific. */
  readonly matchLength: number;
}

/**
 * The longest tail of `prefix` that also occurs in `text` (= prefix + suffix) other than at the end of the prefix
 * itself, and where that occurrence starts: the nearest one before the cursor, else the first one after it.
 * A tail that recurs with length L recurs with every shorter length (its own tails), so the length is bisected.
 */
export function longestRepeatedTail(prefix: string, text: string): { length: number; start: number } {
  const end = prefix.length;
  const where = (length: number): number => {
    const tail = prefix.slice(end - length);
    // lastIndexOf's position is where a match may start at the latest: ending before the cursor's own tail does.
    const before = end - 1 - length >= 0 ? text.lastIndexOf(tail, end - 1 - length) : -1;
    if (before >= 0) return before;
    return text.indexOf(tail, end - length + 1);
  };
  let lo = 0;
  let hi = end;
  let best = { length: 0, start: -1 };
  while (lo < hi) {
    const mid = Math.floor((lo + hi + 1) / 2);
    const start = where(mid);
    if (start >= 0) {
      lo = mid;
      best = { length: mid, start };
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

/** The copy for a cursor between `prefix` and `suffix`; undefined when nothing recurs or the copy is blank. */
export function copyFromFile(prefix: string, suffix: string): CopyMatch | undefined {
  const text = prefix + suffix;
  const { length, start } = longestRepeatedTail(prefix, text);
  if (length === 0) return undefined;
  const rest = text.slice(start + length);
  const newline = rest.indexOf('\n');
  const line = newline >= 0 ? rest.slice(0, newline) : rest;
  if (line.trim() === '') return undefined;
  return { text: line, matchLength: length };
}

/**
 * Longest tail of the prefix looked for in other files, in characters: a run this long is as specific as a run gets,
 * and each bisection step scans every other text once.
 */
export const MAX_OTHER_RUN = 256;

/**
 * The copy from other open files: the longest tail of `prefix` (at most MAX_OTHER_RUN characters) that occurs in one
 * of `others` (most recent first; the first text wins a tie), and what followed it there up to the end of its line.
 * Code repeats across the files of a project too: imports, keyword definitions, the same call in a sibling module.
 * Undefined when no tail occurs or the copy is blank.
 */
export function copyFromOtherFiles(prefix: string, others: readonly string[]): CopyMatch | undefined {
  let best: { length: number; text: string } | undefined;
  const hi = Math.min(prefix.length, MAX_OTHER_RUN);
  for (const text of others) {
    // Only a longer run than the best so far can win: bisect over (best, hi].
    let lo = best?.length ?? 0;
    let found: number | undefined;
    let top = hi;
    while (lo < top) {
      const mid = Math.floor((lo + top + 1) / 2);
      const start = text.indexOf(prefix.slice(prefix.length - mid));
      if (start >= 0) {
        lo = mid;
        found = start;
      } else {
        top = mid - 1;
      }
    }
    if (found !== undefined && lo > (best?.length ?? 0)) {
      const rest = text.slice(found + lo);
      const newline = rest.indexOf('\n');
      const line = newline >= 0 ? rest.slice(0, newline) : rest;
      // A blank continuation copies nothing; a longer run elsewhere may still copy something.
      if (line.trim() !== '') best = { length: lo, text: line };
    }
    if (best?.length === hi) break;
  }
  return best ? { text: best.text, matchLength: best.length } : undefined;
}
