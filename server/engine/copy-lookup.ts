/**
 * The copy-from-file lookup (issue 14, item 3): code repeats itself locally, so the longest tail of the text before
 * the cursor that occurs elsewhere in the same file often continues the way it continued there. This finds that
 * occurrence and copies what followed it up to the end of its line. It is the recipe's baseline row
 * (models/recipe/unmask/metrics.py `copy_from_file`, kind "single-line") in TypeScript, so the extension's copy candidate
 * and the eval's baseline are the same text. `copyFromOtherFiles` looks the same way in other open files. Pure: no I/O.
 */

export interface CopyMatch {
  /** What followed the earlier occurrence, up to the end of its line (the newline not included). */
  readonly text: string;
  /** Length in characters of the repeated tail of the prefix that found it: longer is more specific. */
  readonly matchLength: number;
}

/**
 * The longest tail of `prefix` longer than `shortest` and at most `longest` characters that `find` locates, and where
 * (`find`: a start position, or -1); length 0 when no tail in that range is found. A tail found with length L is
 * found with every shorter length (its own tails), so the length is bisected; lengths up to `shortest` are never
 * tried (copyFromOtherFiles passes the best run so far, from another text, which only a longer one can beat).
 */
function longestFoundTail(prefix: string, shortest: number, longest: number, find: (tail: string) => number): { length: number; start: number } {
  let lo = shortest;
  let hi = longest;
  let best = { length: 0, start: -1 };
  while (lo < hi) {
    const mid = Math.floor((lo + hi + 1) / 2);
    const start = find(prefix.slice(prefix.length - mid));
    if (start >= 0) {
      lo = mid;
      best = { length: mid, start };
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

/** `text` from `at` up to the end of its line (the newline not included); undefined when that is blank. */
function lineFrom(text: string, at: number): string | undefined {
  const newline = text.indexOf('\n', at);
  const line = newline >= 0 ? text.slice(at, newline) : text.slice(at);
  return line.trim() === '' ? undefined : line;
}

/**
 * The longest tail of `prefix` that also occurs in `text` (= prefix + suffix) other than at the end of the prefix
 * itself, and where that occurrence starts: the nearest one before the cursor, else the first one after it.
 */
export function longestRepeatedTail(prefix: string, text: string): { length: number; start: number } {
  const end = prefix.length;
  return longestFoundTail(prefix, 0, end, (tail) => {
    // lastIndexOf's position is where a match may start at the latest: ending before the cursor's own tail does.
    const before = end - 1 - tail.length >= 0 ? text.lastIndexOf(tail, end - 1 - tail.length) : -1;
    if (before >= 0) return before;
    return text.indexOf(tail, end - tail.length + 1);
  });
}

/** The copy for a cursor between `prefix` and `suffix`; undefined when nothing recurs or the copy is blank. */
export function copyFromFile(prefix: string, suffix: string): CopyMatch | undefined {
  const text = prefix + suffix;
  const { length, start } = longestRepeatedTail(prefix, text);
  const line = length > 0 ? lineFrom(text, start + length) : undefined;
  return line === undefined ? undefined : { text: line, matchLength: length };
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
  const longest = Math.min(prefix.length, MAX_OTHER_RUN);
  let best: CopyMatch | undefined;
  for (const text of others) {
    // Only a longer run than the best so far can win: that length is the floor of the bisection.
    const { length, start } = longestFoundTail(prefix, best?.matchLength ?? 0, longest, (tail) => text.indexOf(tail));
    // A blank continuation copies nothing; a longer run elsewhere may still copy something.
    const line = length > 0 ? lineFrom(text, start + length) : undefined;
    if (line !== undefined) best = { text: line, matchLength: length };
    if (best?.matchLength === longest) break;
  }
  return best;
}
