/**
 * Turns the server's inline completion items into the shape the client caches and shows. Pure: positions are plain
 * line/character pairs and lines are strings, so it does not import `vscode`.
 *
 * - Normal form ("Completion"): text inserted at the cursor, replacing `replaceAfter` characters after it. The cache
 *   works in this form, whatever range the server chose.
 * - Shown form: a whole-line replace range (column 0 to the end of what is replaced) with the line's text before the
 *   cursor repeated in front, which keeps VS Code from flickering while the user types (vscode #208152).
 * - The completion is fitted against the rest of the line, so a closing bracket already after the cursor is
 *   replaced instead of duplicated, and it must extend the IntelliSense selection when the suggest widget is open.
 */
import type { Completion } from './cache';

export interface LinePos {
  readonly line: number;
  readonly character: number;
}

/** An inline completion item as plain data (vscode.InlineCompletionItem with a string insertText). */
export interface PlainItem {
  readonly insertText: string;
  readonly range?: { readonly start: LinePos; readonly end: LinePos };
}

/** The item to show: replace characters [startCharacter, endCharacter) of the cursor's line with insertText. */
export interface ShownItem {
  readonly startCharacter: number;
  readonly endCharacter: number;
  readonly insertText: string;
}

/** The IntelliSense item currently selected (vscode.SelectedCompletionInfo as plain data). */
export interface SelectedSuggestion {
  readonly range: { readonly start: LinePos; readonly end: LinePos };
  readonly text: string;
}

/**
 * The normal form of a server item, or undefined when it cannot be expressed relative to the cursor (a range on
 * another line, or text that does not repeat what its range covers before the cursor).
 */
export function toCompletion(item: PlainItem, cursor: LinePos, lineText: string): Completion | undefined {
  if (!item.range) return fitToRestOfLine({ text: item.insertText, replaceAfter: 0 }, lineText.slice(cursor.character));
  const { start, end } = item.range;
  if (start.line !== cursor.line || end.line !== cursor.line) return undefined;
  if (start.character > cursor.character || end.character < cursor.character) return undefined;
  const before = lineText.slice(start.character, cursor.character);
  if (!item.insertText.startsWith(before)) return undefined;
  const completion = { text: item.insertText.slice(before.length), replaceAfter: end.character - cursor.character };
  return fitToRestOfLine(completion, lineText.slice(cursor.character));
}

/**
 * When the completion ends with what already follows the cursor on this line (typically closing brackets or a
 * colon), replace the rest of the line instead of inserting a duplicate of it.
 */
export function fitToRestOfLine(completion: Completion, restOfLine: string): Completion {
  if (completion.replaceAfter > 0) return completion;
  const rest = restOfLine.trimEnd();
  if (rest.length === 0 || !completion.text.trimEnd().endsWith(rest)) return completion;
  return { text: completion.text, replaceAfter: restOfLine.length };
}

/** Whether a completion adds anything visible (the model may fill a span with end-of-span tokens only). */
export function isUseful(completion: Completion): boolean {
  return completion.text.trim().length > 0;
}

/** The whole-line replace form of a completion at `cursorCharacter` on a line whose text before it is linePrefix. */
export function toShownItem(completion: Completion, linePrefix: string, cursorCharacter: number): ShownItem {
  return {
    startCharacter: 0,
    endCharacter: cursorCharacter + completion.replaceAfter,
    insertText: linePrefix + completion.text,
  };
}

/**
 * The cursor's line as if the selected IntelliSense item had been accepted: the server completes that text (VS Code
 * shows a completion only if it extends the selected item), so its items are read against this line. `toLine` maps
 * a column of the real line to this one (undefined inside the replaced range).
 */
export function lineWithSelection(
  lineText: string,
  cursor: LinePos,
  selected: SelectedSuggestion,
): { lineText: string; cursor: LinePos; toLine: (character: number) => number | undefined } | undefined {
  const { start, end } = selected.range;
  if (start.line !== cursor.line || end.line !== cursor.line || end.character < cursor.character) return undefined;
  const before = lineText.slice(0, start.character) + selected.text;
  const shift = before.length - end.character;
  return {
    lineText: before + lineText.slice(end.character),
    cursor: { line: cursor.line, character: before.length },
    toLine: (character) =>
      character <= start.character ? character : character >= end.character ? character + shift : undefined,
  };
}

/**
 * The shown form of a completion read against lineWithSelection: it replaces the selected item's range with the
 * item's text plus the completion, so it extends the item as VS Code requires. Undefined when it adds nothing.
 */
export function extendSelection(completion: Completion, selected: SelectedSuggestion): ShownItem | undefined {
  if (completion.text.length === 0) return undefined;
  return {
    startCharacter: selected.range.start.character,
    endCharacter: selected.range.end.character + completion.replaceAfter,
    insertText: selected.text + completion.text,
  };
}

/** toCompletion for a request made while an IntelliSense item is selected (see lineWithSelection). */
export function toCompletionWithSelection(
  item: PlainItem,
  cursor: LinePos,
  lineText: string,
  selected: SelectedSuggestion,
): Completion | undefined {
  const view = lineWithSelection(lineText, cursor, selected);
  if (!view) return undefined;
  if (!item.range) return toCompletion(item, view.cursor, view.lineText);
  const start = view.toLine(item.range.start.character);
  const end = view.toLine(item.range.end.character);
  if (start === undefined || end === undefined || item.range.start.line !== cursor.line) return undefined;
  const range = { start: { line: cursor.line, character: start }, end: { line: item.range.end.line, character: end } };
  return toCompletion({ insertText: item.insertText, range }, view.cursor, view.lineText);
}
