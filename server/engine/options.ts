/**
 * Defaults and validation of the generation options. The protocol layer builds a SamplerOptions from the user's
 * settings, calls resolveSamplerOptions, and hands the frozen result to infill(); bad values fail here with every
 * problem named, before any model call.
 */
import { OptionsError } from './errors';
import { MAX_CACHE_ORDER, MIN_CACHE_ORDER } from './ngram-cache';
import type { SamplerOptions, UnmaskStrategy } from './types';

export const UNMASK_STRATEGIES: readonly UnmaskStrategy[] = Object.freeze(['confidence', 'margin', 'entropy', 'random']);

/** The most candidates one batch may hold (issue 5: "default N = 4, up to 16"). */
export const MAX_CANDIDATES = 16;
/** More steps than this is never useful: no model span is that long, and each step is a model call. */
export const MAX_STEPS = 1024;
export const MAX_TEMPERATURE = 10;
/** A budget longer than the runtime's 30 s stuck-generation limit could never be what cuts the steps. */
export const MAX_LATENCY_BUDGET_MS = 30_000;

/**
 * Temperature of the alternative candidates (batch rows 1..N-1) when the user's temperature is 0. Row 0 keeps the
 * user's temperature, so the first candidate is the greedy completion that inline suggestions show; at temperature
 * 0 every other row would repeat it, so the alternatives sample instead (DiffuCoder: higher temperature varies both
 * the tokens and the decoding order).
 */
export const ALTERNATIVE_TEMPERATURE = 0.8;

/** Mirrors the defaults of the settings in package.json. */
export const DEFAULT_SAMPLER_OPTIONS: SamplerOptions = Object.freeze({
  steps: 8,
  strategy: 'confidence',
  confidenceThreshold: 0,
  temperature: 0,
  topP: 0.95,
  candidates: 1,
  seed: 0,
  contextTokens: 224,
  eosFill: true,
  eosAfterCode: true,
  tokenHealing: true,
  // Off in the engine: the server sets unmask.latencyBudgetMs for the requests made as you type only.
  latencyBudgetMs: 0,
  cacheNgram: true,
  cacheNgramWeight: 0.5,
  cacheNgramOrder: 6,
  // Only a model trained with snippets of other files uses them (ModelFacts.relatedContext); the shipped one does not.
  relatedContextTokens: 64,
});

/** Every problem with the options, as sentences; empty when they are valid. */
export function samplerOptionProblems(options: SamplerOptions): string[] {
  const problems: string[] = [];
  const integerIn = (name: keyof SamplerOptions, low: number, high: number): void => {
    const value = options[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < low || value > high) {
      problems.push(`${name} must be an integer from ${low} to ${high} (got ${String(value)})`);
    }
  };
  const numberIn = (name: keyof SamplerOptions, low: number, high: number, lowOpen = false): void => {
    const value = options[name];
    const tooLow = typeof value === 'number' && (lowOpen ? value <= low : value < low);
    if (typeof value !== 'number' || !Number.isFinite(value) || tooLow || value > high) {
      problems.push(`${name} must be a number ${lowOpen ? 'above' : 'from'} ${low} ${lowOpen ? 'and at most' : 'to'} ${high} (got ${String(value)})`);
    }
  };
  integerIn('steps', 1, MAX_STEPS);
  if (!UNMASK_STRATEGIES.includes(options.strategy)) {
    problems.push(`strategy must be one of ${UNMASK_STRATEGIES.join(', ')} (got ${String(options.strategy)})`);
  }
  numberIn('confidenceThreshold', 0, 1);
  numberIn('temperature', 0, MAX_TEMPERATURE);
  numberIn('topP', 0, 1, true);
  integerIn('candidates', 1, MAX_CANDIDATES);
  integerIn('seed', 0, 0xffffffff);
  integerIn('contextTokens', 0, 1 << 20);
  if (options.eosFill !== undefined && typeof options.eosFill !== 'boolean') {
    problems.push(`eosFill must be true or false (got ${String(options.eosFill)})`);
  }
  if (options.eosAfterCode !== undefined && typeof options.eosAfterCode !== 'boolean') {
    problems.push(`eosAfterCode must be true or false (got ${String(options.eosAfterCode)})`);
  }
  if (options.tokenHealing !== undefined && typeof options.tokenHealing !== 'boolean') {
    problems.push(`tokenHealing must be true or false (got ${String(options.tokenHealing)})`);
  }
  if (options.latencyBudgetMs !== undefined) numberIn('latencyBudgetMs', 0, MAX_LATENCY_BUDGET_MS);
  if (options.cacheNgram !== undefined && typeof options.cacheNgram !== 'boolean') {
    problems.push(`cacheNgram must be true or false (got ${String(options.cacheNgram)})`);
  }
  if (options.cacheNgramWeight !== undefined) numberIn('cacheNgramWeight', 0, 1);
  if (options.cacheNgramOrder !== undefined) integerIn('cacheNgramOrder', MIN_CACHE_ORDER, MAX_CACHE_ORDER);
  // The model's own maximum (at most half its sequence length) caps it further; here only its type is checked.
  if (options.relatedContextTokens !== undefined) integerIn('relatedContextTokens', 0, 1 << 20);
  return problems;
}

/** Checks the options and returns a frozen copy; throws OptionsError naming every bad field. */
export function validateSamplerOptions(options: SamplerOptions): SamplerOptions {
  const problems = samplerOptionProblems(options);
  if (problems.length > 0) throw new OptionsError(problems);
  return Object.freeze({ ...options });
}

/** The defaults overridden by whatever the caller set, validated and frozen. */
export function resolveSamplerOptions(overrides: Partial<SamplerOptions> = {}): SamplerOptions {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  return validateSamplerOptions({ ...DEFAULT_SAMPLER_OPTIONS, ...defined });
}

/**
 * The temperature of each batch row: row 0 uses the user's temperature and the others ALTERNATIVE_TEMPERATURE when
 * the user's is 0 (otherwise the user's too, the rows then differ by their random streams).
 */
export function rowTemperatures(options: SamplerOptions): number[] {
  return Array.from({ length: options.candidates }, (_, row) =>
    row === 0 || options.temperature > 0 ? options.temperature : ALTERNATIVE_TEMPERATURE,
  );
}
