import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OptionsError } from '../../server/engine/errors';
import {
  ALTERNATIVE_TEMPERATURE,
  DEFAULT_SAMPLER_OPTIONS,
  resolveSamplerOptions,
  rowTemperatures,
  samplerOptionProblems,
  validateSamplerOptions,
} from '../../server/engine/options';
import type { SamplerOptions } from '../../server/engine/types';

describe('sampler options', () => {
  it('has frozen defaults that pass validation', () => {
    assert.ok(Object.isFrozen(DEFAULT_SAMPLER_OPTIONS));
    assert.deepEqual(samplerOptionProblems(DEFAULT_SAMPLER_OPTIONS), []);
  });

  it('resolves overrides onto the defaults, ignores undefined ones and returns a frozen object', () => {
    const options = resolveSamplerOptions({ steps: 4, temperature: undefined });
    assert.equal(options.steps, 4);
    assert.equal(options.temperature, DEFAULT_SAMPLER_OPTIONS.temperature);
    assert.ok(Object.isFrozen(options));
  });

  const badValues: [string, Partial<Record<keyof SamplerOptions, unknown>>, RegExp][] = [
    ['zero steps', { steps: 0 }, /steps must be an integer from 1/],
    ['fractional steps', { steps: 2.5 }, /steps must be an integer/],
    ['seventeen candidates', { candidates: 17 }, /candidates must be an integer from 1 to 16/],
    ['zero candidates', { candidates: 0 }, /candidates/],
    ['a top-p of 0', { topP: 0 }, /topP must be a number above 0/],
    ['a top-p above 1', { topP: 1.5 }, /topP/],
    ['a negative temperature', { temperature: -0.1 }, /temperature/],
    ['a NaN temperature', { temperature: Number.NaN }, /temperature/],
    ['an unknown strategy', { strategy: 'greedy' }, /strategy must be one of confidence, margin, entropy, random/],
    ['a threshold above 1', { confidenceThreshold: 1.5 }, /confidenceThreshold/],
    ['a negative seed', { seed: -1 }, /seed/],
    ['negative context', { contextTokens: -5 }, /contextTokens/],
    ['a non-boolean eosFill', { eosFill: 'yes' }, /eosFill must be true or false/],
    ['a non-boolean cacheNgram', { cacheNgram: 1 }, /cacheNgram must be true or false/],
    ['a cache weight above 1', { cacheNgramWeight: 1.5 }, /cacheNgramWeight must be a number from 0 to 1/],
    ['a cache order of 1', { cacheNgramOrder: 1 }, /cacheNgramOrder must be an integer from 2 to 10/],
  ];
  for (const [name, override, message] of badValues) {
    it(`rejects ${name} with a clear error`, () => {
      const options = { ...DEFAULT_SAMPLER_OPTIONS, ...override } as SamplerOptions;
      assert.throws(() => validateSamplerOptions(options), (error: unknown) => error instanceof OptionsError && message.test(error.message));
    });
  }

  it('reports every problem at once', () => {
    const options = { ...DEFAULT_SAMPLER_OPTIONS, steps: 0, candidates: 99, topP: 0 };
    assert.equal(samplerOptionProblems(options).length, 3);
  });

  it('gives row 0 the user temperature and the alternatives a sampling temperature when the user asks for 0', () => {
    assert.deepEqual(rowTemperatures({ ...DEFAULT_SAMPLER_OPTIONS, candidates: 3, temperature: 0 }), [0, ALTERNATIVE_TEMPERATURE, ALTERNATIVE_TEMPERATURE]);
    assert.deepEqual(rowTemperatures({ ...DEFAULT_SAMPLER_OPTIONS, candidates: 2, temperature: 1.2 }), [1.2, 1.2]);
  });
});
