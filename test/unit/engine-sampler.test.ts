import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AbortError, ModelOutputError, OptionsError } from '../../server/engine/errors';
import { type Commit, sampleCanvas, type SamplerCanvas } from '../../server/engine/sampler';
import type { ModelFn } from '../../server/engine/types';
import { EOS, HOLE_START, hashedModel, MASK, samplerConfig, scriptedModel, SPAN, spanCanvas, textModel, tok, type RecordedCall } from './engine-mocks';

const canvas = spanCanvas;

const config = samplerConfig;

const holeOf = (row: Int32Array): number[] => Array.from(row.subarray(HOLE_START, HOLE_START + SPAN));
const positionsOf = (commits: readonly Commit[]): number[] => commits.map((c) => c.position);

describe('the denoising sampler', () => {
  it('resolves every mask of every row', async () => {
    const { model } = hashedModel();
    const result = await sampleCanvas(model, canvas, config({ temperatures: [0, 0.8, 0.8, 0.8] }));
    assert.equal(result.rows.length, 4);
    for (const row of result.rows) assert.ok(!row.includes(MASK));
    result.commits.forEach((commits) => assert.deepEqual([...positionsOf(commits)].sort((a, b) => a - b), Array.from({ length: SPAN }, (_, i) => HOLE_START + i)));
  });

  it('passes the canvas\'s hole layout with every model call (a cached-context runtime splits the canvas by it)', async () => {
    const twoHoles: SamplerCanvas = {
      ids: Int32Array.from([4, tok('a'), MASK, MASK, tok('b'), MASK, MASK, MASK, tok('c')]),
      holes: [{ start: 2, length: 2 }, { start: 5, length: 3 }],
    };
    const { model, calls } = hashedModel();
    await sampleCanvas(model, twoHoles, config({ steps: 3, temperatures: [0, 1] }));
    assert.equal(calls.length, 3);
    for (const call of calls) assert.deepEqual(call.holes, [{ start: 2, length: 2 }, { start: 5, length: 3 }]);
  });

  it('leaves the text around the holes untouched', async () => {
    const result = await sampleCanvas(hashedModel().model, canvas, config({ temperatures: [1] }));
    assert.deepEqual(Array.from(result.rows[0].subarray(0, HOLE_START)), Array.from(canvas.ids.subarray(0, HOLE_START)));
    assert.equal(result.rows[0][HOLE_START + SPAN], tok('c'));
  });

  it('reproduces the same generation from the same seed when sampling', async () => {
    const settings = config({ temperatures: [1, 1, 1], strategy: 'random', topP: 0.9, seed: 7 });
    const first = await sampleCanvas(hashedModel().model, canvas, settings);
    const second = await sampleCanvas(hashedModel().model, canvas, settings);
    assert.deepEqual(first.rows, second.rows);
    assert.deepEqual(first.commits, second.commits);
  });

  it('gives a different generation for a different seed when sampling', async () => {
    const first = await sampleCanvas(hashedModel().model, canvas, config({ temperatures: [1.5], seed: 1 }));
    const second = await sampleCanvas(hashedModel().model, canvas, config({ temperatures: [1.5], seed: 2 }));
    assert.notDeepEqual(holeOf(first.rows[0]), holeOf(second.rows[0]));
  });

  it('is deterministic at temperature 0 whatever the seed', async () => {
    const first = await sampleCanvas(hashedModel().model, canvas, config({ seed: 1 }));
    const second = await sampleCanvas(hashedModel().model, canvas, config({ seed: 999 }));
    assert.deepEqual(first.rows, second.rows);
    assert.deepEqual(first.commits, second.commits);
  });

  it('never changes a committed token: every model call sees earlier commits unchanged', async () => {
    const { model, calls } = hashedModel();
    const result = await sampleCanvas(model, canvas, config({ temperatures: [0, 1, 1], steps: 6, confidenceThreshold: 0.02, eosFill: true }));
    // A call carries the distinct unfinished canvases, not rows in a fixed order: each canvas of a call must extend
    // one of the previous call, and each final row one of the last call that carried it (any earlier call).
    const extendsOne = (later: Int32Array, earlier: readonly Int32Array[]): boolean =>
      earlier.some((row) => row.every((id, position) => id === MASK || later[position] === id));
    const snapshots = calls.map(rowsOf);
    for (let i = 1; i < snapshots.length; i++) {
      for (const later of snapshots[i]) assert.ok(extendsOne(later, snapshots[i - 1]), `a canvas of call ${i} changed a token committed before it`);
    }
    for (const row of result.rows) assert.ok(extendsOne(row, snapshots.flat()), 'a final row changed a committed token');
  });

  it('reports commits through onStep that later steps only extend', async () => {
    const seen: Commit[][] = [];
    const result = await sampleCanvas(hashedModel().model, canvas, config({ temperatures: [0.5] }), {
      onStep: (progress) => seen.push([...progress.commits[0]]),
    });
    assert.equal(seen.length, result.modelCalls);
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i].length > seen[i - 1].length);
      assert.deepEqual(seen[i].slice(0, seen[i - 1].length), seen[i - 1]);
    }
    assert.deepEqual(seen[seen.length - 1], result.commits[0]);
  });

  const callCounts: [number, number][] = [
    [1, 1],
    [4, 4],
    [8, 8],
    [16, 16],
    [32, 16],
  ];
  for (const [steps, calls] of callCounts) {
    it(`makes exactly ${calls} model call(s) for ${SPAN} masks in ${steps} step(s)`, async () => {
      const { model, calls: recorded } = hashedModel();
      const result = await sampleCanvas(model, canvas, config({ steps, temperatures: [0, 1] }));
      assert.equal(result.modelCalls, calls);
      assert.equal(recorded.length, calls);
    });
  }

  it('commits at least one token per row in every step', async () => {
    const result = await sampleCanvas(hashedModel().model, canvas, config({ steps: 16, temperatures: [0, 1, 1] }));
    for (const commits of result.commits) {
      const steps = new Set(commits.map((c) => c.step));
      assert.deepEqual([...steps].sort((a, b) => a - b), Array.from({ length: 16 }, (_, i) => i));
    }
  });

  it('batches the candidates: one model call per step, whose batch holds each distinct unfinished canvas once', async () => {
    const { model, calls } = hashedModel();
    const result = await sampleCanvas(model, canvas, config({ steps: 8, temperatures: [0, 0.8, 0.8, 0.8, 0.8] }));
    assert.equal(calls.length, 8);
    assert.equal(calls[0].batch, 1, 'the five rows start from one canvas');
    assert.equal(calls[1].batch, 5, 'and part after the first step');
    for (const call of calls) {
      assert.equal(call.ids.length, call.batch * canvas.ids.length);
      const rows = rowsOf(call).map((row) => row.join());
      assert.equal(new Set(rows).size, rows.length, 'no canvas twice');
      assert.ok(rowsOf(call).every((row) => row.includes(MASK)), 'no finished canvas');
    }
    assert.equal(result.rows.length, 5);
  });

  it('runs identical rows as one: greedy candidates cost one row, and finished rows drop out', async () => {
    const { model, calls } = hashedModel();
    const result = await sampleCanvas(model, canvas, config({ steps: 4, temperatures: [0, 0, 0] }));
    assert.ok(calls.every((call) => call.batch === 1));
    assert.deepEqual(result.rows[1], result.rows[0]);
    assert.deepEqual(result.rows[2], result.rows[0]);

    // Row 0 ends its span early (end-of-span fill); row 1, sampled hot, goes on alone.
    const eager = textModel(HOLE_START, 'a');
    const mixed = await sampleCanvas(eager.model, canvas, config({ steps: 8, temperatures: [0, 30], eosFill: true }));
    const finished = mixed.commits[0].at(-1)!.step;
    assert.ok(eager.calls.length > finished + 1, 'row 1 needed more calls than row 0');
    assert.ok(eager.calls.slice(finished + 1).every((call) => call.batch === 1), 'calls after row 0 finished carry row 1 only');
    assert.ok(eager.calls.slice(0, finished + 1).every((call, i) => call.batch === (i === 0 ? 1 : 2)));
  });

  it('asks only for the logits of still-masked positions, padding shorter rows with a repeated position', async () => {
    // Strong preferences on the first half of the hole, weak ones on the second: at temperature 0 row 0 commits the
    // strong half at once through the threshold; row 1 samples hot, passes no threshold, and commits the schedule.
    const { model, calls } = scriptedModel((position) => {
      const i = position - HOLE_START;
      return i >= 0 && i < SPAN ? { token: tok('x'), strength: i < 8 ? 12 : 0.5 } : undefined;
    });
    await sampleCanvas(model, canvas, config({ temperatures: [0, 5], confidenceThreshold: 0.9 }));
    for (const call of calls) {
      for (let r = 0; r < call.batch; r++) {
        const requested = Array.from(call.positions.subarray(r * call.numPositions, (r + 1) * call.numPositions));
        const masked = maskedPositions(call, r);
        const distinct = [...new Set(requested)];
        if (masked.length > 0) {
          assert.deepEqual(distinct, masked, `row ${r} asked for exactly its masked positions`);
          assert.deepEqual(requested.slice(masked.length), Array(requested.length - masked.length).fill(masked[masked.length - 1]));
        }
      }
    }
    const second = calls[1];
    assert.equal(maskedPositions(second, 0).length, 8);
    assert.equal(maskedPositions(second, 1).length, 14);
    assert.equal(second.numPositions, 14);
  });

  it('commits every token above the confidence threshold, which can finish in fewer steps', async () => {
    const { model, calls } = textModel(HOLE_START, 'return x;');
    const result = await sampleCanvas(model, canvas, config({ confidenceThreshold: 0.9 }));
    assert.equal(calls.length, 1);
    assert.equal(result.modelCalls, 1);
  });

  it('never commits fewer tokens than the schedule when nothing passes the threshold', async () => {
    const { model, calls } = textModel(HOLE_START, 'abcdefghijklmnop', () => 0.1);
    await sampleCanvas(model, canvas, config({ confidenceThreshold: 0.9, steps: 8 }));
    assert.equal(calls.length, 8);
  });

  for (const strategy of ['confidence', 'margin', 'entropy'] as const) {
    it(`commits the surest positions first with the ${strategy} strategy`, async () => {
      // Preferences grow stronger to the right, so one token per step decodes right to left.
      const { model } = textModel(HOLE_START, 'abcdefghijklmnop', (i) => 2 + i);
      const result = await sampleCanvas(model, canvas, config({ strategy, steps: SPAN }));
      assert.deepEqual(positionsOf(result.commits[0]), Array.from({ length: SPAN }, (_, i) => HOLE_START + SPAN - 1 - i));
    });
  }

  it('commits in an order drawn from the seed with the random strategy', async () => {
    const { model } = textModel(HOLE_START, 'abcdefghijklmnop');
    const order = async (seed: number): Promise<number[]> =>
      positionsOf((await sampleCanvas(model, canvas, config({ strategy: 'random', steps: SPAN, seed }))).commits[0]);
    assert.deepEqual(await order(3), await order(3));
    assert.notDeepEqual(await order(3), await order(4));
  });

  it('orders the commits of one step from left to right', async () => {
    const { model } = textModel(HOLE_START, 'abcdefghijklmnop', (i) => 2 + i);
    const result = await sampleCanvas(model, canvas, config({ steps: 4 }));
    const firstStep = result.commits[0].filter((c) => c.step === 0).map((c) => c.position);
    assert.deepEqual(firstStep, [HOLE_START + 12, HOLE_START + 13, HOLE_START + 14, HOLE_START + 15]);
  });

  describe('end-of-span fill', () => {
    // "ab" then end-of-span, which the model is surest of: the first step commits end-of-span at hole index 2.
    const eosFirst = (): ReturnType<typeof textModel> => textModel(HOLE_START, 'ab', () => 10);

    it('commits the rest of a hole as end-of-span once the model commits one, saving steps', async () => {
      const { model, calls } = eosFirst();
      const result = await sampleCanvas(model, canvas, config({ eosFill: true }));
      assert.deepEqual(holeOf(result.rows[0]), [tok('a'), tok('b'), ...Array(14).fill(EOS)]);
      assert.equal(calls.length, 3);
      const filled = result.commits[0].filter((c) => c.filled);
      assert.deepEqual(filled.map((c) => c.index), Array.from({ length: 12 }, (_, i) => 4 + i));
      assert.ok(filled.every((c) => c.step === 0 && c.tokenId === EOS && c.logProb === 0));
    });

    it('leaves every position to the model when turned off', async () => {
      const { model, calls } = eosFirst();
      const result = await sampleCanvas(model, canvas, config({ eosFill: false }));
      assert.deepEqual(holeOf(result.rows[0]), [tok('a'), tok('b'), ...Array(14).fill(EOS)]);
      assert.equal(calls.length, 8);
      assert.ok(result.commits[0].every((c) => !c.filled));
    });

    it('fills only the hole in which end-of-span was committed', async () => {
      const twoHoles: SamplerCanvas = {
        ids: Int32Array.from([4, ...Array<number>(8).fill(MASK), tok('='), ...Array<number>(8).fill(MASK)]),
        holes: [
          { start: 1, length: 8 },
          { start: 10, length: 8 },
        ],
      };
      const { model } = scriptedModel((position) =>
        position === 1 ? { token: EOS, strength: 20 } : { token: tok('y'), strength: 5 },
      );
      const result = await sampleCanvas(model, twoHoles, config({ eosFill: true, steps: 16 }));
      const filled = result.commits[0].filter((c) => c.filled);
      assert.ok(filled.length === 7 && filled.every((c) => c.hole === 0));
      assert.deepEqual(Array.from(result.rows[0].subarray(10)), Array(8).fill(tok('y')));
    });
  });

  describe('end-of-span after code', () => {
    it('writes the code first when the model is surest of the end-of-span after it', async () => {
      const { model, calls } = textModel(HOLE_START, 'ab', () => 10);
      const result = await sampleCanvas(model, canvas, config({ eosFill: true, eosAfterCode: true }));
      assert.deepEqual(holeOf(result.rows[0]), [tok('a'), tok('b'), ...Array(14).fill(EOS)]);
      const byStep = result.commits[0].filter((c) => !c.filled).map((c) => [c.step, c.index]);
      assert.deepEqual(byStep, [[0, 0], [1, 1], [2, 2]], 'one code token per step while the surer ends wait, then the end');
      assert.equal(calls.length, 3);
    });

    it('never leaves a hole empty, even when the model prefers end-of-span everywhere', async () => {
      const { model } = scriptedModel(() => ({ token: EOS, strength: 20 }));
      const withRule = await sampleCanvas(model, canvas, config({ eosFill: true, eosAfterCode: true }));
      assert.notEqual(holeOf(withRule.rows[0])[0], EOS);
      assert.equal(holeOf(withRule.rows[0])[1], EOS, 'one token of code, then the end the model wants');
      const withoutRule = await sampleCanvas(model, canvas, config({ eosFill: true, eosAfterCode: false }));
      assert.deepEqual(holeOf(withoutRule.rows[0]), Array(16).fill(EOS));
    });

    it('allows end-of-span only next to a committed token of the same hole', async () => {
      const twoHoles: SamplerCanvas = {
        ids: Int32Array.from([4, ...Array<number>(4).fill(MASK), ...Array<number>(4).fill(MASK)]),
        holes: [
          { start: 1, length: 4 },
          { start: 5, length: 4 },
        ],
      };
      // Hole 0 writes "x" then ends; position 5 (the first of hole 1) must not end although hole 0 ends right before it.
      const { model } = scriptedModel((position) => (position === 1 ? { token: tok('x'), strength: 30 } : { token: EOS, strength: 20 }));
      const result = await sampleCanvas(model, twoHoles, config({ eosFill: true, eosAfterCode: true, steps: 8 }));
      const row = Array.from(result.rows[0]);
      assert.deepEqual(row.slice(1, 5), [tok('x'), EOS, EOS, EOS]);
      assert.notEqual(row[5], EOS);
    });
  });

  it('keeps row 0 unchanged when candidates are added', async () => {
    const alone = await sampleCanvas(hashedModel().model, canvas, config({ temperatures: [0.7], seed: 11 }));
    const batched = await sampleCanvas(hashedModel().model, canvas, config({ temperatures: [0.7, 0.7, 0.7], seed: 11 }));
    assert.deepEqual(batched.rows[0], alone.rows[0]);
    assert.deepEqual(batched.commits[0], alone.commits[0]);
  });

  describe('cancellation', () => {
    it('stops between steps when the signal aborts, with an AbortError', async () => {
      const { model, calls } = hashedModel();
      const controller = new AbortController();
      await assert.rejects(
        sampleCanvas(model, canvas, config(), { signal: controller.signal, onStep: (p) => p.step === 1 && controller.abort() }),
        AbortError,
      );
      assert.equal(calls.length, 2);
    });

    it('does not call the model at all when the signal is already aborted', async () => {
      const { model, calls } = hashedModel();
      await assert.rejects(sampleCanvas(model, canvas, config(), { signal: AbortSignal.abort() }), { name: 'AbortError' });
      assert.equal(calls.length, 0);
    });

    it('drops the result of a model call that was running when the signal aborted', async () => {
      const controller = new AbortController();
      const inner = hashedModel();
      const model: ModelFn = async (input) => {
        const logits = await inner.model(input);
        controller.abort();
        return logits;
      };
      let steps = 0;
      await assert.rejects(sampleCanvas(model, canvas, config(), { signal: controller.signal, onStep: () => steps++ }), AbortError);
      assert.equal(steps, 0);
    });
  });

  it('fails clearly when the model returns K-best lists of the wrong size', async () => {
    const model: ModelFn = async (input) => {
      const full = await hashedModel().model(input);
      return { ...full, logZ: full.logZ.subarray(1) };
    };
    await assert.rejects(
      sampleCanvas(model, canvas, config()),
      (error: unknown) => error instanceof ModelOutputError && /expected K-best lists for batch 1 x positions 16/.test(error.message),
    );
  });

  it('rejects a configuration it cannot run', async () => {
    await assert.rejects(sampleCanvas(hashedModel().model, canvas, config({ steps: 0 })), OptionsError);
    await assert.rejects(sampleCanvas(hashedModel().model, canvas, config({ temperatures: [] })), OptionsError);
    await assert.rejects(sampleCanvas(hashedModel().model, { ids: canvas.ids, holes: [{ start: 15, length: 16 }] }, config()), OptionsError);
  });

  it('times the model calls separately from its own work', async () => {
    const slow: ModelFn = async (input) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return hashedModel().model(input);
    };
    const result = await sampleCanvas(slow, canvas, config({ steps: 2 }));
    assert.ok(result.modelMs >= 2 * 19, `modelMs ${result.modelMs}`);
  });
});

/** Positions of row r that hold a mask in a recorded call, ascending. */
function maskedPositions(call: RecordedCall, r: number): number[] {
  const row = call.ids.subarray(r * call.seqLen, (r + 1) * call.seqLen);
  const positions: number[] = [];
  row.forEach((id, p) => id === MASK && positions.push(p));
  return positions;
}

/** The canvases of a recorded call, one array per row. */
function rowsOf(call: RecordedCall): Int32Array[] {
  return Array.from({ length: call.batch }, (_, r) => call.ids.subarray(r * call.seqLen, (r + 1) * call.seqLen));
}
