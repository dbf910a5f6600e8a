/**
 * The cached-context path of the runtime (models/README.md, "Cached-context denoiser"): splitting a model input by
 * its hole layout, the context cache, and a loaded two-graph model (the hand-written fixture of
 * test/fixtures/tiny-cached-model.ts) run by the worker and by the engine's sampler.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAbortError } from '../../server/engine/errors';
import { type Commit, type SamplerConfig, sampleCanvas } from '../../server/engine/sampler';
import type { HoleLayout, KBest, ModelInput } from '../../server/engine/types';
import { ContextCache, splitForCache } from '../../server/runtime/cached-context';
import { denoiserGraphs, loadManifest } from '../../server/runtime/manifest';
import { cacheFromMetadata } from '../../server/runtime/metadata';
import { type LoadedModel, loadModel } from '../../server/runtime/model';
import { kbestDiff, kbestFromLogits } from '../fixtures/kbest';
import { tempDir } from '../fixtures/models';
import { referenceCachedLogits } from '../fixtures/tiny-cached-model';
import { type TinyModel, writeTinyModel } from '../fixtures/tiny-model';

const MASK = 1;

/** `batch` rows of one canvas of `seqLen` text tokens with masks in the holes; `vary` changes row r's span tokens. */
function canvasInput(batch: number, seqLen: number, holes: HoleLayout[], vary = true): ModelInput {
  const row = Int32Array.from({ length: seqLen }, (_, t) => 8 + ((t * 37) % 200));
  for (const h of holes) row.fill(MASK, h.start, h.start + h.length);
  const ids = new Int32Array(batch * seqLen);
  for (let r = 0; r < batch; r++) {
    ids.set(row, r * seqLen);
    // Row r has committed a token at the first position of each hole (as rows of one generation diverge).
    if (vary && r > 0) for (const h of holes) ids[r * seqLen + h.start] = 20 + r;
  }
  const masked = holes.flatMap((h) => Array.from({ length: h.length - 1 }, (_, i) => h.start + 1 + i));
  const positions = Int32Array.from({ length: batch * masked.length }, (_, i) => masked[i % masked.length]);
  return { ids, batch, seqLen, positions, numPositions: masked.length, holes };
}

describe('splitting a model input for a cached-context model', () => {
  const holes = [
    { start: 3, length: 2 },
    { start: 7, length: 3 },
  ];

  it('lists the span positions hole by hole, each row\'s span tokens and where each requested position lies', () => {
    const x = canvasInput(2, 12, holes);
    const run = splitForCache(x);
    assert.deepEqual([...run.spanPos], [3, 4, 7, 8, 9]);
    assert.deepEqual([...run.spanMask], [0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0]);
    assert.deepEqual([...run.spanIds.subarray(5)], [21, MASK, 21, MASK, MASK]);
    assert.deepEqual([...run.outIdx], [1, 3, 4, 1, 3, 4]);
  });

  it('encodes one context row when every row shares row 0\'s context, one per row otherwise', () => {
    const shared = splitForCache(canvasInput(3, 12, holes));
    assert.equal(shared.contextRows, 1);
    assert.equal(shared.contextIds.length, 12);
    assert.deepEqual([...shared.contextIds.subarray(3, 5)], [0, 0], 'span positions are blanked in the context');
    const x = canvasInput(3, 12, holes);
    x.ids[2 * 12 + 11] = 99;
    assert.equal(splitForCache(x).contextRows, 3);
  });

  const bad: [string, Partial<ModelInput>, RegExp][] = [
    ['no hole layout', { holes: [] }, /needs the canvas's hole layout/],
    ['overlapping holes', { holes: [{ start: 3, length: 3 }, { start: 5, length: 2 }] }, /holes \[3\+3, 5\+2\] must be runs .* in order/],
    ['a hole past the canvas', { holes: [{ start: 10, length: 4 }] }, /inside \[0, 12\)/],
    ['holes over the whole canvas', { holes: [{ start: 0, length: 12 }] }, /cover the whole canvas/],
    ['a position outside the holes', { positions: Int32Array.from([4, 5]), numPositions: 1 }, /position 5 lies outside the holes \[3\+2, 7\+3\]/],
  ];
  for (const [what, change, message] of bad) {
    it(`refuses ${what}`, () => {
      assert.throws(() => splitForCache({ ...canvasInput(2, 12, holes), ...change }), message);
    });
  }
});

describe('the context cache', () => {
  const holes = [{ start: 4, length: 4 }];
  it('hits for the same context and hole layout whatever the span tokens, and misses when either changes', () => {
    const cache = new ContextCache<string>();
    const x = canvasInput(2, 16, holes);
    assert.equal(cache.get(splitForCache(x)), undefined);
    cache.set(splitForCache(x), 'kv');
    const committed = { ...x, ids: x.ids.slice() };
    committed.ids[5] = 42;
    assert.equal(cache.get(splitForCache(committed)), 'kv');
    const edited = { ...x, ids: x.ids.slice() };
    edited.ids[0] = 42;
    edited.ids[16] = 42;
    assert.equal(cache.get(splitForCache(edited)), undefined);
    assert.equal(cache.get(splitForCache({ ...x, holes: [{ start: 4, length: 3 }], positions: Int32Array.from([5, 6, 5, 6]), numPositions: 2 })), undefined);
    cache.clear();
    assert.equal(cache.get(splitForCache(x)), undefined);
  });
});

describe('a loaded cached-context model', () => {
  let fixture: TinyModel;
  let model: LoadedModel;

  before(async () => {
    fixture = writeTinyModel(tempDir('cached'), { cached: true });
    model = await loadModel(fixture.dir, { device: 'cpu', threads: 1 });
  });
  after(() => model.dispose());

  it('loads both graphs and names them', () => {
    assert.equal(path.basename(model.modelFile), 'step.onnx');
    assert.equal(path.basename(model.contextFile ?? ''), 'context.onnx');
    assert.equal(model.facts.vocabSize, fixture.vocabSize);
  });

  const reference = (x: ModelInput): KBest =>
    kbestFromLogits(
      referenceCachedLogits(fixture, x.ids, x.batch, x.seqLen, x.positions, x.numPositions, x.holes),
      fixture.vocabSize,
      fixture.topK,
      fixture.bannedIds,
    );

  it('computes the logits of rows that share one context from a single context pass', async () => {
    const x = canvasInput(4, 60, [
      { start: 10, length: 8 },
      { start: 30, length: 16 },
    ]);
    const before = model.stats.contextCalls;
    assert.ok(kbestDiff(await model.run(x), reference(x)) < 1e-4);
    assert.equal(model.stats.contextCalls, before + 1);
  });

  it('computes the logits of rows with different contexts (one cache row each)', async () => {
    const x = canvasInput(3, 40, [{ start: 20, length: 8 }]);
    x.ids[40 + 2] = 77;
    assert.ok(kbestDiff(await model.run(x), reference(x)) < 1e-4);
  });

  describe('a whole generation in the worker', () => {
    const seqLen = 48;
    const ids = Int32Array.from({ length: seqLen }, (_, t) => 8 + ((t * 17) % 150));
    ids.fill(MASK, 16, 32);
    const canvas = { ids, holes: [{ start: 16, length: 16 }] };
    const config = (steps: number): SamplerConfig => ({
      steps,
      strategy: 'confidence',
      confidenceThreshold: 0,
      topP: 0.9,
      temperatures: [0, 1, 1],
      seed: 5,
      vocabSize: model.facts.vocabSize,
      eosId: 2,
      eosFill: true,
      eosAfterCode: true,
      bannedIds: fixture.bannedIds,
    });

    it('gives exactly what the sampler gives over model calls, and reports every step', async () => {
      const overCalls = await sampleCanvas(model.run, canvas, config(6));
      const steps: number[] = [];
      let last: readonly (readonly Commit[])[] = [];
      const calls = model.stats.calls;
      const inWorker = await model.sample(canvas, config(6), {
        onStep: (progress) => {
          steps.push(progress.step);
          last = progress.commits.map((row) => [...row]);
        },
      });
      assert.deepEqual(inWorker.rows, overCalls.rows);
      assert.deepEqual(inWorker.commits, overCalls.commits);
      assert.equal(inWorker.modelCalls, overCalls.modelCalls);
      assert.deepEqual(steps, Array.from({ length: inWorker.modelCalls }, (_, i) => i));
      assert.deepEqual(last, inWorker.commits);
      assert.equal(model.stats.calls - calls, inWorker.modelCalls, 'the worker\'s steps count in the runtime statistics');
      assert.deepEqual([...ids.subarray(16, 32)], new Array(16).fill(MASK), 'the caller\'s canvas is left as it was');
    });

    it('stops between steps when the signal aborts, and the worker goes on serving', async () => {
      const controller = new AbortController();
      const steps: number[] = [];
      await assert.rejects(
        model.sample(canvas, config(8), { signal: controller.signal, onStep: (progress) => (steps.push(progress.step), controller.abort()) }),
        (error: unknown) => isAbortError(error),
      );
      assert.ok(steps.length < 8, `stopped after ${steps.length} step(s)`);
      await assert.rejects(model.sample(canvas, config(8), { signal: AbortSignal.abort() }), (error: unknown) => isAbortError(error));
      assert.equal((await model.sample(canvas, config(4))).rows.length, 3);
    });

    it('refuses a canvas the model cannot read, naming the input', async () => {
      const bad = { ids: ids.slice(), holes: canvas.holes };
      bad.ids[3] = 1_000_000;
      await assert.rejects(model.sample(bad, config(2)), /token id 1000000 is outside the vocabulary/);
    });
  });

  it('runs the context graph once per generation: steps 2..N reuse the cache', async () => {
    const seqLen = 48;
    const ids = Int32Array.from({ length: seqLen }, (_, t) => 8 + ((t * 13) % 150));
    ids.fill(MASK, 16, 32);
    const calls = model.stats.calls;
    const contextCalls = model.stats.contextCalls;
    const steps = 6;
    const result = await sampleCanvas(model.run, { ids, holes: [{ start: 16, length: 16 }] }, {
      steps,
      strategy: 'confidence',
      confidenceThreshold: 0,
      topP: 1,
      temperatures: [0, 1, 1],
      seed: 3,
      vocabSize: model.facts.vocabSize,
      eosId: 2,
      eosFill: false,
      eosAfterCode: false,
      bannedIds: [0, MASK],
    });
    assert.equal(result.modelCalls, steps);
    assert.equal(model.stats.calls - calls, steps);
    assert.equal(model.stats.contextCalls - contextCalls, 1, 'the context graph ran once for the whole generation');
  });

  it('runs the context graph again when the context or the hole layout changes, and not when only span tokens do', async () => {
    const holes = [{ start: 12, length: 8 }];
    const x = canvasInput(2, 32, holes);
    await model.run(x);
    const start = model.stats.contextCalls;
    const committed = { ...x, ids: x.ids.slice() };
    committed.ids[13] = 50;
    committed.ids[32 + 13] = 51;
    assert.ok(kbestDiff(await model.run(committed), reference(committed)) < 1e-4);
    assert.equal(model.stats.contextCalls, start, 'a committed span token keeps the cache');

    const edited = { ...x, ids: x.ids.slice() };
    edited.ids[3] = 60;
    edited.ids[32 + 3] = 60;
    assert.ok(kbestDiff(await model.run(edited), reference(edited)) < 1e-4, 'the new context is used, not the stale cache');
    assert.equal(model.stats.contextCalls, start + 1);

    const moved = { ...edited, holes: [{ start: 12, length: 9 }] };
    assert.ok(kbestDiff(await model.run(moved), reference(moved)) < 1e-4);
    assert.equal(model.stats.contextCalls, start + 2);
  });

  it('rejects a position outside the holes, naming the inputs and their shapes', async () => {
    const x = canvasInput(1, 16, [{ start: 4, length: 4 }]);
    await assert.rejects(
      model.run({ ...x, positions: Int32Array.from([1, 5, 6]) }),
      /Model input input_ids int64 \[1, 16\], positions int64 \[1, 3\]: position 1 lies outside the holes \[4\+4\]/,
    );
  });
});

describe('loading a cached-context model folder', () => {
  it('refuses a manifest whose facts say context_only but that names no cached_context graphs', () => {
    const fixture = writeTinyModel(tempDir('cached-manifest'), { cached: true });
    const file = path.join(fixture.dir, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
    delete manifest.cached_context;
    fs.writeFileSync(file, JSON.stringify(manifest));
    assert.throws(() => denoiserGraphs(loadManifest(fixture.dir)), /unmask.attention "context_only" but its manifest names no "cached_context" graphs/);
  });

  it('names a graph that is missing on disk', async () => {
    const fixture = writeTinyModel(tempDir('cached-missing'), { cached: true });
    fs.rmSync(path.join(fixture.dir, 'step.onnx'));
    await assert.rejects(loadModel(fixture.dir, { device: 'cpu', threads: 1 }), /listed file step.onnx is missing/);
    assert.throws(
      () => denoiserGraphs(loadManifest(fixture.dir), 'fp32'),
      /has no usable cached-context graphs: fp32: step.onnx \(listed but missing on disk\)/,
    );
    assert.throws(() => denoiserGraphs(loadManifest(fixture.dir), 'int8'), /has no usable cached-context graphs: no int8 pair/);
  });

  const incompatible: [string, Parameters<typeof writeTinyModel>[1], RegExp][] = [
    ['graphs in swapped roles', { cached: true, contextMetadata: { 'unmask.graph': 'step' } }, /context.onnx is the "step" graph \(unmask.graph\); expected the "context" graph/],
    [
      'graphs that disagree on a fact',
      { cached: true, contextMetadata: { 'unmask.span_buckets': '[8,16]' }, manifestMetadata: null },
      /context.onnx and step.onnx disagree on "unmask.span_buckets": \[8,16\] vs \[8,16,32,64\]/,
    ],
    [
      'a cache shape the graphs do not have',
      {
        cached: true,
        metadata: { 'unmask.cache': JSON.stringify({ layout: '[L,B,H,T,Dh]', layers: 2, heads: 1, head_dim: 16 }) },
        manifestMetadata: null,
      },
      /context.onnx output "past_key" \(float32, \[1, B, 1, T, 16\]\): dimension L must be 2/,
    ],
    ['a full-attention pair', { cached: true, metadata: { 'unmask.attention': 'full' }, manifestMetadata: null }, /step.onnx has unmask.attention "full", expected "context_only"/],
    ['a single graph with context_only attention', { metadata: { 'unmask.attention': 'context_only' }, manifestMetadata: null }, /model.onnx has unmask.attention "context_only", expected "full": a context_only denoiser ships as a context graph and a step graph/],
  ];
  for (const [what, options, message] of incompatible) {
    it(`refuses ${what}, naming the mismatch`, async () => {
      const fixture = writeTinyModel(tempDir('cached-bad'), options);
      await assert.rejects(loadModel(fixture.dir, { device: 'cpu', threads: 1 }), message);
    });
  }

  it('reads the cache shape and refuses other layouts', () => {
    const meta = { 'unmask.graph': 'context', 'unmask.cache': JSON.stringify({ layout: '[L,B,H,T,Dh]', layers: 4, heads: 4, head_dim: 64 }) };
    assert.deepEqual(cacheFromMetadata(meta, 'context', 'context.onnx'), { layers: 4, heads: 4, headDim: 64 });
    const other = { ...meta, 'unmask.cache': JSON.stringify({ layout: '[B,L,H,T,Dh]', layers: 4, heads: 4, head_dim: 64 }) };
    assert.throws(() => cacheFromMetadata(other, 'context', 'context.onnx'), /layout "\[B,L,H,T,Dh\]"; this runtime reads "\[L,B,H,T,Dh\]"/);
  });
});
