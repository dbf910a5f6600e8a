/**
 * The copy candidate (issue 14, item 3): when the text before the cursor ends in a long run that occurs elsewhere in
 * the document, what followed that run there (to the end of its line, engine/copy-lookup.ts) is offered first, ahead
 * of the model's rows. A small model rarely writes a line exactly; code repeats itself, and a long repeated run is a
 * strong sign it repeats again. No LSP types here.
 *
 * COPY_MIN_MATCH is calibrated on the recipe's held-out eval (models/recipe/scripts/eval_calibrate.py; the model card has the
 * table): the share of copies whose first line is exactly right rises with the match length, but even short matches
 * are right far more often than today's small model is.
 */
import { type CopyMatch, copyFromFile } from '../engine/copy-lookup';
import { asLineAboveCode, finishHoleText } from '../engine/postprocess';
import { isNearDuplicate } from '../engine/rerank';

/**
 * Shortest repeated run (characters) that puts a copy first. Held-out eval of the shipped model (calibrate.py; 600
 * tasks, 8 steps, first line exact): model alone 2.5%; copy first from a run of 32 characters 6.7%, 16: 9.0%,
 * 8: 10.7%, 4: 12.2% (copy used on 61% of requests), 1: 12.5%. Four keeps nearly all of the gain without offering a
 * copy found from a one-character match.
 */
export const COPY_MIN_MATCH = 4;

/**
 * How far from the cursor the run is looked for (characters before, after): code repeats itself nearby, and each
 * bisection step of the lookup scans this text once, so a 500 KB file costs what a 100 KB window does.
 */
const SEARCH_BEFORE = 100_000;
const SEARCH_AFTER = 20_000;

/**
 * The copy for a cursor in a document (`before` and `after` the cursor, the whole document), finished like a model
 * row (indentation tidied, text already after the cursor not repeated), with the length of the repeated run that found
 * it (what the gate reads, gate.ts); undefined when no run of at least `minMatch` characters recurs or the copy comes
 * out blank.
 */
export function copyMatch(file: { readonly before: string; readonly after: string }, minMatch = COPY_MIN_MATCH): CopyMatch | undefined {
  if (minMatch <= 0) return undefined;
  const match = copyFromFile(file.before.slice(-SEARCH_BEFORE), file.after.slice(0, SEARCH_AFTER));
  if (!match || match.matchLength < minMatch) return undefined;
  const text = finishHoleText(match.text, file.before, file.after);
  return text === '' ? undefined : { text: asLineAboveCode(text, file.before, file.after), matchLength: match.matchLength };
}

/**
 * `items` with the copy first: a near-duplicate model row is moved to the front instead (the model agrees with the
 * copy, and its row carries the model's own scores); otherwise `make(copy)` becomes the new first item.
 */
export function withCopyFirst<T>(items: readonly T[], copy: string | undefined, textOf: (item: T) => string, make: (copy: string) => T): T[] {
  if (copy === undefined) return [...items];
  const same = items.findIndex((item) => isNearDuplicate(textOf(item), copy));
  if (same >= 0) return [items[same], ...items.slice(0, same), ...items.slice(same + 1)];
  return [make(copy), ...items];
}
