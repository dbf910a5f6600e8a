import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveSamplerOptions } from '../../server/engine/options';
import type { ModelFacts } from '../../server/engine/types';
import { rankedCompletions } from '../../server/protocol/candidates';
import { type DiscriminatorInput, readDiscriminator } from '../../server/runtime/discriminator';
import { loadManifest } from '../../server/runtime/manifest';
import { factsFromMetadata } from '../../server/runtime/metadata';
import { type LoadedModel, loadModel } from '../../server/runtime/model';
import { tempDir } from '../fixtures/models';
import { DISC_FILE, TINY_T_CLEAN, type TinyDisc, type TinyDiscOptions, referenceScores, writeTinyDiscriminator } from '../fixtures/tiny-disc';
import { type TinyModel, writeTinyModel } from '../fixtures/tiny-model';

const CRASHING_WORKER = path.join(__dirname, '..', 'fixtures', 'crashing-worker.ts');

function denoiserFacts(model: TinyModel): ModelFacts {
  const meta = Object.fromEntries(Object.entries(model.metadata).filter((e): e is [string, string] => e[1] !== undefined));
  return factsFromMetadata(meta, 'model.onnx');
}

/** A batch of canvases over the fixture's byte tokens, with `numPositions` scored positions per row. */
function canvases(batch: number, seqLen: number, numPositions: number, t = TINY_T_CLEAN): DiscriminatorInput {
  const ids = Int32Array.from({ length: batch * seqLen }, (_, i) => 8 + ((i * 37 + 5) % 200));
  const positions = Int32Array.from({ length: batch * numPositions }, (_, i) => (i * 3 + 1) % seqLen);
  return { ids, batch, seqLen, positions, numPositions, t: new Float32Array(batch).fill(t) };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  return a.reduce((worst, x, i) => Math.max(worst, Math.abs(x - b[i])), 0);
}

/** Every fixture folder of this file lives under one temporary folder (one exit handler, not one per folder). */
const root = tempDir('disc');
let folders = 0;
const freshDir = (): string => path.join(root, String(folders++));

/** A tiny model folder with a discriminator written with `options`. */
function folder(options: TinyDiscOptions = {}): { model: TinyModel; disc: TinyDisc } {
  const model = writeTinyModel(freshDir());
  return { model, disc: writeTinyDiscriminator(model, options) };
}

describe('reading a discriminator from a model folder', () => {
  it('reads the file the manifest lists as discriminator-int8, with its t_clean', () => {
    const { model } = folder();
    const spec = readDiscriminator(loadManifest(model.dir), denoiserFacts(model), 'model.onnx', true);
    assert.equal(spec?.where, DISC_FILE);
    assert.equal(spec?.tClean, TINY_T_CLEAN);
    assert.equal(spec?.facts.vocabSize, model.vocabSize);
  });

  it('finds none in a folder whose manifest lists none', () => {
    const model = writeTinyModel(freshDir());
    assert.equal(readDiscriminator(loadManifest(model.dir), denoiserFacts(model), 'model.onnx', true), undefined);
  });

  const mismatches: [string, TinyDiscOptions, RegExp][] = [
    ['another vocabulary', { vocabSize: 288 }, /disc.int8.onnx does not fit the denoiser model.onnx: "unmask.vocab_size" is 288, the denoiser's is 280/],
    ['another mask id', { metadata: { 'unmask.mask_id': '3' } }, /"unmask.mask_id" is 3, the denoiser's is 1/],
    ['other language tags', { metadata: { 'unmask.lang_ids': JSON.stringify({ other: 4, python: 6 }) } }, /"unmask.lang_ids" is \[\["other",4\],\["python",6\]\]/],
    ['a shorter maximum length', { metadata: { 'unmask.max_seq_len': '128' } }, /"unmask.max_seq_len" is 128, below the denoiser's 256/],
    ['the denoiser kind', { metadata: { 'unmask.kind': 'mdm' } }, /disc.int8.onnx is a "mdm" model; a discriminator must be kind "disc"/],
    ['another contract version', { metadata: { 'unmask.format': '2' } }, /unmask.format=2/],
    ['context-only attention', { metadata: { 'unmask.attention': 'context_only' } }, /unmask.attention "context_only"; a discriminator attends over the full canvas/],
    ['no unmask.disc', { metadata: { 'unmask.disc': undefined } }, /lacks metadata "unmask.disc"/],
    ['no t_clean', { metadata: { 'unmask.disc': JSON.stringify({ real: 'teacher samples' }) } }, /"unmask.disc" needs a "t_clean" in \[0, 1\], got undefined/],
    ['a missing file', { missing: true }, /listed file disc.int8.onnx is missing/],
  ];
  for (const [what, options, message] of mismatches) {
    it(`refuses a discriminator with ${what}, naming the mismatch`, () => {
      const { model } = folder(options);
      assert.throws(() => readDiscriminator(loadManifest(model.dir), denoiserFacts(model), 'model.onnx', false), message);
    });
  }

  it('refuses a discriminator that contradicts the manifest\'s copy of its facts', () => {
    const { model } = folder();
    const manifestPath = path.join(model.dir, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
    manifest.discriminator.facts['unmask.eos_id'] = '5';
    fs.writeFileSync(manifestPath, JSON.stringify(manifest));
    assert.throws(
      () => readDiscriminator(loadManifest(model.dir), denoiserFacts(model), 'model.onnx', false),
      /manifest.json and disc.int8.onnx disagree on "unmask.eos_id": manifest 5, model 2/,
    );
  });

  it('refuses a file that differs from its hash when hashes are checked', () => {
    const { model, disc } = folder();
    const bytes = fs.readFileSync(disc.file);
    bytes[bytes.length - 1] ^= 1;
    fs.writeFileSync(disc.file, bytes);
    assert.throws(() => readDiscriminator(loadManifest(model.dir), denoiserFacts(model), 'model.onnx', true), /disc.int8.onnx has sha256/);
  });
});

describe('a loaded model with a discriminator', () => {
  let fixture: { model: TinyModel; disc: TinyDisc };
  let model: LoadedModel;
  const logs: string[] = [];

  before(async () => {
    fixture = folder();
    model = await loadModel(fixture.model.dir, { device: 'cpu', threads: 1, log: (line) => logs.push(line) });
  });
  after(() => model.dispose());

  it('loads it in the inference worker and says so', () => {
    assert.ok(model.discriminator, logs.join('\n'));
    assert.equal(model.discriminator.tClean, TINY_T_CLEAN);
    assert.equal(model.discriminator.device, 'cpu');
    assert.equal(path.basename(model.discriminator.file), DISC_FILE);
    assert.ok(logs.includes(`discriminator ${DISC_FILE}: reranks candidates (scored at t = ${TINY_T_CLEAN}) on cpu`), logs.join('\n'));
  });

  it('scores a batch in one pass, row by row, at each row\'s noise level', async () => {
    const x = { ...canvases(3, 40, 5), t: Float32Array.of(0.02, 0.5, 1) };
    const calls = model.discriminator!.stats.calls;
    const scores = await model.discriminator!.score(x);
    assert.equal(model.discriminator!.stats.calls, calls + 1);
    assert.equal(scores.length, 3 * 5);
    assert.ok(maxAbsDiff(scores, referenceScores(fixture.disc, x.ids, x.batch, x.seqLen, x.positions, x.numPositions, x.t)) < 1e-4);
    assert.equal(x.ids.length, 3 * 40, 'the caller keeps its arrays');
  });

  const badInputs: [string, DiscriminatorInput, RegExp][] = [
    ['a noise level outside [0, 1]', { ...canvases(1, 8, 2), t: Float32Array.of(1.5) }, /noise level 1.5 is outside \[0, 1\]/],
    ['a t of another batch size', { ...canvases(2, 8, 2), t: Float32Array.of(0.5) }, /t holds 1 values/],
    ['a canvas longer than the model allows', canvases(1, 300, 1), /T = 300 exceeds the discriminator's max_seq_len 256/],
    ['a position outside the canvas', { ...canvases(1, 8, 2), positions: Int32Array.of(0, 8) }, /position 8 is outside \[0, 8\)/],
  ];
  for (const [what, x, message] of badInputs) {
    it(`rejects ${what}, naming the inputs and their shapes`, async () => {
      await assert.rejects(model.discriminator!.score(x), (err: Error) => message.test(err.message) && /input_ids int64 \[\d+, \d+\], positions int64 \[\d+, \d+\], t float32/.test(err.message));
    });
  }

  it('gives every ranked candidate a reward from one batched pass over all of them', async () => {
    const options = resolveSamplerOptions({ candidates: 4, steps: 4, temperature: 1, seed: 7 });
    const query = { prefix: 'def add(a, b):\n    return ', suffix: '\n', languageId: 'plaintext', maxTokens: 8 };
    const noSyntax = { errorsWithInsertions: async (_l: string, _b: string, _a: string, texts: readonly string[]) => texts.map(() => 0) };
    const calls = model.discriminator!.stats.calls;
    const { candidates, result } = await rankedCompletions(model, query, { before: query.prefix, after: query.suffix }, options, {}, noSyntax, (l) => logs.push(l));
    assert.ok(candidates.length >= 1, 'the fixture writes readable text');
    assert.equal(model.discriminator!.stats.calls, calls + 1, 'one discriminator pass for all candidates');
    // Each reward is the mean score over the span positions of one candidate's finished canvas at t_clean.
    const span = result.holes.flatMap(({ start, length }) => Array.from({ length }, (_, k) => start + k));
    const means = result.candidates.map((c) => {
      const s = referenceScores(fixture.disc, c.canvas, 1, c.canvas.length, Int32Array.from(span), span.length, Float32Array.of(TINY_T_CLEAN));
      return s.reduce((a, b) => a + b, 0) / span.length;
    });
    for (const c of candidates) {
      assert.ok(c.reward !== undefined && means.some((m) => Math.abs(m - c.reward!) < 1e-4), `reward ${c.reward} of "${c.text}" is one of ${means}`);
    }
  });

  it('refuses to score after the model is disposed, without starting a worker', async () => {
    const other = await loadModel(folder().model.dir, { device: 'cpu', threads: 1 });
    await other.dispose();
    await assert.rejects(other.discriminator!.score(canvases(1, 8, 1)), /the model was unloaded/);
  });
});

describe('a model whose discriminator cannot be used', () => {
  const broken: [string, TinyDiscOptions, RegExp][] = [
    ['is missing', { missing: true }, /listed file disc.int8.onnx is missing/],
    ['has another vocabulary', { vocabSize: 288 }, /"unmask.vocab_size" is 288, the denoiser's is 280/],
    ['names its output otherwise', { outputName: 'logits' }, /disc.int8.onnx has no output "scores" \(float32 \[B, P\]\); its outputs are "logits"/],
  ];
  for (const [what, options, reason] of broken) {
    it(`loads without the one that ${what}, logging why, and still completes`, async () => {
      const { model: fixture } = folder(options);
      const logs: string[] = [];
      const model = await loadModel(fixture.dir, { device: 'cpu', threads: 1, log: (line) => logs.push(line) });
      try {
        assert.equal(model.discriminator, undefined);
        const line = logs.find((l) => l.startsWith('discriminator: not used, candidates rank by likelihood and syntax: '));
        assert.ok(line && reason.test(line), logs.join('\n'));
        const kbest = await model.run({ ids: Int32Array.of(4, 1, 1), batch: 1, seqLen: 3, positions: Int32Array.of(1), numPositions: 1, holes: [{ start: 1, length: 2 }] });
        assert.equal(kbest.logits.length, fixture.topK);
      } finally {
        await model.dispose();
      }
    });
  }
});

describe('a discriminator after the inference worker crashed', () => {
  it('is loaded again into the fresh worker', async () => {
    const { model: fixture, disc } = folder();
    const model = await loadModel(fixture.dir, { device: 'cpu', threads: 1, workerPath: CRASHING_WORKER });
    try {
      const crash = { ids: new Int32Array(7 * 8).fill(20), batch: 7, seqLen: 8, positions: new Int32Array(7).fill(1), numPositions: 1, holes: [] };
      await assert.rejects(model.run(crash), /the inference worker exited with code 3/);
      const x = canvases(2, 12, 3);
      const scores = await model.discriminator!.score(x);
      assert.ok(maxAbsDiff(scores, referenceScores(disc, x.ids, x.batch, x.seqLen, x.positions, x.numPositions, x.t)) < 1e-4);
    } finally {
      await model.dispose();
    }
  });
});
