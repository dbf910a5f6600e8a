/**
 * The typed view of the "unmask" settings. package.json declares the schema; this module turns whatever the user
 * wrote into a frozen, clamped object, so that the client and (through workspace/configuration) the server never see
 * an out-of-range or mistyped value. It does not import `vscode`: the caller hands in a getter.
 */

export type Strategy = 'confidence' | 'margin' | 'entropy' | 'random';
export type Device = 'auto' | 'cpu' | 'cuda' | 'webgpu' | 'dml' | 'coreml';
/** automatic: ghost text as you type; manual: only when asked (Unmask: Suggest at Cursor, Ctrl+Alt+\). */
export type TriggerMode = 'automatic' | 'manual';
/** adaptive: the wait follows typing speed and server latency (debouncePolicy.ts); fixed: always debounceMs. */
export type DebounceMode = 'adaptive' | 'fixed';
export type Multiline = 'auto' | 'always' | 'never';

export interface UnmaskConfig {
  readonly enable: boolean;
  readonly triggerMode: TriggerMode;
  /** Per language id; "*" is the default for languages not listed. */
  readonly languages: Readonly<Record<string, boolean>>;
  readonly debounceMs: number;
  readonly debounceMode: DebounceMode;
  readonly steps: number;
  readonly maxSpanTokens: number;
  readonly strategy: Strategy;
  readonly confidenceThreshold: number;
  readonly temperature: number;
  readonly topP: number;
  readonly contextTokens: number;
  readonly modelPath: string;
  readonly device: Device;
  readonly threads: number;
  /** Alternatives per batch for "Regenerate with N Candidates" and explicit inline requests (Alt+] / Alt+[). */
  readonly candidates: number;
  /** Rows per batch for inline completions as you type; the ghost text is the best-ranked one. */
  readonly inlineCandidates: number;
  /** How many lines a completion at the cursor may have (server/protocol/completion.ts limitLines). */
  readonly multiline: Multiline;
  /** Minutes without a request after which the server unloads the model (0: never). */
  readonly idleUnloadMinutes: number;
  /** Suggestions made as you type are shown only when the gate's estimated chance that they are right reaches this (server/protocol/gate.ts). */
  readonly minConfidence: number;
  /** Milliseconds a suggestion made as you type may take before the server cuts its remaining steps (0: no budget). */
  readonly latencyBudgetMs: number;
  /** Mix the cache n-gram model of the document's tokens into the server's sampler (server/engine/ngram-cache.ts). */
  readonly cacheNgram: boolean;
  /** Other open documents of the language family whose tokens the cache also counts and the copy looks in (0: only the document at hand). */
  readonly cacheNgramOpenDocuments: number;
  /** Canvas tokens for snippets of other open documents, used only by a model trained with them (0: none). */
  readonly relatedContextTokens: number;
}

/** Reads one raw setting value (`undefined` when unset); `WorkspaceConfiguration.get` fits. */
export type SettingGetter = (key: string) => unknown;

export const DEFAULT_CONFIG: UnmaskConfig = Object.freeze({
  enable: true,
  triggerMode: 'automatic',
  // The languages the shipped model was trained on; the rest are off until the user turns them on.
  languages: Object.freeze({ '*': false, python: true, typescript: true, javascript: true, typescriptreact: true, javascriptreact: true }),
  debounceMs: 150,
  debounceMode: 'adaptive',
  steps: 8,
  maxSpanTokens: 32,
  strategy: 'confidence',
  confidenceThreshold: 0,
  temperature: 0,
  topP: 0.95,
  contextTokens: 224,
  modelPath: '',
  device: 'auto',
  threads: 0,
  candidates: 4,
  inlineCandidates: 2,
  multiline: 'auto',
  idleUnloadMinutes: 15,
  minConfidence: 0.35,
  latencyBudgetMs: 100,
  cacheNgram: true,
  cacheNgramOpenDocuments: 3,
  relatedContextTokens: 64,
});

const STRATEGIES: readonly Strategy[] = ['confidence', 'margin', 'entropy', 'random'];
const DEVICES: readonly Device[] = ['auto', 'cpu', 'cuda', 'webgpu', 'dml', 'coreml'];
const TRIGGER_MODES: readonly TriggerMode[] = ['automatic', 'manual'];
const DEBOUNCE_MODES: readonly DebounceMode[] = ['adaptive', 'fixed'];
const MULTILINE: readonly Multiline[] = ['auto', 'always', 'never'];

/** Collects one sentence per setting that was not used as written, for the log. */
type Problems = string[];

function number(
  problems: Problems,
  key: string,
  raw: unknown,
  fallback: number,
  min: number,
  max: number,
  integer: boolean,
): number {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw !== 'number' || !Number.isFinite(raw)) {
    problems.push(`unmask.${key} must be a number (got ${JSON.stringify(raw)}); using ${fallback}`);
    return fallback;
  }
  const value = Math.min(max, Math.max(min, integer ? Math.round(raw) : raw));
  if (value !== raw) problems.push(`unmask.${key} = ${raw} is outside ${min}..${max}${integer ? ' or not whole' : ''}; using ${value}`);
  return value;
}

function oneOf<T extends string>(problems: Problems, key: string, raw: unknown, allowed: readonly T[], fallback: T): T {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw === 'string' && (allowed as readonly string[]).includes(raw)) return raw as T;
  problems.push(`unmask.${key} must be one of ${allowed.join(', ')} (got ${JSON.stringify(raw)}); using ${fallback}`);
  return fallback;
}

function flag(problems: Problems, key: string, raw: unknown, fallback: boolean): boolean {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw === 'boolean') return raw;
  problems.push(`unmask.${key} must be true or false (got ${JSON.stringify(raw)}); using ${fallback}`);
  return fallback;
}

function text(problems: Problems, key: string, raw: unknown, fallback: string): string {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw === 'string') return raw.trim();
  problems.push(`unmask.${key} must be a string (got ${JSON.stringify(raw)}); using ${JSON.stringify(fallback)}`);
  return fallback;
}

function languageMap(problems: Problems, raw: unknown): Readonly<Record<string, boolean>> {
  if (raw === undefined || raw === null) return DEFAULT_CONFIG.languages;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push('unmask.languages must be an object of language id -> true/false; using the default');
    return DEFAULT_CONFIG.languages;
  }
  const result: Record<string, boolean> = {};
  for (const [language, enabled] of Object.entries(raw)) {
    if (typeof enabled === 'boolean') result[language] = enabled;
    else problems.push(`unmask.languages.${language} must be true or false; ignored`);
  }
  return Object.freeze(result);
}

export interface ConfigReport {
  readonly config: UnmaskConfig;
  /** One sentence per setting that was not used as written (wrong type, out of range); empty when all fit. */
  readonly problems: readonly string[];
}

/** Builds the typed configuration; bad or missing values fall back to the defaults, numbers are clamped. */
export function readConfigReport(get: SettingGetter): ConfigReport {
  const d = DEFAULT_CONFIG;
  const p: Problems = [];
  const config: UnmaskConfig = Object.freeze({
    enable: flag(p, 'enable', get('enable'), d.enable),
    triggerMode: oneOf(p, 'triggerMode', get('triggerMode'), TRIGGER_MODES, d.triggerMode),
    languages: languageMap(p, get('languages')),
    debounceMs: number(p, 'debounceMs', get('debounceMs'), d.debounceMs, 0, 2000, true),
    debounceMode: oneOf(p, 'debounceMode', get('debounceMode'), DEBOUNCE_MODES, d.debounceMode),
    steps: number(p, 'steps', get('steps'), d.steps, 1, 128, true),
    maxSpanTokens: number(p, 'maxSpanTokens', get('maxSpanTokens'), d.maxSpanTokens, 4, 128, true),
    strategy: oneOf(p, 'strategy', get('strategy'), STRATEGIES, d.strategy),
    confidenceThreshold: number(p, 'confidenceThreshold', get('confidenceThreshold'), d.confidenceThreshold, 0, 1, false),
    temperature: number(p, 'temperature', get('temperature'), d.temperature, 0, 2, false),
    topP: number(p, 'topP', get('topP'), d.topP, 0.05, 1, false),
    contextTokens: number(p, 'contextTokens', get('contextTokens'), d.contextTokens, 16, 1024, true),
    modelPath: text(p, 'modelPath', get('modelPath'), d.modelPath),
    device: oneOf(p, 'device', get('device'), DEVICES, d.device),
    threads: number(p, 'threads', get('threads'), d.threads, 0, 64, true),
    candidates: number(p, 'candidates', get('candidates'), d.candidates, 1, 16, true),
    inlineCandidates: number(p, 'inlineCandidates', get('inlineCandidates'), d.inlineCandidates, 1, 16, true),
    multiline: oneOf(p, 'multiline', get('multiline'), MULTILINE, d.multiline),
    idleUnloadMinutes: number(p, 'idleUnloadMinutes', get('idleUnloadMinutes'), d.idleUnloadMinutes, 0, 1440, false),
    minConfidence: number(p, 'minConfidence', get('minConfidence'), d.minConfidence, 0, 1, false),
    latencyBudgetMs: number(p, 'latencyBudgetMs', get('latencyBudgetMs'), d.latencyBudgetMs, 0, 2000, false),
    cacheNgram: flag(p, 'cacheNgram', get('cacheNgram'), d.cacheNgram),
    cacheNgramOpenDocuments: number(p, 'cacheNgramOpenDocuments', get('cacheNgramOpenDocuments'), d.cacheNgramOpenDocuments, 0, 8, true),
    relatedContextTokens: number(p, 'relatedContextTokens', get('relatedContextTokens'), d.relatedContextTokens, 0, 128, true),
  });
  return { config, problems: Object.freeze(p) };
}

/** The typed configuration alone (see readConfigReport). */
export function readConfig(get: SettingGetter): UnmaskConfig {
  return readConfigReport(get).config;
}

/** Whether inline completions are wanted for a language id, by the per-language map with its "*" default. */
export function languageEnabled(config: UnmaskConfig, languageId: string): boolean {
  const explicit = config.languages[languageId];
  if (explicit !== undefined) return explicit;
  return config.languages['*'] ?? true;
}
