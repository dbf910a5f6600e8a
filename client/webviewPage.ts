/**
 * What every Unmask webview page shares: its Content Security Policy and its <head>. The policy allows nothing but the
 * extension's own stylesheet and fonts and the one script carrying the page's nonce: no inline code, no remote
 * resources. Pure (strings in, a string out), so the policy and the escaping are unit-tested through the pages.
 */

export interface WebviewPage {
  /** webview.cspSource: the origin the webview serves the extension's local files from. */
  readonly cspSource: string;
  /** A fresh random value per page load. */
  readonly nonce: string;
  readonly scriptUri: string;
  readonly styleUri: string;
}

/**
 * JSON that can sit inside a <script type="application/json"> data block: "<" is written as \u003c, so no
 * "</script>" or "<!--" in the data (code from the user's files) can end the block early; JSON.parse reads it back
 * unchanged.
 */
export function embeddedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/** Escapes text for an HTML attribute value or element content. */
export const escapeAttribute = (value: string): string =>
  value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function webviewCsp(page: Pick<WebviewPage, 'cspSource' | 'nonce'>): string {
  return ["default-src 'none'", `style-src ${page.cspSource}`, `font-src ${page.cspSource}`, `script-src 'nonce-${page.nonce}'`].join('; ');
}

/** The page's opening through </head>: charset, the policy, the viewport, its stylesheet and its title. */
export function webviewHead(page: WebviewPage, title: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttribute(webviewCsp(page))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeAttribute(page.styleUri)}">
<title>${escapeAttribute(title)}</title>
</head>`;
}
