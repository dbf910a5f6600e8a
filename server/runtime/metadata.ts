/**
 * Turns a denoiser's ONNX metadata into ModelFacts and checks the model against the contract in models/README.md:
 * the metadata keys and their values, agreement with the manifest's copy, and the names, dtypes and shapes of the
 * graph's inputs and outputs as onnxruntime reports them. Every error names what mismatches.
 */
import { bannedTokenIds } from '../engine/special-tokens';
import type { ModelFacts, RelatedContext } from '../engine/types';

/** The contract version this runtime implements (`unmask.format`). */
export const SUPPORTED_FORMAT = '1';

/**
 * Upper bounds on the sizes a model may declare. The runtime sizes canvases and buffers from them (a range fill uses
 * the largest span bucket), so a hostile or mistaken model with a huge one ran the process out of memory; these sit
 * far above any model this runtime can run interactively on a laptop (the shipped one: V 8192, T 256, spans <= 128).
 */
export const METADATA_LIMITS = Object.freeze({
  vocabSize: 1 << 20,
  maxSeqLen: 16_384,
  /** The largest span bucket (a hole of more tokens is not an inline completion). */
  spanTokens: 1024,
  spanBuckets: 32,
  topK: 1024,
  /** Each of the cache's layers, heads and head size. */
  cacheDim: 4096,
});

/** What onnxruntime reports about one graph input or output (a subset of InferenceSession.ValueMetadata). */
export interface IoInfo {
  readonly name: string;
  readonly isTensor: boolean;
  /** Element type as onnxruntime-node names it ("int64", "float32", ...). */
  readonly type?: string;
  /** Each dimension a number (fixed) or a string (symbolic); empty when unknown. */
  readonly shape?: readonly (number | string)[];
}

/** One expected tensor of the contract: rank and which dimensions are fixed (by a fact) or dynamic. */
export interface ExpectedTensor {
  readonly name: string;
  readonly type: string;
  readonly dims: readonly string[];
  /** Dimension values fixed by the facts (by dimension index). */
  readonly fixed?: Readonly<Record<number, number>>;
}

function describe(t: IoInfo): string {
  const shape = t.shape && t.shape.length ? `[${t.shape.join(', ')}]` : 'unknown shape';
  return `"${t.name}" (${t.type ?? 'non-tensor'}, ${shape})`;
}

function requireKey(meta: Readonly<Record<string, string>>, key: string, where: string): string {
  const value = meta[key];
  if (value === undefined) throw new Error(`${where} lacks metadata "${key}"`);
  return value;
}

function intKey(meta: Readonly<Record<string, string>>, key: string, where: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = requireKey(meta, key, where);
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw new Error(`${where} metadata "${key}" is ${JSON.stringify(raw.slice(0, 80))}; expected an integer >= ${min}`);
  }
  if (value > max) throw new Error(`${where} metadata "${key}" = ${value} is above the runtime's limit of ${max}`);
  return value;
}

function jsonKey(meta: Readonly<Record<string, string>>, key: string, where: string): unknown {
  const raw = requireKey(meta, key, where);
  try {
    return JSON.parse(raw);
  } catch {
    throw new Error(`${where} metadata "${key}" is not JSON: ${raw.slice(0, 80)}`);
  }
}

/**
 * The snippet layout a model declares (`unmask.related_context`, JSON `{"layout": "file_sep", "max_tokens": N}`:
 * snippets of other files before its text, at most N canvas tokens of them), or undefined when it declares none.
 * N may not exceed half the sequence length: the file's own text stays the larger part of the canvas.
 */
function relatedContextOf(meta: Readonly<Record<string, string>>, where: string, maxSeqLen: number): RelatedContext | undefined {
  if (meta['unmask.related_context'] === undefined) return undefined;
  const raw = jsonKey(meta, 'unmask.related_context', where);
  const problem = (why: string): Error => new Error(`${where} metadata "unmask.related_context" is ${JSON.stringify(raw)?.slice(0, 80)}; ${why}`);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw problem('expected a JSON object {"layout": "file_sep", "max_tokens": N}');
  const { layout, max_tokens: maxTokens } = raw as { layout?: unknown; max_tokens?: unknown };
  if (layout !== 'file_sep') throw problem(`"layout" must be "file_sep", the only layout this runtime places (got ${JSON.stringify(layout)})`);
  const limit = Math.floor(maxSeqLen / 2);
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > limit) {
    throw problem(`"max_tokens" must be an integer from 1 to ${limit} (half of max_seq_len ${maxSeqLen}), got ${JSON.stringify(maxTokens)}`);
  }
  return Object.freeze({ layout, maxTokens });
}

/**
 * Reads ModelFacts from a denoiser's metadata_props (or, with `kind` "disc", a discriminator's, which carries the same
 * keys). `where` names the file in errors. Refuses other contract versions, other kinds, and ids outside the vocabulary.
 */
export function factsFromMetadata(meta: Readonly<Record<string, string>>, where: string, kind: 'mdm' | 'disc' = 'mdm'): ModelFacts {
  const format = requireKey(meta, 'unmask.format', where);
  if (format !== SUPPORTED_FORMAT) {
    throw new Error(`${where} has contract version unmask.format=${format}; this runtime reads version ${SUPPORTED_FORMAT}`);
  }
  const actualKind = requireKey(meta, 'unmask.kind', where);
  if (actualKind !== kind) {
    const need = kind === 'mdm' ? 'inline completion needs a denoiser ("mdm")' : 'a discriminator must be kind "disc"';
    throw new Error(`${where} is a "${actualKind}" model; ${need}`);
  }
  const attention = meta['unmask.attention'];
  if (attention !== undefined && attention !== 'full' && attention !== 'context_only') {
    throw new Error(`${where} has attention "${attention}"; the runtime runs "full" (bidirectional) and "context_only" (cached-context) denoisers`);
  }
  const vocabSize = intKey(meta, 'unmask.vocab_size', where, 2, METADATA_LIMITS.vocabSize);
  const maxSeqLen = intKey(meta, 'unmask.max_seq_len', where, 8, METADATA_LIMITS.maxSeqLen);
  const id = (key: string): number => {
    const value = intKey(meta, key, where, 0);
    if (value >= vocabSize) throw new Error(`${where} metadata "${key}" = ${value} is outside the vocabulary (size ${vocabSize})`);
    return value;
  };
  const maskId = id('unmask.mask_id');
  const eosId = id('unmask.eos_id');
  const padId = id('unmask.pad_id');
  const fileSepId = id('unmask.file_sep_id');
  if (maskId === eosId) throw new Error(`${where} uses the same id ${maskId} for mask and end-of-span`);

  const langRaw = jsonKey(meta, 'unmask.lang_ids', where);
  if (!langRaw || typeof langRaw !== 'object' || Array.isArray(langRaw)) {
    throw new Error(`${where} metadata "unmask.lang_ids" must be a JSON object of language -> token id`);
  }
  const langIds: Record<string, number> = {};
  for (const [lang, value] of Object.entries(langRaw)) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= vocabSize) {
      throw new Error(`${where} metadata "unmask.lang_ids" gives "${lang}" the id ${JSON.stringify(value)}, not a token id below ${vocabSize}`);
    }
    langIds[lang] = value;
  }
  if (langIds.other === undefined) throw new Error(`${where} metadata "unmask.lang_ids" has no "other" fallback tag`);

  const buckets = jsonKey(meta, 'unmask.span_buckets', where);
  if (
    !Array.isArray(buckets) ||
    buckets.length === 0 ||
    !buckets.every((b, i) => Number.isInteger(b) && b > 0 && (i === 0 || b > buckets[i - 1]))
  ) {
    throw new Error(`${where} metadata "unmask.span_buckets" must be increasing positive integers, got ${JSON.stringify(buckets).slice(0, 80)}`);
  }
  const largest = buckets[buckets.length - 1] as number;
  // No span is longer than the canvas. (A bucket as long as max_seq_len cannot sit next to the language tag, so the
  // recipe never fills it, but its tiny T = 128 smoke models list it: that is harmless, a huge one is not.)
  const spanLimit = Math.min(METADATA_LIMITS.spanTokens, maxSeqLen);
  if (buckets.length > METADATA_LIMITS.spanBuckets || largest > spanLimit) {
    throw new Error(
      `${where} metadata "unmask.span_buckets" has ${buckets.length} buckets up to ${largest} tokens; the runtime takes at most ` +
        `${METADATA_LIMITS.spanBuckets} buckets of at most ${spanLimit} tokens (${METADATA_LIMITS.spanTokens}, and max_seq_len ${maxSeqLen})`,
    );
  }
  const relatedContext = relatedContextOf(meta, where, maxSeqLen);
  return Object.freeze({
    vocabSize,
    maxSeqLen,
    maskId,
    eosId,
    padId,
    fileSepId,
    langIds: Object.freeze(langIds),
    spanBuckets: Object.freeze([...(buckets as number[])]),
    ...(relatedContext ? { relatedContext } : {}),
  });
}

/** The metadata keys of the K-best head: only a graph that ends in the vocabulary projection carries them. */
const HEAD_KEYS = new Set(['unmask.top_k', 'unmask.banned_ids']);

/** The K-best head of a denoiser graph: entries per position, and how many ids its lists rank. */
export interface KBestHead {
  readonly topK: number;
  readonly allowed: number;
}

/**
 * Reads the K-best head's size (`unmask.top_k`) of a denoiser graph and checks its banned ids (`unmask.banned_ids`):
 * every id the sampler never commits (a head that lists one would spend entries on it), never end-of-span, and
 * otherwise only ids the model names as special (`unmask.special_ids`, e.g. fill-in-the-middle markers): a head that
 * dropped a text token would hide it from the sampler.
 */
export function headFromMetadata(meta: Readonly<Record<string, string>>, facts: ModelFacts, where: string): KBestHead {
  if (meta['unmask.top_k'] === undefined) {
    throw new Error(
      `${where} has no K-best head (metadata "unmask.top_k", outputs top_logits, top_ids, log_z); ` +
        'add one with `cd models/recipe && python -m scripts.export_head <model folder>`',
    );
  }
  const topK = intKey(meta, 'unmask.top_k', where, 1);
  if (topK > facts.vocabSize) throw new Error(`${where} metadata "unmask.top_k" = ${topK} exceeds the vocabulary (${facts.vocabSize})`);
  if (topK > METADATA_LIMITS.topK) throw new Error(`${where} metadata "unmask.top_k" = ${topK} is above the runtime's limit of ${METADATA_LIMITS.topK}`);
  const banned = jsonKey(meta, 'unmask.banned_ids', where);
  const problem = (why: string): Error => new Error(`${where} metadata "unmask.banned_ids" is ${JSON.stringify(banned)}; ${why}`);
  if (!Array.isArray(banned) || !banned.every((id) => Number.isInteger(id))) throw problem('expected a JSON list of token ids');
  const missing = bannedTokenIds(facts).filter((id) => !banned.includes(id));
  if (missing.length) throw problem(`the sampler also bans ${JSON.stringify(missing)} (mask, padding, file separator, language tags)`);
  if (banned.includes(facts.eosId)) throw problem(`it bans end-of-span (${facts.eosId}), which ends every completion`);
  const special = new Set<unknown>(Object.values((meta['unmask.special_ids'] && jsonKey(meta, 'unmask.special_ids', where)) || {}));
  const known = new Set<number>(bannedTokenIds(facts));
  const unnamed = (banned as number[]).filter((id) => !known.has(id) && !special.has(id));
  if (unnamed.length) throw problem(`${JSON.stringify(unnamed)} are not special ids (unmask.special_ids), so they are text the sampler must see`);
  return { topK, allowed: facts.vocabSize - new Set(banned).size };
}

/** The attention pattern of a denoiser (`unmask.attention`, "full" when absent). */
export type Attention = 'full' | 'context_only';

/**
 * Checks that a graph's attention pattern fits how it is run: a single graph must be "full" (every position sees the
 * whole canvas), the two graphs of a cached-context model "context_only".
 */
export function checkAttention(meta: Readonly<Record<string, string>>, expected: Attention, where: string): void {
  const attention = meta['unmask.attention'] ?? 'full';
  if (attention === expected) return;
  const why =
    expected === 'full'
      ? 'a context_only denoiser ships as a context graph and a step graph (manifest "cached_context"), not as one graph'
      : 'the graphs of a cached-context model must come from a context_only checkpoint';
  throw new Error(`${where} has unmask.attention "${attention}", expected "${expected}": ${why}`);
}

/** The shape of a cached-context model's key/value cache, from `unmask.cache`: past_key [layers, B, heads, T, headDim]. */
export interface CacheShape {
  readonly layers: number;
  readonly heads: number;
  readonly headDim: number;
}

/**
 * Reads the cache shape of one graph of a cached-context model and checks that the graph is the one expected
 * (`unmask.graph` is "context" or "step").
 */
export function cacheFromMetadata(meta: Readonly<Record<string, string>>, graph: 'context' | 'step', where: string): CacheShape {
  const role = requireKey(meta, 'unmask.graph', where);
  if (role !== graph) throw new Error(`${where} is the "${role}" graph (unmask.graph); expected the "${graph}" graph`);
  const raw = jsonKey(meta, 'unmask.cache', where) as Record<string, unknown> | null;
  const size = (key: string): number => {
    const value = raw?.[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > METADATA_LIMITS.cacheDim) {
      throw new Error(`${where} metadata "unmask.cache" needs an integer "${key}" from 1 to ${METADATA_LIMITS.cacheDim}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  if (raw?.layout !== '[L,B,H,T,Dh]') throw new Error(`${where} metadata "unmask.cache" has layout ${JSON.stringify(raw?.layout)}; this runtime reads "[L,B,H,T,Dh]"`);
  return Object.freeze({ layers: size('layers'), heads: size('heads'), headDim: size('head_dim') });
}

/**
 * Checks that the context and step graphs of one model carry the same facts (every `unmask.*` key but the graph and
 * the step graph's K-best head).
 */
export function checkGraphsAgree(
  contextMeta: Readonly<Record<string, string>>,
  stepMeta: Readonly<Record<string, string>>,
  whereContext: string,
  whereStep: string,
): void {
  const keys = new Set([...Object.keys(contextMeta), ...Object.keys(stepMeta)].filter((k) => k.startsWith('unmask.') && k !== 'unmask.graph' && !HEAD_KEYS.has(k)));
  for (const key of keys) {
    if (contextMeta[key] !== stepMeta[key]) {
      const show = (v: string | undefined): string => (v === undefined ? 'absent' : v.slice(0, 80));
      throw new Error(`${whereContext} and ${whereStep} disagree on "${key}": ${show(contextMeta[key])} vs ${show(stepMeta[key])}`);
    }
  }
}

/**
 * Checks that the manifest's copy of the metadata agrees with the ONNX file on every key both carry.
 * A manifest may omit keys; it may not contradict the model.
 */
export function checkManifestAgrees(
  onnxMeta: Readonly<Record<string, string>>,
  manifestMeta: Readonly<Record<string, string>>,
  where: string,
): void {
  for (const [key, value] of Object.entries(manifestMeta)) {
    // The quantization differs between the int8 and fp32 files of one folder, and the training config is prose.
    if (!key.startsWith('unmask.') || key === 'unmask.config' || key === 'unmask.quantization') continue;
    const actual = onnxMeta[key];
    if (actual === undefined) continue;
    if (!sameValue(actual, value)) {
      throw new Error(`manifest.json and ${where} disagree on "${key}": manifest ${value}, model ${actual}`);
    }
  }
}

/** Metadata values compare as JSON when both parse (so "[8, 16]" equals "[8,16]"), else as strings. */
function sameValue(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}

/** The outputs of a graph that ends in the vocabulary projection: logits [B,P,V] and the K-best head. */
function denoiserOutputs(facts: ModelFacts, topK: number): ExpectedTensor[] {
  return [
    { name: 'logits', type: 'float32', dims: ['B', 'P', 'V'], fixed: { 2: facts.vocabSize } },
    { name: 'top_logits', type: 'float32', dims: ['B', 'P', 'K'], fixed: { 2: topK } },
    { name: 'top_ids', type: 'int32', dims: ['B', 'P', 'K'], fixed: { 2: topK } },
    { name: 'log_z', type: 'float32', dims: ['B', 'P'] },
  ];
}

/** The denoiser's I/O per models/README.md: input_ids [B,T] int64, positions [B,P] int64 -> the denoiser outputs. */
function denoiserContract(facts: ModelFacts, topK: number): IoContract {
  return {
    inputs: [
      { name: 'input_ids', type: 'int64', dims: ['B', 'T'] },
      { name: 'positions', type: 'int64', dims: ['B', 'P'] },
    ],
    outputs: denoiserOutputs(facts, topK),
  };
}

/** The cache tensors [L, B, H, T, Dh] with the sizes the metadata fixes (B is Bc in the step graph). */
function cacheTensor(name: string, cache: CacheShape, batch: string): ExpectedTensor {
  return { name, type: 'float32', dims: ['L', batch, 'H', 'T', 'Dh'], fixed: { 0: cache.layers, 2: cache.heads, 4: cache.headDim } };
}

/** The context graph: input_ids [B,T] int64, span_mask [B,T] bool -> past_key, past_value [L,B,H,T,Dh] float32. */
function contextContract(cache: CacheShape): IoContract {
  return {
    inputs: [
      { name: 'input_ids', type: 'int64', dims: ['B', 'T'] },
      { name: 'span_mask', type: 'bool', dims: ['B', 'T'] },
    ],
    outputs: [cacheTensor('past_key', cache, 'B'), cacheTensor('past_value', cache, 'B')],
  };
}

/**
 * The step graph: span_ids, span_pos [B,S] int64, past_key, past_value [L,Bc,H,T,Dh] float32, context_mask [Bc,T]
 * bool, out_idx [B,P] int64 -> the denoiser outputs.
 */
function stepContract(facts: ModelFacts, topK: number, cache: CacheShape): IoContract {
  return {
    inputs: [
      { name: 'span_ids', type: 'int64', dims: ['B', 'S'] },
      { name: 'span_pos', type: 'int64', dims: ['B', 'S'] },
      cacheTensor('past_key', cache, 'Bc'),
      cacheTensor('past_value', cache, 'Bc'),
      { name: 'context_mask', type: 'bool', dims: ['Bc', 'T'] },
      { name: 'out_idx', type: 'int64', dims: ['B', 'P'] },
    ],
    outputs: denoiserOutputs(facts, topK),
  };
}

/** The inputs and outputs a graph must have (other modules describe their graphs' contracts with it). */
export interface IoContract {
  readonly inputs: readonly ExpectedTensor[];
  readonly outputs: readonly ExpectedTensor[];
}

function checkTensor(actual: IoInfo | undefined, expected: ExpectedTensor, role: string, where: string, all: readonly IoInfo[]): void {
  const want = `${expected.type} [${expected.dims.join(', ')}]`;
  if (!actual) {
    const have = all.map(describe).join(', ') || 'none';
    throw new Error(`${where} has no ${role} "${expected.name}" (${want}); its ${role}s are ${have}`);
  }
  if (!actual.isTensor || actual.type !== expected.type) {
    throw new Error(`${where} ${role} ${describe(actual)} must have dtype ${expected.type} (expected ${want})`);
  }
  const shape = actual.shape ?? [];
  if (shape.length === 0) return; // Shape not recorded in the graph: nothing more to check before running it.
  if (shape.length !== expected.dims.length) {
    throw new Error(`${where} ${role} ${describe(actual)} has rank ${shape.length}; expected ${want}`);
  }
  shape.forEach((dim, i) => {
    const fixed = expected.fixed?.[i];
    if (typeof dim !== 'number' || dim <= 0) return; // Symbolic or unnamed dynamic dimension.
    if (fixed === undefined || dim !== fixed) {
      const why = fixed !== undefined ? `dimension ${expected.dims[i]} must be ${fixed}` : `dimension ${expected.dims[i]} must be dynamic`;
      throw new Error(`${where} ${role} ${describe(actual)}: ${why} (expected ${want})`);
    }
  });
}

/** Checks a session's inputs and outputs against a contract; throws naming `where` and the first mismatch. */
export function checkIo(inputs: readonly IoInfo[], outputs: readonly IoInfo[], contract: IoContract, where: string): void {
  for (const expected of contract.inputs) {
    checkTensor(inputs.find((t) => t.name === expected.name), expected, 'input', where, inputs);
  }
  const extra = inputs.filter((t) => !contract.inputs.some((e) => e.name === t.name));
  if (extra.length) throw new Error(`${where} has inputs the runtime does not feed: ${extra.map(describe).join(', ')}`);
  for (const expected of contract.outputs) {
    checkTensor(outputs.find((t) => t.name === expected.name), expected, 'output', where, outputs);
  }
}

/** Checks a denoiser session's inputs and outputs against the contract; throws naming the first mismatch. */
export function checkDenoiserIo(inputs: readonly IoInfo[], outputs: readonly IoInfo[], facts: ModelFacts, topK: number, where: string): void {
  checkIo(inputs, outputs, denoiserContract(facts, topK), where);
}

/** The inputs and outputs of one session, as onnxruntime reports them. */
export interface SessionIo {
  readonly inputs: readonly IoInfo[];
  readonly outputs: readonly IoInfo[];
}

/** Checks a cached-context model's two sessions against the contract; throws naming the graph and the first mismatch. */
export function checkCachedIo(
  context: SessionIo,
  step: SessionIo,
  facts: ModelFacts,
  topK: number,
  cache: CacheShape,
  whereContext: string,
  whereStep: string,
): void {
  checkIo(context.inputs, context.outputs, contextContract(cache), whereContext);
  checkIo(step.inputs, step.outputs, stepContract(facts, topK, cache), whereStep);
}
