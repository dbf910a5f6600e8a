/**
 * The copy candidate (issue 14, item 3): when the text before the cursor ends in a run that occurs elsewhere in the
 * document, what followed that run there (to the end of its line, engine/copy-lookup.ts) is offered with the model's
 * rows: first when the run is long or the model's best row writes the same line, else second. A small model rarely writes a line exactly; code repeats itself, and a long repeated run is a
 * strong sign it repeats again. No LSP types here.
 *
 * COPY_MIN_MATCH is calibrated on the recipe's held-out eval (models/recipe/scripts/eval_calibrate.py; the model card has the
 * table): the share of copies whose first line is exactly right rises with the match length, but even short matches
 * are right far more often than today's small model is.
 */
import { type CopyMatch, copyFromFile, copyFromOtherFiles } from '../engine/copy-lookup';
import { asLineAboveCode, finishHoleText } from '../engine/postprocess';
import { firstLineKey } from '../engine/gate-features';
import { isNearDuplicate } from '../engine/rerank';

/**
 * Shortest repeated run (characters) that offers a copy (first or second: COPY_LEAD_MIN_MATCH). Held-out eval of the shipped model (calibrate.py; 600
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
 * Shortest run that offers a copy from another open file (`others`), and only when it is longer than the document's
 * own run: a short run recurs by chance across files far more often than within one. Calibration set (900 tasks, the 3
 * nearest files of each task's package open, 2 ranked rows; model card "Session 18"): first-line exact 17.4% without
 * copies from other files, 19.0% from runs of 12, 18.9% from 16, 18.7% from 24 (exact 12.2 / 13.6 / 13.4 / 13.3%).
 * 16 sits on that plateau with fewer chance matches than 12.
 */
export const OTHER_FILE_MIN_MATCH = 16;

/** The document around the cursor, and the texts of other open documents of its language family, most recent first. */
export interface CopySource {
  readonly before: string;
  readonly after: string;
  readonly others?: readonly string[];
}

/**
 * The copy for a cursor in a document (`before` and `after` the cursor, the whole document), finished like a model
 * row (indentation tidied, text already after the cursor not repeated), with the length of the repeated run that found
 * it (what the gate reads, gate.ts): from the document's own longest repeated run of at least `minMatch` characters,
 * or from another open document's (`others`) when that run is longer and at least OTHER_FILE_MIN_MATCH; undefined
 * when neither is found or the copy comes out blank. `minMatch` 0 offers no copy at all.
 */
export function copyMatch(file: CopySource, minMatch = COPY_MIN_MATCH): CopyMatch | undefined {
  if (minMatch <= 0) return undefined;
  const before = file.before.slice(-SEARCH_BEFORE);
  const here = copyFromFile(before, file.after.slice(0, SEARCH_AFTER));
  const elsewhere = file.others && file.others.length > 0 ? copyFromOtherFiles(before, file.others) : undefined;
  const ownRun = here && here.matchLength >= minMatch ? here.matchLength : 0;
  const match =
    elsewhere && elsewhere.matchLength >= Math.max(OTHER_FILE_MIN_MATCH, minMatch) && elsewhere.matchLength > ownRun
      ? elsewhere
      : ownRun > 0
        ? here
        : undefined;
  if (!match) return undefined;
  const text = finishHoleText(match.text, file.before, file.after);
  return text === '' ? undefined : { text: asLineAboveCode(text, file.before, file.after), matchLength: match.matchLength };
}

/**
 * Shortest repeated run (characters) that puts a copy ahead of a model row that writes a different first line; a copy
 * found from a shorter run goes second, after the model's best row. Calibration set of the shipped model (900 tasks,
 * 2 ranked rows; models/recipe/scripts/eval_heldout.py, model card "Session 13"): of the copies the best row disagrees
 * with, those from runs of at most 9 characters had the right first line 4 times where the model's row had it 16
 * times, those from runs over 20 characters 29 times against 1. Leading from 12 characters: first-line exact
 * 13.7 -> 15.2%, edit similarity 36.3 -> 37.6% there (reported tasks: 14.2 -> 14.3%, 38.5 -> 38.9%).
 */
export const COPY_LEAD_MIN_MATCH = 12;

/**
 * Whether the copy goes ahead of the model's best row (`best`: its text; undefined when the model wrote nothing): with
 * no row, when the copy's repeated run is long, or when the best row says the same: its first line is the copy's (the
 * gate's copyAgrees; the copy, one line, is then the more exact of the two) or the two are near-duplicates.
 */
export function copyLeads(copy: CopyMatch, best: string | undefined): boolean {
  if (best === undefined || copy.matchLength >= COPY_LEAD_MIN_MATCH) return true;
  return firstLineKey(best) === firstLineKey(copy.text) || isNearDuplicate(best, copy.text);
}

/** The copy when it goes first (copyLeads), else undefined: what the gate judges as the suggestion shown. */
export function leadingCopy(copy: CopyMatch | undefined, best: string | undefined): CopyMatch | undefined {
  return copy !== undefined && copyLeads(copy, best) ? copy : undefined;
}

/**
 * `items` (the model's rows, best first) with the copy among them: a near-duplicate model row stands for it (the model
 * agrees with the copy, and its row carries the model's own scores); it goes first when it leads (copyLeads), else
 * second, after the best row.
 */
export function withCopyRow<T>(items: readonly T[], copy: CopyMatch | undefined, textOf: (item: T) => string, make: (copy: string) => T): T[] {
  if (copy === undefined) return [...items];
  const same = items.findIndex((item) => isNearDuplicate(textOf(item), copy.text));
  const copyItem = same >= 0 ? items[same] : make(copy.text);
  const rest = same >= 0 ? [...items.slice(0, same), ...items.slice(same + 1)] : [...items];
  if (copyLeads(copy, items.length > 0 ? textOf(items[0]) : undefined)) return [copyItem, ...rest];
  return [rest[0], copyItem, ...rest.slice(1)];
}
