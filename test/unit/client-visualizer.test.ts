import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { INITIAL_REPLAY_ELEMENT_ID, SPEEDS, visualizerHtml } from '../../client/visualizerHtml';
import { webviewCsp } from '../../client/webviewPage';
import { displayText, replayOf } from '../../client/visualizerModel';
import type { TraceParams, TraceToken } from '../../server/protocol/messages';

const root = join(__dirname, '../..');

const token = (hole: number, index: number, step: number, text: string, extra: Partial<TraceToken> = {}): TraceToken => ({
  hole,
  index,
  step,
  text,
  confidence: 0.5,
  eos: false,
  filled: false,
  ...extra,
});

/** Two holes of 4 masks; hole 0 ends after two tokens, hole 1 has a token after its end-of-span. */
const TRACE: TraceParams = {
  uri: 'file:///work/src/my%20file.py',
  kind: 'fillHoles',
  steps: 3,
  plannedSteps: 4,
  cutByDeadline: false,
  holeLengths: [4, 4],
  tokens: [
    token(0, 0, 0, 'x', { confidence: 0.9 }),
    token(1, 0, 0, ' ='),
    token(0, 1, 1, '\n'),
    token(0, 2, 1, '', { eos: true }),
    token(0, 3, 1, '', { eos: true, filled: true }),
    token(1, 1, 2, '', { eos: true }),
    token(1, 3, 2, 'y'),
  ],
  localArness: [0.5, null, null, null, null, null, null, null],
  globalArness: [0.75, 1, 1, 1, 1, 1, 1, 1],
  partial: true,
};

describe('the unmasking-order replay', () => {
  const replay = replayOf(TRACE);

  it('lays out every mask position of every hole in document order', () => {
    assert.deepEqual(replay.holes.map((h) => h.length), [4, 4]);
    assert.equal(replay.positions, 8);
    assert.equal(replay.committed, 7);
    assert.deepEqual(replay.holes[0].map((c) => c.text), ['x', '↵\n', '', '']);
    assert.deepEqual(replay.holes[1].map((c) => c.text), [' =', '', '', 'y']);
  });

  it('keeps each token\'s step, commit rank and confidence', () => {
    assert.deepEqual(replay.holes[0].map((c) => [c.step, c.order]), [[0, 0], [1, 2], [1, 3], [1, 4]]);
    assert.equal(replay.holes[0][0].confidence, 0.9);
    assert.equal(replay.holes[0][3].filled, true);
  });

  it('leaves positions the running generation has not committed yet masked', () => {
    const pending = replay.holes[1][2];
    assert.equal(pending.step, -1);
    assert.equal(pending.order, -1);
  });

  it('counts the tokens each step committed', () => {
    assert.deepEqual(replay.committedAt, [2, 3, 2]);
  });

  it('marks committed tokens after a hole\'s first end-of-span as cut from the text', () => {
    assert.deepEqual(replay.holes[1].map((c) => c.trimmed), [false, false, false, true]);
    assert.ok(replay.holes[0].every((c) => !c.trimmed), 'end-of-span tokens themselves are not cut text');
  });

  it('pairs local and global AR-ness for k = 1..8, keeping undefined values as null', () => {
    assert.equal(replay.arness.length, 8);
    assert.deepEqual(replay.arness[0], { k: 1, local: 0.5, global: 0.75 });
    assert.deepEqual(replay.arness[1], { k: 2, local: null, global: 1 });
  });

  it('names the file and the request', () => {
    assert.equal(replay.file, 'my file.py');
    assert.equal(replay.kind, 'fillHoles');
    assert.equal(replay.latencyMs, null);
    assert.equal(replayOf({ ...TRACE, uri: '' }).file, '');
  });

  it('gives the same key to the same trace and a new key to the next step or another generation', () => {
    assert.equal(replayOf(structuredClone(TRACE)).key, replay.key);
    assert.notEqual(replayOf({ ...TRACE, steps: 4 }).key, replay.key);
    assert.notEqual(replayOf({ ...TRACE, partial: false, latencyMs: 120 }).key, replay.key);
    assert.notEqual(replayOf({ ...TRACE, tokens: TRACE.tokens.slice(0, 3) }).key, replay.key);
  });

  it('marks a partial trace whose generation ended without a final one as stopped, and only a partial one', () => {
    assert.equal(replay.stopped, false);
    const stopped = replayOf(TRACE, true);
    assert.equal(stopped.stopped, true);
    assert.notEqual(stopped.key, replay.key, 'a restored view replaces "running" by "stopped"');
    assert.equal(replayOf({ ...TRACE, partial: false }, true).stopped, false);
  });

  it('ignores tokens outside the trace\'s holes instead of drawing them anywhere', () => {
    const odd = replayOf({ ...TRACE, tokens: [...TRACE.tokens, token(2, 0, 0, 'z'), token(0, 9, 0, 'z')] });
    assert.equal(odd.committed, 7);
  });

  it('makes newlines and tabs visible', () => {
    assert.equal(displayText('a\r\n\tb\n'), 'a↵\n→b↵\n');
  });
});

describe('the unmasking-order page', () => {
  const page = { cspSource: 'https://file+.vscode-resource.vscode-cdn.net', nonce: 'abc123+/=', scriptUri: 'https://x/media/visualizer.js', styleUri: 'https://x/media/visualizer.css' };
  const replay = replayOf({ ...TRACE, tokens: [...TRACE.tokens.slice(0, -1), token(0, 1, 0, '</script><!--')] });
  const html = visualizerHtml(page, replay);
  const script = readFileSync(join(root, 'media/visualizer.js'), 'utf8');
  const dataBlock = (page: string): string => {
    const open = `<script type="application/json" id="${INITIAL_REPLAY_ELEMENT_ID}">`;
    const start = page.indexOf(open) + open.length;
    return page.slice(start, page.indexOf('</script>', start));
  };

  it('has a strict Content Security Policy: nothing but local styles and the script with this page\'s nonce', () => {
    const csp = webviewCsp(page);
    assert.match(csp, /^default-src 'none';/);
    assert.match(csp, /script-src 'nonce-abc123\+\/='$/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.ok(html.includes(`content="${csp}"`), 'the policy is in the page');
  });

  it('loads exactly one script, with the nonce, and no inline script or style: the replay is a JSON data block', () => {
    const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
    assert.deepEqual(scripts, [
      `<script type="application/json" id="${INITIAL_REPLAY_ELEMENT_ID}">`,
      `<script nonce="${page.nonce}" src="${page.scriptUri}">`,
    ]);
    assert.doesNotMatch(html, /<style|\sstyle="|\son[a-z]+="/);
  });

  it('carries the replay it opens with, so that code in it cannot end the data block', () => {
    assert.ok(!dataBlock(html).includes('<'));
    assert.deepEqual(JSON.parse(dataBlock(html)), replay);
    assert.equal(JSON.parse(dataBlock(visualizerHtml(page, null))), null, 'no generation yet');
    assert.ok(script.includes(`byId('${INITIAL_REPLAY_ELEMENT_ID}')`), 'the script reads the block');
  });

  it('refers to no remote resource', () => {
    const urls = [...html.matchAll(/https?:\/\/[^"'\s;]+/g)].map((m) => m[0]);
    assert.deepEqual(urls.filter((u) => ![page.scriptUri, page.styleUri].includes(u) && !u.startsWith(page.cspSource)), []);
    assert.doesNotMatch(script, /https?:\/\/|eval\(|new Function|innerHTML/);
    assert.doesNotMatch(readFileSync(join(root, 'media/visualizer.css'), 'utf8'), /https?:\/\/|@import|url\(/);
  });

  it('has every element the script looks up, and the speeds it offers', () => {
    for (const [, id] of script.matchAll(/byId\('([^']+)'\)/g)) assert.ok(html.includes(`id="${id}"`), `the page has #${id}`);
    for (const speed of SPEEDS) assert.ok(html.includes(`<option value="${speed}"`));
  });

  it('is opened by a contributed command, restored after a reload, and ships its media', () => {
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const commands = manifest.contributes.commands.map((c: { command: string; title: string }) => `${c.command}=${c.title}`);
    assert.ok(commands.includes('unmask.showUnmaskingOrder=Show Unmasking Order'));
    assert.ok(commands.includes('unmask.fillHoles=Fill All Holes'));
    assert.ok(manifest.activationEvents.includes('onWebviewPanel:unmask.unmaskingOrder'));
    const ignored = readFileSync(join(root, '.vscodeignore'), 'utf8');
    assert.doesNotMatch(ignored, /^media/m, 'media/ goes into the VSIX');
  });
});
