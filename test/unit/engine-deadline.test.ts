import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OptionsError } from '../../server/engine/errors';
import { infill } from '../../server/engine/infill';
import { resolveSamplerOptions } from '../../server/engine/options';
import { sampleCanvas } from '../../server/engine/sampler';
import type { ModelFn } from '../../server/engine/types';
import { CharCodec, FACTS, hashedModel, MASK, samplerConfig, SPAN, spanCanvas } from './engine-mocks';

const canvas = spanCanvas;

const config = samplerConfig;

/** A fake clock that only the model moves: every model call takes `stepMs`, the first one `firstMs`. */
function timedModel(stepMs = 10, firstMs = stepMs): { model: ModelFn; now: () => number; calls: () => number } {
  const inner = hashedModel();
  let time = 0;
  return {
    model: async (input) => {
      time += inner.calls.length === 0 ? firstMs : stepMs;
      return inner.model(input);
    },
    now: () => time,
    calls: () => inner.calls.length,
  };
}

const commitsPerStep = (steps: readonly { step: number }[]): number[] =>
  steps.reduce<number[]>((counts, c) => ((counts[c.step] = (counts[c.step] ?? 0) + 1), counts), []);

describe('the latency budget (sampler rule 6)', () => {
  it('makes a step the last when another would end past the deadline, and commits every mask from its answer', async () => {
    // 10 ms a step: steps 0 and 1 are answered at 10 and 20 (20 + 10 < 35); step 2 at 30, and 30 + 10 >= 35.
    const clock = timedModel(10);
    const result = await sampleCanvas(clock.model, canvas, config({ deadline: 35 }), { now: clock.now });
    assert.equal(result.modelCalls, 3);
    assert.equal(result.cutByDeadline, true);
    assert.ok(clock.now() <= 35, `done at ${clock.now()} ms`);
    assert.ok(!result.rows[0].includes(MASK), 'no mask left');
    // The schedule commits 16 / 8 = 2, then 14 / 7 = 2; the cut step commits the 12 that remain.
    assert.deepEqual(commitsPerStep(result.commits[0]), [2, 2, 12]);
  });

  it('does not judge the next step by the first, which also encodes the context', async () => {
    // The first answer comes at 30, the deadline is at 38: a second step runs (answered at 35), and 35 + 5 >= 38.
    const clock = timedModel(5, 30);
    const result = await sampleCanvas(clock.model, canvas, config({ deadline: 38 }), { now: clock.now });
    assert.equal(result.modelCalls, 2);
    assert.equal(result.cutByDeadline, true);
  });

  it('commits everything from the first answer when the deadline has already passed', async () => {
    const clock = timedModel(10);
    const result = await sampleCanvas(clock.model, canvas, config({ deadline: -1 }), { now: clock.now });
    assert.equal(result.modelCalls, 1);
    assert.equal(result.cutByDeadline, true);
    assert.deepEqual(commitsPerStep(result.commits[0]), [SPAN]);
  });

  it('changes nothing when the deadline is far enough away', async () => {
    const clock = timedModel(10);
    const free = await sampleCanvas(hashedModel().model, canvas, config({ temperatures: [0, 0.8], seed: 5 }));
    const budgeted = await sampleCanvas(clock.model, canvas, config({ temperatures: [0, 0.8], seed: 5, deadline: 1e6 }), { now: clock.now });
    assert.equal(budgeted.cutByDeadline, false);
    assert.equal(free.cutByDeadline, false);
    assert.deepEqual(budgeted.rows, free.rows);
    assert.deepEqual(budgeted.commits, free.commits);
  });

  it('is deterministic for a seed and a clock', async () => {
    const run = async (): Promise<Awaited<ReturnType<typeof sampleCanvas>>> => {
      const clock = timedModel(7);
      return sampleCanvas(clock.model, canvas, config({ temperatures: [0.9, 0.9, 0.9], seed: 42, deadline: 30 }), { now: clock.now });
    };
    const [a, b] = [await run(), await run()];
    assert.equal(a.cutByDeadline, true);
    assert.deepEqual(a.rows, b.rows);
    assert.deepEqual(a.commits, b.commits);
  });

  it('commits every mask at the cut even where end-of-span must wait for code (rule 4)', async () => {
    const clock = timedModel(10);
    const result = await sampleCanvas(clock.model, canvas, config({ deadline: 15, eosAfterCode: true, eosFill: true }), { now: clock.now });
    assert.equal(result.cutByDeadline, true);
    for (const row of result.rows) assert.ok(!row.includes(MASK));
  });

  it('refuses a deadline without a clock', async () => {
    await assert.rejects(sampleCanvas(hashedModel().model, canvas, config({ deadline: 10 })), OptionsError);
  });
});

describe('the latency budget in infill', () => {
  const codec = new CharCodec();
  const request = { segments: ['x = ', '\n'], holes: [{ maxTokens: 16 }], languageId: 'python' };

  it('counts from when the request began, not from when infill was called', async () => {
    // Began 30 ms ago with a 45 ms budget: the deadline is at 15, so the second answer (at 20) leaves no time for a
    // third step (10 more). Counted from infill's call the deadline would be at 45, and four steps would run.
    const clock = timedModel(10);
    const options = resolveSamplerOptions({ steps: 8, latencyBudgetMs: 45, eosFill: false });
    const result = await infill(clock.model, codec, FACTS, request, options, { now: clock.now, startedAt: -30 });
    assert.equal(result.modelCalls, 2);
    assert.equal(result.cutByDeadline, true);
    assert.equal(result.trace.cutByDeadline, true);
    assert.equal(result.trace.steps, 2);
    assert.equal(result.trace.tokens.length, 16, 'the trace shows every token, most of them from the last step');
  });

  it('with a budget of 0 runs every step, as without one', async () => {
    const options = resolveSamplerOptions({ steps: 8, eosFill: false });
    const free = await infill(hashedModel().model, codec, FACTS, request, options);
    const clock = timedModel(1000);
    const zero = await infill(clock.model, codec, FACTS, request, { ...options, latencyBudgetMs: 0 }, { now: clock.now });
    assert.equal(zero.modelCalls, 8);
    assert.equal(zero.cutByDeadline, false);
    assert.deepEqual(zero.candidates.map((c) => c.holes), free.candidates.map((c) => c.holes));
  });

  it('needs a clock for a budget, and a budget in range', async () => {
    await assert.rejects(infill(hashedModel().model, codec, FACTS, request, resolveSamplerOptions({ latencyBudgetMs: 60 })), OptionsError);
    assert.throws(() => resolveSamplerOptions({ latencyBudgetMs: -1 }), OptionsError);
  });
});
