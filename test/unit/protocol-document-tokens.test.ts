import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { infill } from '../../server/engine/infill';
import { CACHE_SEPARATOR, emptyPrediction, NgramCache } from '../../server/engine/ngram-cache';
import type { TextCodec } from '../../server/engine/types';
import {
  DocumentTokens,
  excerptAround,
  languageFamily,
  OPENED_WARM_CHARS,
  PASS_DOCUMENTS,
  piecesIn,
  REFRESH_AFTER_MS,
  RELATED_FILE_TOKENS,
  relatedExcerpt,
  warmRange,
  withinBudget,
} from '../../server/protocol/document-tokens';
import { PREFIX_WINDOW_CHARS, SUFFIX_WINDOW_CHARS, windowAround } from '../../server/protocol/window';
import { LineCache, splitAtLineStarts } from '../../server/runtime/tokenizer';
import { CharCodec, FACTS, scriptedModel, EOS, tok, VOCAB } from './engine-mocks';

/** A codec like the runtime's: CharCodec's ids through the tokenizer's line cache, counting the characters encoded cold. */
function linedCodec(): { codec: TextCodec; cold: () => number } {
  const chars = new CharCodec();
  const lines = new LineCache((text) => chars.encode(text));
  return { codec: { encode: (text) => lines.encode(text), decode: (ids) => chars.decode(ids) }, cold: () => chars.encodedChars };
}

/** Code-like text of `lines` distinct lines with indentation and blank lines. */
function code(lines: number, tag = 'f'): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    if (i % 7 === 0) out.push(`def ${tag}${i}(x):`);
    else if (i % 7 === 6) out.push('');
    else out.push(`    v${i} = ${tag}_call(x, ${i}) + ${i % 5}`);
  }
  return out.join('\n') + '\n';
}

/** A hand-cranked event loop and clock: nothing runs until the test says so. */
class Loop {
  queue: (() => void)[] = [];
  time = 0;
  /** Timers armed with `delay`, not yet fired or cancelled. */
  timers = new Set<{ run: () => void; ms: number }>();
  readonly schedule = (run: () => void): void => void this.queue.push(run);
  readonly delay = (run: () => void, ms: number): (() => void) => {
    const timer = { run, ms };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  };
  /** Fires every armed timer. */
  fire(): void {
    const due = [...this.timers];
    this.timers.clear();
    for (const timer of due) timer.run();
  }
  readonly now = (): number => this.time;
  /** Runs scheduled callbacks until none is left (or `limit` of them ran); returns how many ran. */
  drain(limit = 100_000): number {
    let ran = 0;
    while (this.queue.length > 0 && ran < limit) {
      this.queue.shift()!();
      ran++;
    }
    return ran;
  }
}

/** The open documents of a test, as the server's TextDocuments holds them. */
class Docs {
  readonly map = new Map<string, TextDocument>();
  readonly lookup = (uri: string): TextDocument | undefined => this.map.get(uri);
  open(uri: string, languageId: string, text: string): void {
    this.map.set(uri, TextDocument.create(uri, languageId, 1, text));
  }
  /** Inserts `text` at `offset`; returns the offset just after it (the edit's anchor). */
  insert(uri: string, offset: number, text: string): number {
    const document = this.map.get(uri)!;
    const position = document.positionAt(offset);
    TextDocument.update(document, [{ range: { start: position, end: position }, text }], document.version + 1);
    return offset + text.length;
  }
}

function setup(options: { sliceMs?: number; msPerEncode?: number } = {}) {
  const loop = new Loop();
  const docs = new Docs();
  const { codec: inner, cold } = linedCodec();
  let encodes = 0;
  const codec: TextCodec = {
    encode: (text) => {
      encodes++;
      loop.time += options.msPerEncode ?? 0;
      return inner.encode(text);
    },
    decode: inner.decode,
  };
  let loaded: TextCodec | undefined = codec;
  const tokens = new DocumentTokens({ lookup: docs.lookup, codec: () => loaded, schedule: loop.schedule, now: loop.now, delay: loop.delay, sliceMs: options.sliceMs ?? 4 });
  return {
    loop,
    docs,
    tokens,
    codec,
    cold,
    encodes: () => encodes,
    setCodec: (next: TextCodec | undefined) => (loaded = next),
  };
}

describe('the pieces a pass encodes', () => {
  it('are the line cache\'s pieces of the whole text, less the ones the range cuts', () => {
    const text = code(400);
    const whole = new Set(splitAtLineStarts(text));
    for (const [start, end] of [[0, text.length], [1234, 5678], [0, 999], [3000, text.length]]) {
      const { pieces } = piecesIn(text, start, end);
      assert.ok(pieces.length > 0);
      for (const piece of pieces) assert.ok(whole.has(piece), `${JSON.stringify(piece)} is a piece of the whole text`);
      assert.ok(text.slice(start, end).includes(pieces.join('')), 'contiguous, inside the range');
    }
    assert.equal(piecesIn(text, 0, text.length).pieces.join(''), text, 'the whole text when the range is');
  });

  it('say which piece starts at or after the anchor', () => {
    const text = 'a\nbb\nccc\n';
    assert.equal(piecesIn(text, 0, text.length, 2).anchorPiece, 1);
    assert.equal(piecesIn(text, 0, text.length, 3).anchorPiece, 2);
    assert.equal(piecesIn(text, 0, text.length, text.length).anchorPiece, 3);
  });

  it('cover the request\'s window around an edit, or the start of a document not edited', () => {
    assert.deepEqual(warmRange(100_000, 50_000), [50_000 - PREFIX_WINDOW_CHARS, 50_000 + SUFFIX_WINDOW_CHARS]);
    assert.deepEqual(warmRange(100_000, 1000), [0, 1000 + SUFFIX_WINDOW_CHARS]);
    assert.deepEqual(warmRange(100_000, undefined), [0, OPENED_WARM_CHARS]);
    assert.deepEqual(warmRange(500, undefined), [0, 500]);
  });
});

describe('excerpts of other documents', () => {
  const ids = Int32Array.from({ length: 100 }, (_, i) => i);

  it('keep three quarters before the anchor where there is room, the rest after', () => {
    const e = excerptAround(ids, 50, 20);
    assert.deepEqual(Array.from(e.ids), Array.from({ length: 20 }, (_, i) => 35 + i));
    assert.equal(e.ids[e.at], 50);
    assert.deepEqual(Array.from(excerptAround(ids, 3, 20).ids), Array.from({ length: 20 }, (_, i) => i), 'near the start: more after');
    assert.deepEqual(Array.from(excerptAround(ids, 98, 20).ids), Array.from({ length: 20 }, (_, i) => 80 + i), 'near the end: more before');
    assert.equal(excerptAround(ids, 50, 200).ids, ids, 'short enough: all of it');
  });

  it('share a token budget, most wanted first', () => {
    const budgeted = withinBudget([{ ids, at: 0 }, { ids, at: 0 }, { ids, at: 0 }], 150);
    assert.deepEqual(budgeted.map((x) => x.length), [100, 50]);
    assert.deepEqual(withinBudget([{ ids, at: 0 }], 0), []);
  });

  it('group JavaScript and TypeScript into one family and every other language into its own', () => {
    assert.equal(languageFamily('typescriptreact'), languageFamily('javascript'));
    assert.notEqual(languageFamily('python'), languageFamily('typescript'));
    assert.equal(languageFamily('Python'), 'python');
  });

  it('are what a finished pass keeps: the start of a document not edited, at most RELATED_FILE_TOKENS', () => {
    const text = code(2000);
    const { codec } = linedCodec();
    const excerpt = relatedExcerpt(codec, text)!;
    assert.equal(excerpt.ids.length, RELATED_FILE_TOKENS);
    assert.deepEqual(Array.from(excerpt.ids), new CharCodec().encode(text).slice(0, RELATED_FILE_TOKENS));
    assert.equal(relatedExcerpt(codec, 'x'.repeat(5000) + '\n'), undefined, 'a line too long to complete: none');
  });
});

describe('encoding documents off the request path', () => {
  it('encodes a document opened and not edited, up to OPENED_WARM_CHARS from its start, and keeps its ids', () => {
    const { loop, docs, tokens, cold } = setup();
    const text = code(1200); // ~30K characters
    assert.ok(text.length > 25_000 && text.length < OPENED_WARM_CHARS);
    docs.open('file:///a.py', 'python', text);
    tokens.opened('file:///a.py');
    assert.equal(cold(), 0, 'nothing on the notification\'s own turn');
    loop.drain();
    assert.equal(cold(), text.length, 'the whole document, once');
    assert.equal(tokens.stats.passes, 1);
    docs.open('file:///b.py', 'python', 'x\n');
    assert.deepEqual(Array.from(tokens.related('file:///b.py', 'python', 1)[0]), new CharCodec().encode(text).slice(0, RELATED_FILE_TOKENS));
  });

  it('leaves nothing cold for the request but the pieces its window cuts', () => {
    const { loop, docs, tokens, codec, cold } = setup();
    const text = code(1200);
    docs.open('file:///a.py', 'python', text);
    tokens.opened('file:///a.py');
    loop.drain();
    const before = cold();
    const cursor = text.indexOf('\n', Math.floor(text.length * 0.8)) + 5;
    const window = windowAround(text, cursor);
    codec.encode(window.prefix);
    codec.encode(window.suffix);
    const atRequest = cold() - before;
    assert.ok(atRequest < 200, `the request encoded ${atRequest} characters cold (the window's first line and the cursor's line)`);
  });

  it('warms the window around an edit when the document is edited', () => {
    const { loop, docs, tokens, codec, cold } = setup();
    const text = code(4000); // ~100K characters: more than a pass over an unedited document covers
    docs.open('file:///big.py', 'python', text);
    tokens.opened('file:///big.py');
    loop.drain();
    const anchor = docs.insert('file:///big.py', text.indexOf('\n', 70_000) + 1, '    y = 1\n');
    tokens.edited('file:///big.py', anchor);
    loop.drain();
    const before = cold();
    const window = windowAround(docs.lookup('file:///big.py')!.getText(), anchor);
    codec.encode(window.prefix);
    codec.encode(window.suffix);
    assert.ok(cold() - before < 200, 'the window around the edit is warm');
  });

  it('makes no pass per keystroke inside the warm window: one when the document has been quiet REFRESH_AFTER_MS', () => {
    const { loop, docs, tokens, encodes } = setup();
    const uri = 'file:///a.py';
    docs.open(uri, 'python', code(1200));
    docs.open('file:///b.py', 'python', 'x\n');
    tokens.opened(uri);
    loop.drain();
    const afterOpen = encodes();
    let at = docs.lookup(uri)!.getText().indexOf('\n', 15_000) + 1;
    for (const ch of 'zz = 42\n') {
      at = docs.insert(uri, at, ch);
      tokens.edited(uri, at, 1);
      loop.drain();
    }
    assert.equal(encodes(), afterOpen, 'typing encoded nothing');
    assert.equal(loop.timers.size, 1, 'one refresh armed, re-armed by each keystroke');
    assert.equal([...loop.timers][0].ms, REFRESH_AFTER_MS);
    loop.fire();
    loop.drain();
    assert.equal(tokens.stats.passes, 2, 'the refresh passed once');
    const text = new CharCodec().decode(Array.from(tokens.related('file:///b.py', 'python', 1)[0]));
    assert.ok(text.includes('zz = 42'), 'other documents now get the edited text');
  });

  it('passes at once after a paste or an edit near the warm window\'s edge', () => {
    const { loop, docs, tokens } = setup();
    const uri = 'file:///a.py';
    docs.open(uri, 'python', code(4000)); // ~100K characters: the pass over the opened document warms its start
    tokens.opened(uri);
    loop.drain();
    tokens.edited(uri, docs.insert(uri, 10_000, 'y = [\n' + '    1,\n'.repeat(300) + ']\n'), 1807);
    loop.drain();
    assert.equal(tokens.stats.passes, 2, 'a paste');
    tokens.edited(uri, docs.insert(uri, OPENED_WARM_CHARS - 100, 'q'), 1);
    loop.drain();
    assert.equal(tokens.stats.passes, 3, 'near the edge of the window warmed');
    assert.equal(loop.timers.size, 0);
  });

  it('works in slices of about sliceMs, yielding to the event loop between them', () => {
    const { loop, docs, tokens } = setup({ sliceMs: 4, msPerEncode: 1 });
    docs.open('file:///a.py', 'python', code(300));
    tokens.opened('file:///a.py');
    const slices = loop.drain();
    assert.ok(slices > 30, `${slices} slices`);
    assert.ok(tokens.stats.longestSliceMs <= 5, `longest slice ${tokens.stats.longestSliceMs} ms`);
    assert.equal(tokens.stats.passes, 1);
  });

  it('waits while a request holds it, and goes on when it is released', () => {
    const { loop, docs, tokens, encodes } = setup({ msPerEncode: 1 });
    docs.open('file:///a.py', 'python', code(300));
    tokens.opened('file:///a.py'); // a slice is scheduled before the request comes
    const release = tokens.hold();
    tokens.edited('file:///a.py', 10);
    loop.drain();
    assert.equal(encodes(), 0, 'nothing while held');
    release();
    release(); // twice is once
    loop.drain();
    assert.equal(tokens.stats.passes, 1);
    assert.ok(encodes() > 0);
  });

  it('hands the copy candidate the same excerpts as text, decoded once per pass', () => {
    const { loop, docs, tokens, codec } = setup();
    let decodes = 0;
    const counting = { ...codec, decode: (ids: readonly number[]) => (decodes++, codec.decode(ids)) };
    const counted = new DocumentTokens({ lookup: docs.lookup, codec: () => counting, schedule: loop.schedule, now: loop.now, delay: loop.delay });
    const text = code(40);
    docs.open('file:///a.py', 'python', text);
    docs.open('file:///b.py', 'python', 'x = 1\n');
    docs.open('file:///c.ts', 'typescript', 'let y = 2;\n');
    for (const t of [tokens, counted]) {
      t.opened('file:///a.py');
      t.opened('file:///c.ts');
    }
    loop.drain();
    assert.deepEqual(tokens.relatedTexts('file:///b.py', 'python', 3), [text], 'the other Python document, not the TypeScript one');
    assert.deepEqual(tokens.relatedTexts('file:///b.py', 'python', 0), []);
    assert.deepEqual(counted.relatedTexts('file:///b.py', 'python', 3), [text]);
    assert.deepEqual(counted.relatedTexts('file:///b.py', 'python', 3), [text]);
    assert.equal(decodes, 1, 'the second request decodes nothing');
  });

  it('starts over on a newer version, and keeps ids of the version it finished', () => {
    const { loop, docs, tokens } = setup({ msPerEncode: 1 });
    docs.open('file:///a.py', 'python', code(300, 'old'));
    docs.open('file:///b.py', 'python', 'x = 1\n');
    tokens.opened('file:///a.py');
    loop.drain(3); // part of a pass
    docs.map.set('file:///a.py', TextDocument.create('file:///a.py', 'python', 2, code(300, 'new')));
    tokens.edited('file:///a.py', undefined);
    loop.drain();
    const [ids] = tokens.related('file:///b.py', 'python', 1);
    const text = new CharCodec().decode(Array.from(ids));
    assert.ok(text.includes('new_call') && !text.includes('old_call'), 'the excerpt is of the version the pass finished');
  });

  it('waits for a model, and encodes again for a new one', () => {
    const { loop, docs, tokens, setCodec, codec } = setup();
    setCodec(undefined);
    docs.open('file:///a.py', 'python', code(50));
    docs.open('file:///b.py', 'python', code(50, 'g'));
    tokens.opened('file:///a.py');
    tokens.opened('file:///b.py');
    assert.equal(loop.drain(), 0, 'no model: nothing scheduled');
    assert.deepEqual(tokens.related('file:///b.py', 'python', 3), []);
    setCodec(codec);
    tokens.kick();
    loop.drain();
    assert.equal(tokens.related('file:///b.py', 'python', 3).length, 1);
    const { codec: other } = linedCodec();
    setCodec(other);
    assert.deepEqual(tokens.related('file:///b.py', 'python', 3), [], 'ids of another tokenizer are not handed out');
    tokens.kick();
    loop.drain();
    assert.equal(tokens.related('file:///b.py', 'python', 3).length, 1);
  });

  it('hands a request the other open documents of its family, most recently edited first, bounded', () => {
    const { loop, docs, tokens } = setup();
    const open = (name: string, languageId: string, tag: string, lines = 400) => {
      docs.open(`file:///${name}`, languageId, code(lines, tag));
      tokens.opened(`file:///${name}`);
    };
    open('a.ts', 'typescript', 'aa');
    open('b.py', 'python', 'bb');
    open('c.js', 'javascriptreact', 'cc');
    open('d.ts', 'typescript', 'dd');
    open('e.ts', 'typescript', 'ee', 2000);
    loop.drain();
    const texts = (ids: Int32Array[]) => ids.map((x) => /def (\w\w)0/.exec(new CharCodec().decode(Array.from(x)))?.[1]);
    // Editing a.ts makes it the most recent; e.ts is where the request is.
    tokens.edited('file:///a.ts', docs.insert('file:///a.ts', 0, '// top\n'));
    loop.drain();
    assert.deepEqual(texts(tokens.related('file:///e.ts', 'typescript', 8)), ['aa', 'dd', 'cc'], 'JavaScript and TypeScript, newest first, not Python, not itself');
    assert.deepEqual(texts(tokens.related('file:///e.ts', 'typescript', 2)), ['aa', 'dd'], 'at most the count asked for');
    assert.deepEqual(texts(tokens.related('file:///a.ts', 'typescript', 1)), ['ee']);
    assert.equal(tokens.related('file:///a.ts', 'typescript', 1)[0].length, RELATED_FILE_TOKENS, 'a long document gives RELATED_FILE_TOKENS');
    const budget = tokens.related('file:///e.ts', 'typescript', 8, 5000);
    assert.equal(budget.reduce((sum, x) => sum + x.length, 0), 5000, 'the token budget holds');
    assert.deepEqual(tokens.related('file:///b.py', 'python', 3), [], 'no other Python document');
    assert.deepEqual(tokens.related('file:///e.ts', 'typescript', 0), []);
    tokens.closed('file:///a.ts');
    docs.map.delete('file:///a.ts');
    assert.deepEqual(texts(tokens.related('file:///e.ts', 'typescript', 8)), ['dd', 'cc'], 'a closed document is forgotten');
  });

  it('passes over the most recently touched documents only', () => {
    const { loop, docs, tokens } = setup();
    for (let i = 0; i < PASS_DOCUMENTS + 4; i++) {
      docs.open(`file:///${i}.py`, 'python', code(20, `t${i}`));
      tokens.opened(`file:///${i}.py`);
    }
    loop.drain();
    assert.equal(tokens.stats.passes, PASS_DOCUMENTS);
    assert.equal(tokens.related('file:///x.py', 'python', 8).length, 8);
  });

  it('neither warms nor hands out a document it would not complete (minified)', () => {
    const { loop, docs, tokens } = setup();
    docs.open('file:///min.js', 'javascript', 'var a=1;'.repeat(2000) + '\n');
    docs.open('file:///b.js', 'javascript', 'x\n');
    tokens.opened('file:///min.js');
    loop.drain();
    assert.deepEqual(tokens.related('file:///b.js', 'javascript', 3), []);
  });
});

describe('another open document in the cache n-gram model', () => {
  // The document at hand never wrote what follows "total = c"; another open document did.
  const other = 'def run(items):\n    total = compute(items)\n    return total\n';
  const here = 'print(1)\ntotal = c';

  it('raises the cache\'s probability of what followed the same tokens there', () => {
    const codec = new CharCodec();
    const context = codec.encode('total = c').reverse();
    const probability = (tokens: number[]): number => {
      const out = emptyPrediction();
      new NgramCache(Int32Array.from(tokens), VOCAB, 6).predict(context, context.length, out);
      for (let e = 0; e < out.size; e++) if (out.ids[e] === tok('o')) return out.probabilities[e] * out.confidence;
      return 0;
    };
    const alone = [...codec.encode(here), CACHE_SEPARATOR];
    const withOther = [...alone, ...relatedExcerpt(codec, other)!.ids, CACHE_SEPARATOR];
    assert.equal(probability(alone), 0, 'the document alone never continues "total = c"');
    assert.ok(probability(withOther) > 0.5, `with the other document: ${probability(withOther)}`);
  });

  it('makes a model with nothing to go on write what the other document wrote, through the server\'s path', async () => {
    const { loop, docs, tokens } = setup();
    docs.open('file:///lib.py', 'python', other);
    docs.open('file:///main.py', 'python', here);
    tokens.opened('file:///lib.py');
    tokens.opened('file:///main.py');
    loop.drain();
    const related = tokens.related('file:///main.py', 'python', 3);
    assert.equal(related.length, 1);
    const clueless = scriptedModel(() => ({ token: EOS, strength: 0.5 })).model;
    const options = { steps: 16, strategy: 'confidence' as const, confidenceThreshold: 0, temperature: 0, topP: 1, candidates: 1, seed: 0, contextTokens: 64 };
    const request = { segments: [here, '\n'], holes: [{ maxTokens: 16 }], languageId: 'python' };
    const firstLine = async (cacheRelated?: Int32Array[]) =>
      (await infill(clueless, new CharCodec(), FACTS, { ...request, ...(cacheRelated ? { cacheRelated } : {}) }, { ...options, cacheNgram: true, cacheNgramWeight: 0.9 }))
        .candidates[0]?.holes[0].split('\n')[0];
    assert.equal(await firstLine(related), 'ompute(items)');
    assert.notEqual(await firstLine(), 'ompute(items)');
  });
});
