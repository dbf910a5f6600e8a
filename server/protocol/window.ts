/**
 * Cuts the text around the cursor before anything is tokenised, and refuses text that is not code a person types:
 * binary content and minified or generated files with very long lines. The engine windows again by tokens; this
 * bound keeps a 50 MB file from ever reaching the tokenizer.
 */

/** Characters of text kept before and after the cursor. At ~4 characters per token this is far beyond any canvas. */
export const PREFIX_WINDOW_CHARS = 24 * 1024;
export const SUFFIX_WINDOW_CHARS = 8 * 1024;

/** A line this long at the cursor is data or generated code, not something to complete. */
export const LONG_LINE_CHARS = 2000;
/** Mean line length above which a window of at least MINIFIED_MIN_CHARS reads as minified. */
export const MINIFIED_MEAN_LINE_CHARS = 300;
const MINIFIED_MIN_CHARS = 4096;

export interface TextWindow {
  readonly prefix: string;
  readonly suffix: string;
  /** Characters left out before the prefix and after the suffix. */
  readonly cutBefore: number;
  readonly cutAfter: number;
}

/** The text around `offset` (a UTF-16 offset, clamped into the text), at most the window sizes on each side. */
export function windowAround(text: string, offset: number, before = PREFIX_WINDOW_CHARS, after = SUFFIX_WINDOW_CHARS): TextWindow {
  const at = Math.max(0, Math.min(text.length, Math.floor(offset)));
  let start = Math.max(0, at - before);
  let end = Math.min(text.length, at + after);
  // Never split a surrogate pair at the window's edges.
  if (start > 0 && isLowSurrogate(text.charCodeAt(start))) start += 1;
  if (end < text.length && isLowSurrogate(text.charCodeAt(end))) end -= 1;
  return { prefix: text.slice(start, at), suffix: text.slice(at, end), cutBefore: start, cutAfter: text.length - end };
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/**
 * Why the text around the cursor should not be completed, or undefined when it is fine. Looks only at the window
 * (prefix + suffix) and at the cursor's line.
 */
export function unsuitableReason(window: TextWindow): string | undefined {
  const text = window.prefix + window.suffix;
  if (text.includes('\u0000')) return 'the document contains NUL bytes (binary content)';
  const lineStart = window.prefix.lastIndexOf('\n') + 1;
  const lineEndInSuffix = window.suffix.indexOf('\n');
  const cursorLine = window.prefix.length - lineStart + (lineEndInSuffix < 0 ? window.suffix.length : lineEndInSuffix);
  if (cursorLine > LONG_LINE_CHARS) return `the cursor's line is ${cursorLine} characters long (generated or minified code)`;
  if (text.length >= MINIFIED_MIN_CHARS) {
    const lines = text.split('\n').length;
    const mean = text.length / lines;
    if (mean > MINIFIED_MEAN_LINE_CHARS) return `lines around the cursor average ${Math.round(mean)} characters (minified code)`;
  }
  return undefined;
}
