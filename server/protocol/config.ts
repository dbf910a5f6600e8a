/**
 * The server's typed view of the "unmask" settings, pulled with workspace/configuration. package.json's
 * `contributes.configuration` is the one schema: defaults, ranges and enums are read from it (bundled by esbuild), so
 * a setting added or re-ranged there cannot drift from what the server accepts. Values that break the schema fall
 * back to the default and are reported, never used.
 */
import packageJson from '../../package.json';
import type { DeviceSetting } from '../runtime/providers';
import type { SamplerOptions, UnmaskStrategy } from '../engine/types';
import type { MultilineMode } from './completion';

/** The settings the server uses (the rest, like debounce and per-language enablement, are the client's). */
export interface ServerConfig {
  readonly steps: number;
  readonly maxSpanTokens: number;
  readonly strategy: UnmaskStrategy;
  readonly confidenceThreshold: number;
  readonly temperature: number;
  readonly topP: number;
  readonly contextTokens: number;
  readonly modelPath: string;
  readonly device: DeviceSetting;
  readonly threads: number;
  /** Alternatives per batch for "Regenerate with N Candidates" and explicit inline requests (Alt+] / Alt+[). */
  readonly candidates: number;
  /** Rows per batch for inline completions as you type; the ghost text is the best-ranked one. */
  readonly inlineCandidates: number;
  /** How many lines a completion at the cursor may have (completion.ts limitLines). */
  readonly multiline: MultilineMode;
  /** Minutes without a request after which the model is unloaded (0: never); the next request loads it again. */
  readonly idleUnloadMinutes: number;
  /** Suggestions made as you type are shown only when the gate's estimated chance that their first line is right reaches this (gate.ts). */
  readonly minConfidence: number;
  /** Milliseconds an inline completion made as you type may take before its remaining steps are cut (0: no budget). */
  readonly latencyBudgetMs: number;
  /** Mix the cache n-gram model of the document's tokens into the sampler (engine/ngram-cache.ts). */
  readonly cacheNgram: boolean;
  /** Other open documents of the language family whose tokens the cache also counts (document-tokens.ts); 0: none. */
  readonly cacheNgramOpenDocuments: number;
  /**
   * Canvas tokens that snippets of other open documents may take, for a model trained with them
   * (engine/related-context.ts); 0: none. A model without the layout ignores it.
   */
  readonly relatedContextTokens: number;
}

interface PropertySchema {
  type: string;
  default: unknown;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
}

/** Every section's settings ("Unmask" and "Unmask › Advanced" are two sections of one schema). */
const SCHEMA: Record<string, PropertySchema> = Object.assign(
  {},
  ...(packageJson.contributes.configuration as unknown as { properties: Record<string, PropertySchema> }[]).map((section) => section.properties),
);

/** Settings whose schema type is "number" but that only make sense as integers. */
const INTEGER_KEYS = new Set(['steps', 'maxSpanTokens', 'contextTokens', 'threads', 'candidates', 'inlineCandidates', 'cacheNgramOpenDocuments', 'relatedContextTokens']);

const SERVER_KEYS: readonly (keyof ServerConfig)[] = [
  'steps',
  'maxSpanTokens',
  'strategy',
  'confidenceThreshold',
  'temperature',
  'topP',
  'contextTokens',
  'modelPath',
  'device',
  'threads',
  'candidates',
  'inlineCandidates',
  'multiline',
  'idleUnloadMinutes',
  'minConfidence',
  'latencyBudgetMs',
  'cacheNgram',
  'cacheNgramOpenDocuments',
  'relatedContextTokens',
];

function schemaOf(key: string): PropertySchema {
  const schema = SCHEMA[`unmask.${key}`];
  if (!schema) throw new Error(`package.json declares no setting unmask.${key}`);
  return schema;
}

/** Why `value` breaks the schema of `unmask.<key>`, or undefined when it fits. */
function problemWith(key: string, value: unknown): string | undefined {
  const schema = schemaOf(key);
  const shown = JSON.stringify(value);
  if (schema.type === 'number') {
    if (typeof value !== 'number' || !Number.isFinite(value)) return `unmask.${key} must be a number (got ${shown})`;
    if (INTEGER_KEYS.has(key) && !Number.isInteger(value)) return `unmask.${key} must be a whole number (got ${shown})`;
    if (schema.minimum !== undefined && value < schema.minimum) return `unmask.${key} must be at least ${schema.minimum} (got ${shown})`;
    if (schema.maximum !== undefined && value > schema.maximum) return `unmask.${key} must be at most ${schema.maximum} (got ${shown})`;
  } else if (schema.type === 'boolean') {
    if (typeof value !== 'boolean') return `unmask.${key} must be true or false (got ${shown})`;
  } else if (schema.type === 'string') {
    if (typeof value !== 'string') return `unmask.${key} must be a string (got ${shown})`;
    if (schema.enum && !schema.enum.includes(value)) return `unmask.${key} must be one of ${schema.enum.join(', ')} (got ${shown})`;
  }
  return undefined;
}

export interface ParsedConfig {
  readonly config: ServerConfig;
  /** One sentence per setting that was ignored, for the log. */
  readonly problems: readonly string[];
}

/** The defaults from package.json. */
export function defaultConfig(): ServerConfig {
  return parseConfig(undefined).config;
}

/**
 * Builds the frozen server config from the raw "unmask" section (an object, or null/undefined when the client sends
 * nothing). Unset keys take the default; keys that break the schema take the default and are listed in `problems`.
 */
export function parseConfig(raw: unknown): ParsedConfig {
  const section = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const problems: string[] = [];
  const config: Record<string, unknown> = {};
  for (const key of SERVER_KEYS) {
    const value = section[key];
    const problem = value === undefined || value === null ? undefined : problemWith(key, value);
    if (problem) problems.push(`${problem}; using the default ${JSON.stringify(schemaOf(key).default)}`);
    config[key] = value === undefined || value === null || problem ? schemaOf(key).default : value;
  }
  return { config: Object.freeze(config) as unknown as ServerConfig, problems: Object.freeze(problems) };
}

/** The engine's options for a generation under this config. */
export function samplerOverrides(
  config: ServerConfig,
  extra: { candidates?: number; seed?: number; latencyBudgetMs?: number } = {},
): Partial<SamplerOptions> {
  return {
    steps: config.steps,
    strategy: config.strategy,
    confidenceThreshold: config.confidenceThreshold,
    temperature: config.temperature,
    topP: config.topP,
    contextTokens: config.contextTokens,
    candidates: extra.candidates ?? 1,
    seed: extra.seed ?? 0,
    // Only the requests made as you type pass the budget: a user who asked for something waits for all of it.
    latencyBudgetMs: extra.latencyBudgetMs ?? 0,
    cacheNgram: config.cacheNgram,
    relatedContextTokens: config.relatedContextTokens,
  };
}

/** Whether a change from `before` to `after` needs the model reloaded. */
export function needsReload(before: ServerConfig, after: ServerConfig): boolean {
  return before.modelPath !== after.modelPath || before.device !== after.device || before.threads !== after.threads;
}
