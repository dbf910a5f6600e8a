import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { candidatesHtml, MODEL_ELEMENT_ID } from '../../client/candidatesHtml';
import { embeddedJson, webviewCsp } from '../../client/webviewPage';
import { CONTEXT_LINES, panelModel, surroundings } from '../../client/candidateView';
import { PinnedCandidates } from '../../client/pinnedCandidates';
import type { CandidateItem, CandidatesResult } from '../../server/protocol/messages';

describe('pinned candidates', () => {
  const list = { uri: 'file:///a.py', version: 3, line: 4, character: 8, texts: ['return 1', 'return 2'] };

  // [what is asked, expected]
  const cases: [string, [string, number, number, number], readonly string[] | undefined][] = [
    ['the same document, version and position', ['file:///a.py', 3, 4, 8], ['return 1', 'return 2']],
    ['another position', ['file:///a.py', 3, 4, 9], undefined],
    ['another line', ['file:///a.py', 3, 5, 8], undefined],
    ['another document', ['file:///b.py', 3, 4, 8], undefined],
    ['a newer version', ['file:///a.py', 4, 4, 8], undefined],
  ];
  for (const [name, [uri, version, line, character], expected] of cases) {
    it(`answer for ${name}: ${expected ? 'the list' : 'nothing'}`, () => {
      const pinned = new PinnedCandidates();
      pinned.pin(list);
      assert.deepEqual(pinned.get(uri, version, line, character), expected);
    });
  }

  it('retire the list for good once the document changed', () => {
    const pinned = new PinnedCandidates();
    pinned.pin(list);
    assert.equal(pinned.get('file:///a.py', 4, 4, 8), undefined);
    assert.equal(pinned.get('file:///a.py', 3, 4, 8), undefined, 'an undo back to version 3 is still a change');
  });

  it('keep only the latest list, and none when it is empty', () => {
    const pinned = new PinnedCandidates();
    pinned.pin(list);
    pinned.pin({ ...list, line: 7, texts: ['x'] });
    assert.equal(pinned.get('file:///a.py', 3, 4, 8), undefined);
    assert.deepEqual(pinned.get('file:///a.py', 3, 7, 8), ['x']);
    pinned.pin({ ...list, texts: [] });
    assert.equal(pinned.get('file:///a.py', 3, 4, 8), undefined);
  });

  it('forget the list of a closed document', () => {
    const pinned = new PinnedCandidates();
    pinned.pin(list);
    pinned.forget('file:///b.py');
    assert.ok(pinned.get('file:///a.py', 3, 4, 8));
    pinned.forget('file:///a.py');
    assert.equal(pinned.get('file:///a.py', 3, 4, 8), undefined);
  });
});

describe('the candidates panel model', () => {
  const item = (text: string, extra: Partial<CandidateItem> = {}): CandidateItem => ({
    text,
    logProb: -2,
    tokens: 4,
    meanConfidence: 0.7,
    score: -0.5,
    ...extra,
  });
  const result = (candidates: CandidateItem[], extra: Partial<CandidatesResult> = {}): CandidatesResult => ({
    candidates,
    batch: 4,
    modelCalls: 8,
    latencyMs: 812.4,
    ...extra,
  });
  const where = { fileName: 'main.py', line: 4, character: 8 };

  it(`shows ${CONTEXT_LINES} lines around the cursor's line, split at the cursor`, () => {
    const text = 'l0\nl1\nl2\nl3\n    x = \nl5\nl6\nl7\n';
    const offset = text.indexOf('x = ') + 4;
    assert.deepEqual(surroundings(text, offset), { before: 'l2\nl3\n    x = ', after: '\nl5\nl6' });
    assert.deepEqual(surroundings('ab', 1), { before: 'a', after: 'b' });
    assert.deepEqual(surroundings('', 0), { before: '', after: '' });
  });

  it('ranks the entries in the order the server sent and states each score in words', () => {
    const model = panelModel(
      result([item('a()', { syntaxErrors: 0, score: 1.25 }), item('b(', { syntaxErrors: 2 }), item('c', { syntaxErrors: 1 }), item('d')]),
      { before: 'x = ', after: '\n' },
      where,
    );
    assert.deepEqual(
      model.entries.map((e) => [e.rank, e.inserted, e.syntax, e.syntaxOk]),
      [
        [1, 'a()', 'syntax ok', true],
        [2, 'b(', '2 syntax errors', false],
        [3, 'c', '1 syntax error', false],
        [4, 'd', 'no syntax check', null],
      ],
    );
    assert.equal(model.entries[0].likelihood, 'log-prob -0.50/token (p ≈ 0.61)');
    assert.equal(model.entries[0].score, 'score 1.25');
    assert.equal(model.entries[0].before, 'x = ');
    assert.deepEqual([model.line, model.column, model.fileName], [5, 9, 'main.py']);
    assert.equal(model.summary, '4 generated in one batch, 8 model calls, 812 ms');
    assert.equal(model.empty, undefined);
  });

  it('says how many of the batch were distinct, and why there is nothing to show', () => {
    assert.equal(panelModel(result([item('a')]), { before: '', after: '' }, where).summary, '4 generated in one batch (1 distinct), 8 model calls, 812 ms');
    const empty = panelModel(result([], { error: 'the model is not loaded', batch: 0, modelCalls: 0 }), { before: '', after: '' }, where);
    assert.deepEqual(empty.entries, []);
    assert.equal(empty.empty, 'the model is not loaded');
    assert.match(empty.summary, /^nothing generated/);
    assert.match(panelModel(result([]), { before: '', after: '' }, where).empty!, /only empty or whitespace/);
  });
});

describe('the candidates page', () => {
  const page = { cspSource: 'https://file+.vscode-resource.vscode-cdn.net', nonce: 'abc123==', scriptUri: 'https://r/candidates.js', styleUri: 'https://r/candidates.css' };
  const model = panelModel(
    { candidates: [{ text: '</script><script>alert(1)</script>', logProb: -1, tokens: 1, meanConfidence: 0.5, score: -1 }], batch: 1, modelCalls: 8, latencyMs: 5 },
    { before: 'x = "<!--"', after: '' },
    { fileName: 'a.py', line: 0, character: 0 },
  );
  const html = candidatesHtml(page, model);

  it('allows only its own stylesheet and its one nonce-carrying script, and nothing remote', () => {
    const csp = webviewCsp(page);
    assert.equal(csp, `default-src 'none'; style-src ${page.cspSource}; font-src ${page.cspSource}; script-src 'nonce-abc123=='`);
    assert.ok(html.includes(`content="${csp}"`));
    const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
    assert.deepEqual(scripts, [`<script type="application/json" id="${MODEL_ELEMENT_ID}">`, `<script nonce="abc123==" src="https://r/candidates.js">`]);
    assert.ok(!/\son\w+=/.test(html), 'no inline event handlers');
    assert.ok(!/https?:\/\/(?!r\/)/.test(html.replaceAll(page.cspSource, '')), 'no other origin');
  });

  it('embeds the model so that code in a candidate cannot end the data block', () => {
    const block = html.slice(html.indexOf(`id="${MODEL_ELEMENT_ID}">`) + MODEL_ELEMENT_ID.length + 6, html.indexOf('</script>'));
    assert.ok(!block.includes('<'));
    assert.deepEqual(JSON.parse(block), JSON.parse(JSON.stringify(model)));
    assert.equal(JSON.parse(embeddedJson('a</b>')), 'a</b>');
  });
});
