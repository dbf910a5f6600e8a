/**
 * Inline completion in LSP terms: where the canvas text comes from (the document around the cursor, with the
 * IntelliSense selection, when there is one, taken as already typed) and how completions become items. Items replace
 * a range on the cursor's line from its first column (VS Code flickers less when the whole line is replaced rather
 * than text inserted, vscode #208152), so insertText repeats the line's text before the cursor.
 */
import type { InlineCompletionContext, InlineCompletionItem, Position } from 'vscode-languageserver/node';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { type TextWindow, windowAround } from './window';

export interface InlineSource {
  readonly window: TextWindow;
  /** Text of the cursor's line before the cursor, as the item must repeat it (with the selection applied). */
  readonly linePrefix: string;
  /** Text of the cursor's line after the cursor. */
  readonly restOfLine: string;
  /** The whole document before and after the cursor (with the selection applied): the file a completion fills. */
  readonly file: { readonly before: string; readonly after: string };
}

/**
 * The text around the cursor. With an IntelliSense item selected, the completion must extend that item (VS Code
 * hides it otherwise), so the selected text replaces its range in the prefix, as if the user had accepted it.
 */
export function inlineSource(document: TextDocument, position: Position, context: InlineCompletionContext): InlineSource {
  const text = document.getText();
  const cursor = document.offsetAt(position);
  const lineStart = document.offsetAt({ line: position.line, character: 0 });
  const nextLine = document.offsetAt({ line: position.line + 1, character: 0 });
  let lineEnd = nextLine;
  while (lineEnd > cursor && (text[lineEnd - 1] === '\n' || text[lineEnd - 1] === '\r')) lineEnd--;
  const restOfLine = text.slice(cursor, lineEnd);
  const selected = context.selectedCompletionInfo;
  if (selected && selected.range.start.line === position.line && selected.range.end.line === position.line) {
    const start = document.offsetAt(selected.range.start);
    const end = Math.max(cursor, document.offsetAt(selected.range.end));
    const around = windowAround(text, start);
    const after = windowAround(text, end);
    return {
      window: { prefix: around.prefix + selected.text, suffix: after.suffix, cutBefore: around.cutBefore, cutAfter: after.cutAfter },
      linePrefix: text.slice(lineStart, start) + selected.text,
      restOfLine: text.slice(end, lineEnd),
      file: { before: text.slice(0, start) + selected.text, after: text.slice(end) },
    };
  }
  return {
    window: windowAround(text, cursor),
    linePrefix: text.slice(lineStart, cursor),
    restOfLine,
    file: { before: text.slice(0, cursor), after: text.slice(cursor) },
  };
}

/**
 * One item per completion: replace the cursor's line from column 0 to the cursor with the line prefix plus the
 * completion. When a single-line completion ends with what already follows the cursor on that line (closing brackets,
 * a colon), the range extends to the line's end so that text is replaced, not duplicated.
 */
export function inlineItems(completions: readonly string[], source: InlineSource, position: Position): InlineCompletionItem[] {
  const rest = source.restOfLine.trimEnd();
  return completions.map((completion) => {
    const replacesRest = rest.length > 0 && completion.trimEnd().endsWith(rest);
    const end = position.character + (replacesRest ? source.restOfLine.length : 0);
    return {
      insertText: source.linePrefix + completion,
      range: { start: { line: position.line, character: 0 }, end: { line: position.line, character: end } },
    };
  });
}
