/**
 * The candidates panel's page: a skeleton that media/candidates.js fills in from the panel model, which travels in
 * the page as a JSON data block (not code). The Content Security Policy allows nothing but the extension's own
 * stylesheet and the one script carrying this page's nonce: no inline code, no remote resources. Pure (strings in, a
 * string out), so the policy and the escaping are unit-tested.
 */
import type { PanelModel } from './candidateView';

export interface CandidatesPage {
  /** webview.cspSource: the origin the webview serves the extension's local files from. */
  readonly cspSource: string;
  /** A fresh random value per page. */
  readonly nonce: string;
  readonly scriptUri: string;
  readonly styleUri: string;
}

/** Id of the JSON data block that media/candidates.js reads. */
export const MODEL_ELEMENT_ID = 'unmask-candidates-model';

const escapeHtml = (value: string): string =>
  value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * JSON that can sit inside a <script> element: "<" is written as \u003c, so no "</script>" or "<!--" in the
 * candidates' code can end the block early; JSON.parse reads it back unchanged.
 */
export function embeddedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

export function candidatesCsp(page: Pick<CandidatesPage, 'cspSource' | 'nonce'>): string {
  return ["default-src 'none'", `style-src ${page.cspSource}`, `font-src ${page.cspSource}`, `script-src 'nonce-${page.nonce}'`].join('; ');
}

export function candidatesHtml(page: CandidatesPage, model: PanelModel): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(candidatesCsp(page))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeHtml(page.styleUri)}">
<title>Unmask candidates</title>
</head>
<body>
<main class="unmask-candidates">
  <header>
    <h1 id="title"></h1>
    <p id="summary" class="summary"></p>
    <p class="keys">Click a candidate or press its number to insert it; Enter inserts the focused one, the arrow keys move, Esc closes.
    In the editor, Alt+\\ then Alt+] / Alt+[ cycles through the same list as inline suggestions.</p>
  </header>
  <p id="stale" class="stale" role="alert" hidden></p>
  <p id="empty" class="empty" hidden></p>
  <ol id="candidates" class="candidates" role="listbox" aria-label="Candidates, best first"></ol>
</main>
<script type="application/json" id="${MODEL_ELEMENT_ID}">${embeddedJson(model)}</script>
<script nonce="${escapeHtml(page.nonce)}" src="${escapeHtml(page.scriptUri)}"></script>
</body>
</html>
`;
}
