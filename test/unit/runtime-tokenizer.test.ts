import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import type { ModelFacts } from '../../server/engine/types';
import { denoiserGraphs, loadManifest, requireFile } from '../../server/runtime/manifest';
import { factsFromMetadata } from '../../server/runtime/metadata';
import { readOnnxFileInfo } from '../../server/runtime/onnx-proto';
import { healTail } from '../../server/engine/healing';
import { loadTokenizer, splitAtLineStarts } from '../../server/runtime/tokenizer';
import { Tokenizer } from '@huggingface/tokenizers';
import { REPO_ROOT, SHIPPED_MODEL_DIR, SMOKE_CACHED_MODEL_DIR, SMOKE_MODEL_DIR, tempDir } from '../fixtures/models';
import { writeTinyModel } from '../fixtures/tiny-model';

const SAMPLES = [
  'def add(a, b):\n    return a + b\n',
  'export function f<T>(xs: T[]): T | undefined {\r\n\treturn xs[0];\r\n}\r\n',
  'const s = "naïve café — ünïcödé ✓ 🚀";  // comment\n',
  '    \n\n\t\t  trailing spaces   \n',
  '',
];

function fixture(): { file: string; facts: ModelFacts } {
  const dir = tempDir('tokenizer');
  writeTinyModel(dir);
  const manifest = loadManifest(dir);
  return { file: requireFile(manifest, 'tokenizer.json'), facts: factsFromMetadata(manifest.metadata, 'manifest') };
}

/** Real model folders to check as well: the shipped model and the recipe's smoke model, when present. */
const realModels = [SHIPPED_MODEL_DIR, SMOKE_MODEL_DIR, SMOKE_CACHED_MODEL_DIR].filter((dir) => fs.existsSync(path.join(dir, 'manifest.json')));

describe('the tokenizer', () => {
  it('round-trips code exactly', () => {
    const { file, facts } = fixture();
    const { codec } = loadTokenizer(file, facts);
    for (const text of SAMPLES) assert.equal(codec.decode(codec.encode(text)), text);
  });

  it('never turns special token strings in user text into special ids', () => {
    const { file, facts } = fixture();
    const { codec } = loadTokenizer(file, facts);
    const text = 'x = "<|mask|>" + "<|eos|><|lang:python|>"';
    const ids = codec.encode(text);
    for (const special of [facts.maskId, facts.eosId, facts.langIds.python]) assert.ok(!ids.includes(special));
    assert.equal(codec.decode(ids), text);
  });

  it('splits text into line pieces that concatenate back to it', () => {
    const text = 'a\n  b\n\n\tc \r\nd\n   \n';
    assert.deepEqual(splitAtLineStarts(text), ['a\n', '  b\n\n', '\tc \r\n', 'd\n   \n']);
    assert.equal(splitAtLineStarts(text).join(''), text);
  });

  it('keeps no document alive through its line cache (issue 15 soak: a document version per keystroke)', () => {
    const { file, facts } = fixture();
    const { codec, lineCache } = loadTokenizer(file, facts);
    assert.ok(lineCache, 'the fixture tokenizer encodes line by line');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const filler = 'x = 1\n'.repeat(10_000); // 60 KB around the typed line, as in a long file
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 500; i++) {
      // Each keystroke: a new document string, and the window around the cursor sliced from it.
      const document = `${filler}value_${i} = compute(${i})\n${filler}`;
      codec.encode(document.slice(filler.length - 12, filler.length + 40));
    }
    gc();
    const retainedMb = (process.memoryUsage().heapUsed - before) / 2 ** 20;
    // 500 documents of 120 KB are 60 MB when cached lines keep their parents alive; the lines alone are tiny.
    assert.ok(retainedMb < 10, `the line cache retains ${retainedMb.toFixed(1)} MB`);
  });

  it('keeps no document alive through a cached line it hits again', () => {
    const { file, facts } = fixture();
    const { codec } = loadTokenizer(file, facts);
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // 200 distinct lines long enough (13+ characters) for V8 to slice them as views into their document.
    const lines = Array.from({ length: 200 }, (_, i) => `    total_${i} = compute_something(items, ${i})\n`);
    const body = lines.join('');
    for (const line of lines) codec.encode(line); // every line cached once
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 200; i++) {
      // Each keystroke: a new flat document string (60 KB of filler around the body); the request encodes one line of
      // it, already cached. A hit that stored the new slice as its key kept this whole version alive.
      const document = Buffer.from(`${'#'.repeat(60_000)}\n${body}`).toString();
      const start = document.indexOf(lines[i]);
      codec.encode(document.slice(start, start + lines[i].length));
    }
    gc();
    const retainedMb = (process.memoryUsage().heapUsed - before) / 2 ** 20;
    // 200 documents of 70 KB are 14 MB when hits keep their parents alive.
    assert.ok(retainedMb < 5, `the line cache retains ${retainedMb.toFixed(1)} MB`);
  });

  it('drops special tokens when decoding', () => {
    const { file, facts } = fixture();
    const { codec } = loadTokenizer(file, facts);
    const ids = [...codec.encode('ab'), facts.maskId, facts.eosId, ...codec.encode('c')];
    assert.equal(codec.decode(ids), 'abc');
  });

  it('refuses a model whose special id is an ordinary token', () => {
    const { file, facts } = fixture();
    assert.throws(() => loadTokenizer(file, { ...facts, maskId: 100 }), /the model's mask id 100 is the ordinary token ".*", expected a special token/);
  });

  it('refuses a manifest that names another special token string', () => {
    const { file, facts } = fixture();
    assert.throws(() => loadTokenizer(file, facts, { eos: '<|endoftext|>' }), /the manifest names eos "<\|endoftext\|>" but id 2 is "<\|eos\|>"/);
  });

  it('refuses a tokenizer larger than the model vocabulary', () => {
    const { file, facts } = fixture();
    assert.throws(() => loadTokenizer(file, { ...facts, vocabSize: 100 }), /has ids up to \d+ but the model's vocabulary has 100 entries/);
  });

  it('names a tokenizer file that is not JSON', () => {
    const dir = tempDir('tokenizer');
    const file = path.join(dir, 'tokenizer.json');
    fs.writeFileSync(file, '{"model": ');
    const { facts } = fixture();
    assert.throws(() => loadTokenizer(file, facts), (err: Error) => err.message.startsWith(`Tokenizer ${file} is not readable JSON`));
  });

  for (const dir of realModels) {
    const label = path.relative(REPO_ROOT, dir);
    it(`of ${label} round-trips this repository's sources`, () => {
      const manifest = loadManifest(dir);
      const graphs = denoiserGraphs(manifest);
      const facts = factsFromMetadata(readOnnxFileInfo(graphs.kind === 'cached' ? graphs.step : graphs.model).metadata, 'model');
      const { codec } = loadTokenizer(requireFile(manifest, 'tokenizer.json'), facts, manifest.specialTokens);
      const tokenizerJson = JSON.parse(fs.readFileSync(requireFile(manifest, 'tokenizer.json'), 'utf8'));
      const inOneGo = new Tokenizer({ ...tokenizerJson, added_tokens: [] }, {});
      for (const source of ['server/runtime/model.ts', 'server/protocol/server.ts', 'models/recipe/unmask/common.py']) {
        const full = path.join(REPO_ROOT, source);
        if (!fs.existsSync(full)) continue;
        const text = fs.readFileSync(full, 'utf8');
        const ids = codec.encode(text);
        assert.deepEqual(ids, inOneGo.encode(text, { add_special_tokens: false }).ids, `${source}: line-by-line ids differ`);
        assert.equal(codec.decode(ids), text, source);
      }
    });
  }
});

/**
 * Ids identical to Python `tokenizers`: the recipe writes {text, ids, decoded} cases encoded by Python (without
 * special tokens added) next to the tokenizer (models/recipe/scripts/data_tokenizer.py). One deliberate difference: Python turns a
 * special token string inside the text ("<|mask|>") into its special id, while the runtime encodes it as plain text,
 * so a file that mentions "<|mask|>" cannot punch a hole into the canvas. Cases with such strings are checked for
 * that instead.
 */
const PYTHON_FIXTURES = [
  ...realModels.map((dir) => path.join(dir, 'tokenizer_fixture.json')),
  path.join(REPO_ROOT, 'models', 'recipe', 'data', 'tokenizer', 'fixture.json'),
].filter((file) => fs.existsSync(file));

interface PythonFixture {
  special_tokens: Record<string, number>;
  cases: { name: string; text: string; ids: number[]; decoded: string }[];
}

describe('the tokenizer against Python', () => {
  if (PYTHON_FIXTURES.length === 0) {
    it('has no Python fixture to compare with yet (models/recipe/data/tokenizer/fixture.json)', { skip: 'no fixture written by the recipe' }, () => undefined);
  }
  for (const fixtureFile of PYTHON_FIXTURES) {
    it(`gives the same ids as Python for every case of ${path.relative(REPO_ROOT, fixtureFile)}`, (t) => {
      const fixture = JSON.parse(fs.readFileSync(fixtureFile, 'utf8')) as PythonFixture;
      assert.ok(fixture.cases.length > 0, 'the fixture holds no cases');
      const tokenizerFile = path.join(path.dirname(fixtureFile), 'tokenizer.json');
      const { codec, lineCache } = loadTokenizer(tokenizerFile, factsFor(tokenizerFile, fixture.special_tokens));
      assert.ok(lineCache, 'the tokenizer passes the line-by-line self-check');
      const specialStrings = Object.keys(fixture.special_tokens);
      const specialIds = new Set(Object.values(fixture.special_tokens));
      let compared = 0;
      for (const c of fixture.cases) {
        const ids = codec.encode(c.text);
        if (specialStrings.some((s) => c.text.includes(s))) {
          assert.ok(!ids.some((id) => specialIds.has(id)), `${c.name}: special strings in text became special ids`);
          assert.equal(codec.decode(ids), c.text, `${c.name}: round trip`);
          continue;
        }
        assert.deepEqual(ids, c.ids, `${c.name}: ids differ from Python`);
        assert.equal(codec.decode(c.ids), c.decoded, `${c.name}: decoding differs from Python`);
        compared++;
      }
      t.diagnostic(`${compared} cases identical to Python, ${fixture.cases.length - compared} with special strings kept as text`);
      assert.ok(compared > 0);
      // Whole files: line-by-line encoding (with its cache) gives the ids of encoding in one go.
      const inOneGo = new Tokenizer({ ...JSON.parse(fs.readFileSync(tokenizerFile, 'utf8')), added_tokens: [] }, {});
      for (const source of ['server/runtime/tokenizer.ts', 'models/recipe/scripts/data_tokenizer.py']) {
        const text = fs.readFileSync(path.join(REPO_ROOT, source), 'utf8');
        assert.deepEqual(codec.encode(text), inOneGo.encode(text, { add_special_tokens: false }).ids, source);
      }
    });
  }
});

/** Facts that fit a tokenizer for an encoding test: its special ids by string, its size as the vocabulary. */
function factsFor(tokenizerFile: string, special: Record<string, number>): ModelFacts {
  const json = JSON.parse(fs.readFileSync(tokenizerFile, 'utf8')) as { added_tokens: { id: number }[]; model: { vocab: Record<string, number> } };
  const size = Math.max(...Object.values(json.model.vocab), ...json.added_tokens.map((t) => t.id)) + 1;
  const id = (content: string): number => {
    assert.ok(special[content] !== undefined, `the fixture names no ${content}`);
    return special[content];
  };
  return {
    vocabSize: size,
    maxSeqLen: 256,
    maskId: id('<|mask|>'),
    eosId: id('<|eos|>'),
    padId: id('<|pad|>'),
    fileSepId: id('<|file|>'),
    langIds: { other: id('<|lang:other|>'), python: id('<|lang:python|>') },
    spanBuckets: [8],
  };
}

describe("the tokenizer's pieces (token healing)", () => {
  for (const dir of realModels) {
    it(`lists every id's text and heals a word cut by the cursor: ${path.basename(dir)}`, () => {
      const manifest = loadManifest(dir);
      const graphs = denoiserGraphs(manifest, 'auto');
      const facts = factsFromMetadata(readOnnxFileInfo(graphs.kind === 'cached' ? graphs.step : graphs.model).metadata, dir);
      const { codec, size } = loadTokenizer(requireFile(manifest, 'tokenizer.json'), facts, manifest.specialTokens);
      const pieces = codec.pieces!();
      assert.equal(pieces.length, size);
      assert.equal(codec.pieces!(), pieces, 'built once');
      for (const id of [facts.maskId, facts.eosId, facts.padId, ...Object.values(facts.langIds)]) assert.equal(pieces[id], '');
      const prefix = 'self.marks.append(token.start_ma';
      const tokens = codec.encode(prefix);
      const healing = healTail(tokens, prefix, (ids) => codec.decode(ids), pieces);
      assert.ok(healing, 'a prefix that ends inside a word is healed');
      assert.ok(prefix.endsWith(healing.partial));
      assert.deepEqual(healing.fallback, tokens.slice(tokens.length - healing.fallback.length));
      assert.equal(codec.decode(tokens.slice(0, tokens.length - healing.fallback.length)) + healing.partial, prefix);
      assert.deepEqual(healing.texts, healing.ids.map((id) => pieces[id]));
      assert.ok(healing.texts.some((text) => text.startsWith(healing.partial) && text.length > healing.partial.length));
    });
  }
});
