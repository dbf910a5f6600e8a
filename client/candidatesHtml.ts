/**
 * The candidates panel's page: a skeleton that media/candidates.js fills in from the panel model, which travels in
 * the page as a JSON data block (not code). The Content Security Policy allows nothing but the extension's own
 * stylesheet and the one script carrying this page's nonce: no inline code, no remote resources. Pure (strings in, a
 * string out), so the policy and the escaping are unit-tested.
 */
import type { PanelModel } from './candidateView';
import { embeddedJson, escapeAttribute, webviewHead, type WebviewPage } from './webviewPage';

export type CandidatesPage = WebviewPage;

/** Id of the JSON data block that media/candidates.js reads. */
export const MODEL_ELEMENT_ID = 'unmask-candidates-model';

export function candidatesHtml(page: CandidatesPage, model: PanelModel): string {
  return `${webviewHead(page, 'Unmask candidates')}
<body>
<main class="unmask-candidates">
  <header>
    <h1 id="title"></h1>
    <p id="summary" class="summary"></p>
    <p class="keys">Click a candidate or press its number to insert it; Enter inserts the focused one, the arrow keys move, Esc closes.
    In the editor, Ctrl+Alt+\\ then Alt+] / Alt+[ cycles through the same list as inline suggestions.</p>
  </header>
  <p id="stale" class="stale" role="alert" hidden></p>
  <p id="empty" class="empty" hidden></p>
  <ol id="candidates" class="candidates" role="listbox" aria-label="Candidates, best first"></ol>
</main>
<script type="application/json" id="${MODEL_ELEMENT_ID}">${embeddedJson(model)}</script>
<script nonce="${escapeAttribute(page.nonce)}" src="${escapeAttribute(page.scriptUri)}"></script>
</body>
</html>
`;
}
