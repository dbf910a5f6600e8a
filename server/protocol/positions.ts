/**
 * Checks the positions, ranges and token counts a client sends before any offset is computed. TextDocument.offsetAt
 * clamps a negative, fractional or past-the-end position to some offset, so without this a bad request generated for
 * a place the client never meant and sent back ranges that do not exist in the document.
 */
import type { TextDocument } from 'vscode-languageserver-textdocument';

/** Characters of line `line`, without its line break. */
function lineLength(document: TextDocument, line: number): number {
  const text = document.getText({ start: { line, character: 0 }, end: { line: line + 1, character: 0 } });
  return text.replace(/\r?\n$|\r$/, '').length;
}

/** Why `value` is not a position in `document` (0-based line and UTF-16 character), or undefined when it is one. */
export function positionProblem(document: TextDocument, value: unknown, name: string): string | undefined {
  if (typeof value !== 'object' || value === null) return `${name} must be {line, character}`;
  const { line, character } = value as { line?: unknown; character?: unknown };
  if (!isCount(line)) return `${name}.line must be a whole number >= 0 (got ${shown(line)})`;
  if (!isCount(character)) return `${name}.character must be a whole number >= 0 (got ${shown(character)})`;
  if (line >= document.lineCount) return `${name}.line ${line} is past the end of the document (${document.lineCount} lines)`;
  const length = lineLength(document, line);
  if (character > length) return `${name}.character ${character} is past the end of line ${line} (${length} characters)`;
  return undefined;
}

/** Why `value` is not a range of two positions in `document`, or undefined when it is one. */
export function rangeProblem(document: TextDocument, value: unknown, name: string): string | undefined {
  if (typeof value !== 'object' || value === null) return `${name} must be {start, end}`;
  const { start, end } = value as { start?: unknown; end?: unknown };
  return positionProblem(document, start, `${name}.start`) ?? positionProblem(document, end, `${name}.end`);
}

/** Why an optional token count (maxTokens, count) is not a whole number from 1 to `max`, or undefined. */
export function countProblem(value: unknown, name: string, max: number): string | undefined {
  if (value === undefined) return undefined;
  return isCount(value) && value >= 1 && value <= max ? undefined : `${name} must be a whole number from 1 to ${max} (got ${shown(value)})`;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** A value as it appears in a message: JSON, cut short (NaN and Infinity, which JSON cannot carry, by name). */
function shown(value: unknown): string {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return (JSON.stringify(value) ?? String(value)).slice(0, 40);
}
