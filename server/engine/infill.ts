/**
 * The engine's entry point, called by the protocol layer, the CLI and the benchmarks: fill every hole of a request
 * with N candidates in one batched denoising run, turn them into text, and rank them.
 *
 *   request -> canvas, healed where the text before a hole ends inside a token (canvas.ts, healing.ts)
 *           -> batched sampler (sampler.ts) -> text per hole, minus the healed partial (postprocess.ts)
 *           -> ranked, near-duplicates merged (rerank.ts) + trace of the best candidate (trace.ts)
 *
 * Pure: the model and the tokenizer are handed in, nothing here does I/O.
 */
import { buildCanvas, cacheTokens } from './canvas';
import { OptionsError } from './errors';
import { afterPartial } from './healing';
import { joinTexts } from './ngram-cache';
import { type FirstLineStats, firstLineAgreement, firstLineStats, lineMinConfidences, type SpanToken } from './gate-features';
import { DEFAULT_SAMPLER_OPTIONS, rowTemperatures, validateSamplerOptions } from './options';
import { finishHoleText, holeTokensToText, mergeNearDuplicates, rankBy } from './postprocess';
import { rerankScore } from './rerank';
import { sampleCanvas, type Commit, type SampleFn, type SamplerCache } from './sampler';
import { bannedTokenIds } from './special-tokens';
import { TraceBuilder, type Trace } from './trace';
import type { HoleLayout, InfillRequest, ModelFacts, ModelFn, SamplerOptions, TextCodec } from './types';

export type { InfillRequest, SamplerOptions } from './types';
export type { Trace, TraceToken } from './trace';

/**
 * What infill denoises with: a model function (the sampler calls it once per step), or a model that runs the sampler
 * itself (the runtime's in-worker sampler, the same sampleCanvas next to the session).
 */
export type Denoiser = ModelFn | { readonly sample: SampleFn };

export interface InfillHooks {
  readonly signal?: AbortSignal;
  /** The trace so far (batch row 0), after each step. */
  readonly onStep?: (trace: Trace) => void;
  /**
   * Ranks the candidates, higher first (see rerank.ts to add a reward or a syntax check). Default: the model's mean
   * log-probability per token.
   */
  readonly score?: (candidate: Omit<Candidate, 'score'>) => number;
  /**
   * The clock of the latency budget (SamplerOptions.latencyBudgetMs), in ms; needed with a budget. The in-worker
   * sampler reads the runtime's wall clock instead (runtime/clock.ts), so a caller of that one passes that clock.
   */
  readonly now?: () => number;
  /**
   * When the request began on `now`'s clock: the budget counts from here, so that time spent before infill (reading
   * the document, waiting for the model) is part of it. Default: when infill starts.
   */
  readonly startedAt?: number;
}

export interface Candidate {
  /** The text for each hole, ready to insert ("" for a hole the model left empty). */
  readonly holes: readonly string[];
  /**
   * Per hole, the model's tokens up to the first end-of-span (before the text was tidied). With token healing the
   * first one's text starts with the hole's `InfillResult.healed` text, which `holes` leaves out.
   */
  readonly tokenIds: readonly (readonly number[])[];
  /** Sum of the natural log-probabilities of the tokens the model chose, up to and including each hole's first end-of-span. */
  readonly logProb: number;
  /** How many tokens logProb sums over. */
  readonly scoredTokens: number;
  /** Mean probability of those tokens when they were committed. */
  readonly meanConfidence: number;
  /** The probabilities of the tokens that wrote the first line of the first hole (gate-features.ts). */
  readonly firstLine: FirstLineStats;
  /**
   * The least probability of the tokens that wrote each line of the first hole, in order (gate-features.ts
   * lineMinConfidences): where the model turned unsure (protocol/completion.ts cuts the lines after it).
   */
  readonly lineConfidence: readonly number[];
  /**
   * The share of the batch's other rows whose first hole has the same first line (0..1; 0 with one row): rows that
   * agree before near-duplicates are merged, the gate's self-consistency.
   */
  readonly agreement: number;
  /** The batch row it came from. */
  readonly row: number;
  /**
   * The row's canvas after the last step: the context and every span position filled (tokens, then end-of-span).
   * A reward model scores this canvas (models/README.md, "Discriminator ONNX contract").
   */
  readonly canvas: Int32Array;
  /** The ranking score. */
  readonly score: number;
}

export interface InfillResult {
  /** Best first; near-duplicates merged; candidates that are only whitespace dropped (so possibly empty). */
  readonly candidates: readonly Candidate[];
  /** The trace of the best candidate (of row 0 when every candidate was dropped). */
  readonly trace: Trace;
  readonly modelCalls: number;
  /** True when the latency budget cut the steps: the last model call committed every remaining mask at once. */
  readonly cutByDeadline: boolean;
  /** Time spent awaiting the model; totalMs - modelMs is the engine's own cost. */
  readonly modelMs: number;
  readonly totalMs: number;
  /** Length of the canvas: tag, snippets of other files, text and masks. */
  readonly canvasTokens: number;
  /** Canvas tokens taken by snippets of other files, [FILE] tokens included (related-context.ts); 0 without. */
  readonly relatedTokens: number;
  /** Where each hole lies in the canvas, the same in every row: the span positions a reward model scores. */
  readonly holes: readonly HoleLayout[];
  /** Per hole, the text that token healing took off the end of the context ("" where none, healing.ts). */
  readonly healed: readonly string[];
}

export async function infill(
  model: Denoiser,
  codec: TextCodec,
  facts: ModelFacts,
  request: InfillRequest,
  options: SamplerOptions,
  hooks: InfillHooks = {},
): Promise<InfillResult> {
  const started = performance.now();
  const settings = validateSamplerOptions(options);
  if (!Number.isInteger(facts.vocabSize) || facts.vocabSize < 1) {
    throw new OptionsError([`the model's vocabulary size must be a positive integer (got ${facts.vocabSize})`]);
  }
  const canvas = buildCanvas(
    codec,
    facts,
    request,
    settings.contextTokens,
    settings.tokenHealing ?? true,
    settings.relatedContextTokens ?? DEFAULT_SAMPLER_OPTIONS.relatedContextTokens!,
  );
  const healed = canvas.healing.map((healing) => healing?.partial ?? '');
  const traces = new TraceBuilder(
    codec,
    facts,
    canvas.holes.map((hole) => hole.length),
    settings.steps,
    canvas.relatedTokens,
  );
  const budget = settings.latencyBudgetMs ?? 0;
  if (budget > 0 && !hooks.now) throw new OptionsError(['a latency budget needs a clock (InfillHooks.now)']);
  const deadline = budget > 0 ? (hooks.startedAt ?? hooks.now!()) + budget : undefined;
  const onStep = hooks.onStep;
  const cache = cacheOf(codec, facts, request, canvas, settings);
  const sample: SampleFn = typeof model === 'function' ? (c, config, h) => sampleCanvas(model, c, config, h) : model.sample;
  const sampled = await sample(
    canvas,
    {
      steps: settings.steps,
      strategy: settings.strategy,
      confidenceThreshold: settings.confidenceThreshold,
      topP: settings.topP,
      temperatures: rowTemperatures(settings),
      seed: settings.seed,
      vocabSize: facts.vocabSize,
      eosId: facts.eosId,
      eosFill: settings.eosFill ?? true,
      eosAfterCode: settings.eosAfterCode ?? true,
      bannedIds: bannedTokenIds(facts),
      firstTokens: canvas.healing,
      ...(deadline !== undefined ? { deadline } : {}),
      ...(cache ? { cache } : {}),
    },
    {
      signal: hooks.signal,
      now: hooks.now,
      onStep: onStep && ((progress) => onStep(traces.build(0, progress.commits[0], progress.step + 1))),
    },
  );

  const candidates: Candidate[] = [];
  const texts = sampled.rows.map((ids) =>
    canvas.holes.map((hole, h) => {
      const tokens = holeTokensToText(ids.subarray(hole.start, hole.start + hole.length), codec, facts);
      // The text goes in at the cursor: a healed hole's text starts with the partial that is already there.
      const text = afterPartial(tokens.text, healed[h]);
      return { ...tokens, text: finishHoleText(text, request.segments[h], request.segments[h + 1]) };
    }),
  );
  // Each row's first hole, undefined where the row came out blank (it is dropped below): what agreement compares.
  const firstHoles = texts.map((holes) => (holes.every((hole) => hole.text === '') ? undefined : holes[0]?.text));
  sampled.rows.forEach((ids, row) => {
    const holes = texts[row];
    if (holes.every((hole) => hole.text === '')) return;
    const firstEos = canvas.holes.map((hole) => {
      const at = ids.subarray(hole.start, hole.start + hole.length).indexOf(facts.eosId);
      return at === -1 ? hole.length : at;
    });
    const stats = likelihoodOf(sampled.commits[row], firstEos);
    const unscored = {
      holes: holes.map((hole) => hole.text),
      tokenIds: holes.map((hole) => hole.tokenIds),
      ...stats,
      ...spanStats(spanTokens(sampled.commits[row], firstEos[0] ?? 0, codec, facts.eosId)),
      agreement: firstLineAgreement(holes[0]?.text ?? '', firstHoles.filter((_, other) => other !== row)),
      row,
      canvas: ids,
    };
    const score = hooks.score ? hooks.score(unscored) : rerankScore({ logProb: stats.logProb, tokens: stats.scoredTokens });
    candidates.push({ ...unscored, score });
  });
  const ranked = mergeNearDuplicates(
    rankBy(candidates, (candidate) => candidate.score),
    (candidate) => candidate.holes,
  );
  const tracedRow = ranked.length > 0 ? ranked[0].row : 0;
  return {
    candidates: ranked,
    trace: traces.build(tracedRow, sampled.commits[tracedRow], sampled.modelCalls, sampled.cutByDeadline),
    modelCalls: sampled.modelCalls,
    cutByDeadline: sampled.cutByDeadline,
    modelMs: sampled.modelMs,
    totalMs: performance.now() - started,
    canvasTokens: canvas.ids.length,
    relatedTokens: canvas.relatedTokens,
    holes: canvas.holes.map(({ start, length }) => ({ start, length })),
    healed,
  };
}

/**
 * Most characters of each text the cache n-gram model counts: the protocol's window before the cursor
 * (protocol/window.ts), so a request from the editor is never cut, while a caller handing in a huge document does not
 * make the tokenizer encode all of it.
 */
export const MAX_CACHE_CHARS = 24 * 1024;

/**
 * Most token ids of other texts (InfillRequest.cacheRelated) the cache counts, whatever the caller hands in: the
 * server's own budget is smaller (protocol/document-tokens.ts). Each cache build indexes them once per request.
 */
export const MAX_CACHE_RELATED_TOKENS = 32 * 1024;

/**
 * The cache n-gram model's input (sampler.ts rule 7) when the options turn it on: the tokens of the request's cache
 * segments (or its segments), which lie around the same holes.
 */
function cacheOf(
  codec: TextCodec,
  facts: ModelFacts,
  request: InfillRequest,
  canvas: Parameters<typeof cacheTokens>[3],
  settings: SamplerOptions,
): SamplerCache | undefined {
  const weight = settings.cacheNgramWeight ?? DEFAULT_SAMPLER_OPTIONS.cacheNgramWeight!;
  if (!(settings.cacheNgram ?? DEFAULT_SAMPLER_OPTIONS.cacheNgram) || weight === 0) return undefined;
  const given = request.cacheSegments ?? request.segments;
  if (given.length !== request.segments.length || given.some((text) => typeof text !== 'string')) {
    throw new OptionsError([`cacheSegments must be ${request.segments.length} strings laid out like the segments (got ${given.length})`]);
  }
  // Each text is cut to MAX_CACHE_CHARS at its end nearest the hole after it (the suffix: at its start).
  const last = given.length - 1;
  const texts = given.map((text, i) => (i === last ? text.slice(0, MAX_CACHE_CHARS) : text.slice(Math.max(0, text.length - MAX_CACHE_CHARS))));
  const own = cacheTokens(codec, facts, texts, canvas);
  return { tokens: withRelated(own, request.cacheRelated), order: settings.cacheNgramOrder ?? DEFAULT_SAMPLER_OPTIONS.cacheNgramOrder!, weight };
}

/**
 * The document's cache tokens followed by the other texts' (InfillRequest.cacheRelated), each ended by a separator,
 * at most MAX_CACHE_RELATED_TOKENS of theirs (a text past the cap is cut at its end). The cache turns special and
 * out-of-vocabulary ids into separators itself (ngram-cache.ts).
 */
export function withRelated(own: Int32Array, related: InfillRequest['cacheRelated']): Int32Array {
  if (related === undefined) return own;
  if (!Array.isArray(related) || related.some((ids) => !(ids instanceof Int32Array))) {
    throw new OptionsError(['cacheRelated must be a list of Int32Array token ids']);
  }
  let room = MAX_CACHE_RELATED_TOKENS;
  const kept: Int32Array[] = [];
  for (const ids of related) {
    if (room <= 0) break;
    if (ids.length === 0) continue;
    const part = ids.length > room ? ids.subarray(0, room) : ids;
    kept.push(part);
    room -= part.length;
  }
  if (kept.length === 0) return own;
  const theirs = joinTexts(kept);
  const out = new Int32Array(own.length + theirs.length);
  out.set(own);
  out.set(theirs, own.length);
  return out;
}

/**
 * Log-probability and mean confidence of the tokens the model chose that make up the text: in each hole the tokens
 * before its first end-of-span and that end-of-span itself (it decided the length). End-of-span fill is not a model
 * choice and is left out.
 */
function likelihoodOf(
  commits: readonly Commit[],
  firstEosPerHole: readonly number[],
): { logProb: number; scoredTokens: number; meanConfidence: number } {
  let logProb = 0;
  let confidence = 0;
  let scoredTokens = 0;
  for (const commit of commits) {
    if (commit.filled || commit.index > firstEosPerHole[commit.hole]) continue;
    logProb += commit.logProb;
    confidence += commit.confidence;
    scoredTokens++;
  }
  return { logProb, scoredTokens, meanConfidence: scoredTokens > 0 ? confidence / scoredTokens : 0 };
}

/** The first hole's numbers from its tokens: its first line's (the gate's) and each line's least probability. */
function spanStats(tokens: readonly SpanToken[]): Pick<Candidate, 'firstLine' | 'lineConfidence'> {
  return { firstLine: firstLineStats(tokens), lineConfidence: lineMinConfidences(tokens) };
}

/**
 * The first hole's tokens in span order as the gate reads them (gate-features.ts), up to and including its first
 * end-of-span: the model's own commits only (end-of-span fill and token healing's fallback are the sampler's).
 */
function spanTokens(commits: readonly Commit[], firstEos: number, codec: TextCodec, eosId: number): SpanToken[] {
  const byIndex: (Commit | undefined)[] = [];
  for (const commit of commits) {
    if (commit.hole === 0 && !commit.filled && commit.index <= firstEos) byIndex[commit.index] = commit;
  }
  const tokens: SpanToken[] = [];
  for (const commit of byIndex) {
    if (commit === undefined) continue;
    const text = commit.tokenId === eosId ? undefined : codec.decode([commit.tokenId]);
    tokens.push({ text, confidence: commit.confidence, logProb: commit.logProb });
    if (text === undefined) break;
  }
  return tokens;
}
