/**
 * From a candidate's tokens to the text shown to the user: cut at the first end-of-span, never let a special token
 * through, tidy the indentation, drop a tail that repeats the text already after the cursor, and drop completions
 * that are only whitespace. Also merges near-duplicate candidates and ranks them by a caller's score.
 */
import { specialTokenIds } from './special-tokens';
import type { ModelFacts, TextCodec } from './types';

/** The text of one hole and the model tokens it came from (before any text tidying). */
export interface HoleTokens {
  readonly text: string;
  /** The hole's tokens up to its first end-of-span, special tokens removed. */
  readonly tokenIds: number[];
}

/** Decodes a hole's tokens: everything from the first end-of-span on is dropped, and so is any other special token. */
export function holeTokensToText(ids: ArrayLike<number>, codec: TextCodec, facts: ModelFacts): HoleTokens {
  const special = specialTokenIds(facts);
  const tokenIds: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === facts.eosId) break;
    if (!special.has(id)) tokenIds.push(id);
  }
  return { text: tokenIds.length === 0 ? '' : codec.decode(tokenIds), tokenIds };
}

export function isBlank(text: string): boolean {
  return text.trim().length === 0;
}

/** How much of the document on each side is looked at when balancing brackets. */
const CONTEXT_CHARS = 2000;
/** Longest run of closing characters that is checked for a repeat of the text after the cursor. */
const MAX_OVERLAP = 32;

function firstLine(text: string): string {
  const newline = text.indexOf('\n');
  return newline === -1 ? text : text.slice(0, newline);
}

/**
 * Indentation sanity for the text going in at the cursor:
 *   - trailing whitespace is removed from every line, and from the end of the completion when nothing follows the
 *     cursor on its line (otherwise a trailing space or newline may be what separates it from that text);
 *   - in a document indented with spaces only, tabs that start a line of the completion become spaces (the width is
 *     the document's most common indentation step, 4 when there is none).
 */
export function tidyIndentation(text: string, before: string, after: string): string {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length - 1; i++) lines[i] = lines[i].replace(/[ \t\r]+$/, '');
  let tidy = lines.join('\n');
  if (isBlank(firstLine(after))) tidy = tidy.replace(/\s+$/, '');
  const style = indentationStyle(before + '\n' + after);
  if (style.spacesOnly) {
    tidy = tidy.replace(/(^|\n)(\t+)/g, (_, start: string, tabs: string) => start + ' '.repeat(tabs.length * style.unit));
  }
  return tidy;
}

/** Whether the lines of a document are indented with spaces only, and its most common indentation step. */
export function indentationStyle(document: string): { spacesOnly: boolean; unit: number } {
  const lines = document.split('\n').slice(-400);
  let tabs = 0;
  let spaces = 0;
  const steps = new Map<number, number>();
  let previous = -1;
  for (const line of lines) {
    if (isBlank(line)) continue;
    const indent = /^[ \t]*/.exec(line)![0];
    if (indent.includes('\t')) tabs++;
    else if (indent.length > 0) spaces++;
    if (previous >= 0 && indent.length > previous && !indent.includes('\t')) {
      const step = indent.length - previous;
      steps.set(step, (steps.get(step) ?? 0) + 1);
    }
    previous = indent.includes('\t') ? -1 : indent.length;
  }
  let unit = 4;
  let best = 0;
  for (const [step, count] of steps) {
    if (count > best || (count === best && step < unit)) {
      unit = step;
      best = count;
    }
  }
  return { spacesOnly: tabs === 0 && spaces > 0, unit };
}

const OPENERS = '([{';
const CLOSERS = ')]}';
const QUOTES = `"'\``;

/**
 * How unbalanced a piece of code looks: brackets closed without an opener plus openers never closed, plus one for
 * each kind of quote that occurs an odd number of times on `quoteLine`. Quotes are counted on one line only because
 * strings rarely span lines while apostrophes in comments are everywhere.
 */
function imbalance(code: string, quoteLine: string): number {
  const open = [0, 0, 0];
  let unmatched = 0;
  for (let i = 0; i < code.length; i++) {
    const ch = code[i];
    const opener = OPENERS.indexOf(ch);
    if (opener >= 0) {
      open[opener]++;
      continue;
    }
    const closer = CLOSERS.indexOf(ch);
    if (closer >= 0) {
      if (open[closer] > 0) open[closer]--;
      else unmatched++;
    }
  }
  let oddQuotes = 0;
  for (const quote of QUOTES) {
    let count = 0;
    for (let i = 0; i < quoteLine.length; i++) if (quoteLine[i] === quote && quoteLine[i - 1] !== '\\') count++;
    oddQuotes += count % 2;
  }
  return unmatched + open[0] + open[1] + open[2] + oddQuotes;
}

const WORD = /[\p{L}\p{N}_$]/u;
/** Only closing characters may be dropped as a repeat of the text after the cursor; words are handled separately. */
const CLOSING_RUN = /^[\s)\]}>"'`;,:]*[)\]}"'`][\s)\]}>"'`;,:]*$/;

/**
 * Drops the end of a completion that repeats the text right after the cursor, so that accepting it does not
 * double that text:
 *   - the rest of the cursor's line, when it holds a word and the completion ends with it at a word boundary
 *     (`foo(` + `a, b);` before `b);` keeps `a, `);
 *   - closing brackets and quotes already there (`foo(` + `a, b)` before `)` keeps `a, b`), but only when dropping them
 *     makes the code around the cursor better balanced, so a completion that closes its own bracket (`bar()` before
 *     `)`) is left alone.
 */
export function trimAgainstSuffix(text: string, before: string, after: string): string {
  const restOfLine = firstLine(after);
  const rest = restOfLine.trim();
  if (WORD.test(rest)) {
    const body = text.trimEnd();
    const cut = body.length - rest.length;
    if (body.endsWith(rest) && (cut === 0 || !WORD.test(body[cut - 1]) || !WORD.test(rest[0]))) {
      const kept = body.slice(0, cut);
      return /^\s/.test(restOfLine) ? kept.trimEnd() : kept;
    }
  }

  const beforeTail = before.slice(-CONTEXT_CHARS);
  const afterHead = after.slice(0, CONTEXT_CHARS);
  const score = (completion: string): number => {
    const code = beforeTail + completion + afterHead;
    const junction = beforeTail.length + completion.length;
    const lineStart = code.lastIndexOf('\n', junction - 1) + 1;
    const lineEnd = code.indexOf('\n', junction);
    return imbalance(code, code.slice(lineStart, lineEnd === -1 ? code.length : lineEnd));
  };
  let best = text;
  let bestScore = score(text);
  // Whitespace between the repeated closers and either end does not matter: `a)  ` repeats ` )` as much as `a)` does `)`.
  for (const body of new Set([text, text.replace(/[ \t]+$/, '')])) {
    for (const following of new Set([after, after.trimStart()])) {
      for (let k = Math.min(MAX_OVERLAP, body.length, following.length); k >= 1; k--) {
        const overlap = following.slice(0, k);
        if (!body.endsWith(overlap) || !CLOSING_RUN.test(overlap)) continue;
        let trimmed = body.slice(0, body.length - k);
        if (following !== after) trimmed = trimmed.trimEnd();
        const trimmedScore = score(trimmed);
        if (trimmedScore < bestScore) {
          best = trimmed;
          bestScore = trimmedScore;
        }
      }
    }
  }
  return best;
}

/** The text to insert for a hole: indentation tidied and repeats of the following text removed; "" when blank. */
export function finishHoleText(text: string, before: string, after: string): string {
  const finished = trimAgainstSuffix(tidyIndentation(text, before, after), before, after);
  return isBlank(finished) ? '' : finished;
}

/**
 * A one-line text for a cursor at the start of a line that holds code (nothing but indentation before the cursor, code
 * after it) is a new line above that code: it keeps a line break of its own, and the indentation typed before the
 * cursor goes back in front of the code it belonged to. Without it the line glues onto the code after the cursor
 * (HumanEval-SingleLineInfilling with one-line answers: a tenth of the exactly right lines failed to parse). Any other
 * text, or cursor, is left as it is.
 */
export function asLineAboveCode(line: string, before: string, after: string): string {
  const typed = before.slice(before.lastIndexOf('\n') + 1);
  if (line.includes('\n') || /\S/u.test(typed) || !/\S/u.test(after.split('\n', 1)[0])) return line;
  return `${line}\n${typed}`;
}

/** The key under which candidates count as the same: every run of whitespace reads as one space. */
export function nearDuplicateKey(holes: readonly string[]): string {
  return holes.map((hole) => hole.replace(/\s+/g, ' ').trim()).join('\u0000');
}

/** Keeps the first of each group of near-duplicates; rank first so that the best of each group is the one kept. */
export function mergeNearDuplicates<T>(items: readonly T[], holesOf: (item: T) => readonly string[]): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const key = nearDuplicateKey(holesOf(item));
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Sorts by a caller's score, best first; equal scores keep their order (batch row order). */
export function rankBy<T>(items: readonly T[], score: (item: T) => number): T[] {
  return items
    .map((item, i) => ({ item, i, score: score(item) }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .map((entry) => entry.item);
}
