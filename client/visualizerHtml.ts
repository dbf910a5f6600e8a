/**
 * The unmasking-order webview's page: a fixed skeleton that media/visualizer.js fills in, starting from the replay
 * the extension knew when it wrote the page, which travels in the page as a JSON data block (not code) so that the
 * first paint does not wait for a message round trip. The Content Security Policy allows nothing but the extension's
 * own stylesheet and the one script carrying this page's nonce: no inline code, no remote resources. Pure (strings in,
 * a string out) so that the policy and the escaping are unit-tested.
 */

import { embeddedJson, escapeAttribute, webviewHead, type WebviewPage } from './webviewPage';
import type { Replay } from './visualizerModel';

export type VisualizerPage = WebviewPage;

/** Replay speeds offered, as multiples of the base rate (media/visualizer.js: steps per second at 1x). */
export const SPEEDS = [0.25, 0.5, 1, 2, 4];


/** Id of the JSON data block holding the replay the page starts from (null: no generation yet). */
export const INITIAL_REPLAY_ELEMENT_ID = 'unmask-visualizer-initial';

export function visualizerHtml(page: VisualizerPage, initial: Replay | null): string {
  const speeds = SPEEDS.map((s) => `<option value="${s}"${s === 1 ? ' selected' : ''}>${s}×</option>`).join('');
  return `${webviewHead(page, 'Unmasking Order')}
<body>
<main id="app" class="unmask-visualizer" data-state="empty">
  <header>
    <h1>Unmasking order</h1>
    <p id="meta" class="meta"></p>
  </header>
  <p id="empty" class="empty">No generation yet. Type in a file, or run Fill Selection or Fill All Holes: this view shows the last generation and follows new ones as they run.</p>
  <section class="controls" aria-label="Replay">
    <button id="play" type="button" aria-keyshortcuts="Space">Play</button>
    <button id="back" type="button" aria-label="Previous step" title="Previous step (Left arrow)">&#x2039;</button>
    <button id="forward" type="button" aria-label="Next step" title="Next step (Right arrow)">&#x203A;</button>
    <input id="scrub" type="range" min="0" max="0" step="1" value="0" aria-label="Step">
    <span id="position" class="position" aria-hidden="true"></span>
    <label>Speed <select id="speed">${speeds}</select></label>
    <label title="Show each new generation as it runs"><input id="live" type="checkbox" checked> Follow live</label>
  </section>
  <p id="status" class="status" role="status" aria-live="polite"></p>
  <section id="canvas" class="canvas" aria-label="Tokens of each hole, in document order"></section>
  <section id="legend" class="legend" aria-label="Colour of each step"></section>
  <section class="arness" aria-labelledby="arness-title">
    <h2 id="arness-title">AR-ness@k of this generation</h2>
    <table id="arness"></table>
    <p class="hint">1 means strictly left to right. Local: share of commits that continue a run of the k commits before them; global: share of commits that take one of the k left-most masks still open.</p>
  </section>
</main>
<script type="application/json" id="${INITIAL_REPLAY_ELEMENT_ID}">${embeddedJson(initial)}</script>
<script nonce="${escapeAttribute(page.nonce)}" src="${escapeAttribute(page.scriptUri)}"></script>
</body>
</html>
`;
}
