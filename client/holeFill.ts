/**
 * The pure half of "Unmask: Fill All Holes": which holes to ask the server for (with their length hints as token
 * budgets) and how its answer becomes the replacements of one edit. Offsets are UTF-16 offsets into the document
 * text; client/fillHoles.ts turns them into VS Code ranges. Kept free of `vscode` so that it is unit-tested directly.
 */
import type { Hole } from './holeMarker';

/** One hole as the server is asked to fill it: the marker's span and, from its hint, the most tokens to write. */
export interface HoleAsk {
  readonly start: number;
  readonly end: number;
  /** The marker's length hint; absent without one, so that the server uses the unmask.maxSpanTokens setting. */
  readonly maxTokens?: number;
}

/** One replacement of the edit: [start, end) of the original text becomes `text`. */
export interface Replacement {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/** The server request's holes: each marker with its hint as the token budget (the server rounds it up to a span bucket). */
export function holeAsks(holes: readonly Hole[]): HoleAsk[] {
  return holes.map((hole) => ({
    start: hole.start,
    end: hole.end,
    ...(hole.lengthHint !== undefined ? { maxTokens: hole.lengthHint } : {}),
  }));
}

/**
 * The replacements for the server's texts, one per hole in document order. Throws when the counts differ: the answer
 * then belongs to another request, and applying it would put text in the wrong places.
 */
export function holeReplacements(holes: readonly Hole[], texts: readonly string[]): Replacement[] {
  if (texts.length !== holes.length) {
    throw new RangeError(`the server returned ${texts.length} text(s) for ${holes.length} hole(s)`);
  }
  return holes.map((hole, i) => ({ start: hole.start, end: hole.end, text: texts[i] }));
}

/** The text after the replacements (which must be in order and must not overlap): what the preview shows. */
export function applyReplacements(text: string, replacements: readonly Replacement[]): string {
  let out = '';
  let at = 0;
  for (const r of replacements) {
    if (r.start < at || r.end < r.start || r.end > text.length) {
      throw new RangeError(`replacement [${r.start}, ${r.end}) is out of order or outside a text of ${text.length} characters`);
    }
    out += text.slice(at, r.start) + r.text;
    at = r.end;
  }
  return out + text.slice(at);
}
