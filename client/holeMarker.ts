/**
 * The hole marker: `{{hole}}` marks code for Unmask to fill; `{{hole:N}}` adds a length hint of about N tokens.
 * It reads as a template placeholder in any language, almost never occurs in real code (template languages such as
 * Handlebars aside), and fits in code, strings and comments alike. syntaxes/hole.injection.tmLanguage.json highlights the same
 * pattern (a unit test keeps the two in step); "Unmask: Fill All Holes" fills every marker of a file jointly.
 */

/** One hole in a text: the marker spans [start, end) (UTF-16 offsets). */
export interface Hole {
  readonly start: number;
  readonly end: number;
  /** The length hint in tokens, when the marker has one. */
  readonly lengthHint?: number;
}

/** The marker's pattern; the capture groups match the grammar's: "{{", "hole", ":", hint, "}}". */
export const HOLE_PATTERN_SOURCE = '(\\{\\{)(hole)(?:(:)([0-9]{1,4}))?(\\}\\})';

/** Every hole marker in `text`, in order. A hint of 0 counts as no hint. */
export function findHoles(text: string): Hole[] {
  const holes: Hole[] = [];
  for (const match of text.matchAll(new RegExp(HOLE_PATTERN_SOURCE, 'g'))) {
    const start = match.index ?? 0;
    const hint = match[4] === undefined ? undefined : Number(match[4]);
    holes.push({ start, end: start + match[0].length, ...(hint ? { lengthHint: hint } : {}) });
  }
  return holes;
}

/** The marker text for a hole with an optional length hint. */
export function holeMarker(lengthHint?: number): string {
  return lengthHint && lengthHint > 0 ? `{{hole:${Math.round(lengthHint)}}}` : '{{hole}}';
}
