/**
 * Plain data shared by the engine, the runtime and the protocol layer. The engine never does I/O: the model is a
 * function handed to it, and everything it returns is data that can be logged, serialised or replayed.
 */

/** Facts about a model that the engine needs; the runtime reads them from ONNX metadata and validates them. */
export interface ModelFacts {
  readonly vocabSize: number;
  readonly maxSeqLen: number;
  /** Id that marks a position still to be filled. */
  readonly maskId: number;
  /** End-of-span id: fills the unused tail of a span; the completion is trimmed at the first one. */
  readonly eosId: number;
  readonly padId: number;
  readonly fileSepId: number;
  /** Language tag ids by VS Code language id ("python", "typescript", ...); "other" is the fallback. */
  readonly langIds: Readonly<Record<string, number>>;
  /** Span lengths the model was trained to fill; a requested span is rounded up to one of them. */
  readonly spanBuckets: readonly number[];
  /**
   * How the model reads snippets of other files before the file's text (`unmask.related_context`,
   * related-snippets.ts); absent for a model trained without them, which then never gets any.
   */
  readonly relatedContext?: RelatedContext;
}

/** A model's snippet layout: `[lang] [FILE] chunk ... [FILE] chunk [FILE] prefix ...` (models/README.md). */
export interface RelatedContext {
  readonly layout: 'file_sep';
  /** The most canvas tokens (chunks and [FILE] tokens together) the model was trained with. */
  readonly maxTokens: number;
}

/** Where one hole (a run of span positions) lies in a canvas. */
export interface HoleLayout {
  readonly start: number;
  readonly length: number;
}

/**
 * One forward pass of the denoiser. `ids` is row-major [batch, seqLen]; `positions` is [batch, numPositions]
 * (indices into seqLen). The answer is the model's K-best lists at those positions (KBest).
 *
 * `holes` is the canvas's span layout, the same for every row, in canvas order: every position inside a hole is a
 * span position (masked or already committed), everything else is context. A full-attention model ignores it; a
 * cached-context model (models/README.md) needs it to split the canvas, and every requested position lies in a hole.
 */
export interface ModelInput {
  readonly ids: Int32Array;
  readonly batch: number;
  readonly seqLen: number;
  readonly positions: Int32Array;
  readonly numPositions: number;
  readonly holes: readonly HoleLayout[];
}

/**
 * What a model call answers for each requested position (models/README.md, "K-best head"): the K likeliest tokens
 * the sampler may commit, best first, and the normaliser of the model's distribution. The sampler never needs more:
 * greedy choice, confidence, margin, top-k/top-p sampling and log-probabilities all come from these.
 */
export interface KBest {
  /** Entries per position. */
  readonly k: number;
  /** [batch, numPositions, k] logits, descending within a position; -Infinity pads a list shorter than k. */
  readonly logits: Float32Array;
  /** [batch, numPositions, k] their token ids. */
  readonly ids: Int32Array;
  /** [batch, numPositions] logsumexp of the logits over the ids the lists rank. */
  readonly logZ: Float32Array;
  /** How many ids the lists rank: the vocabulary minus the ids the model's head bans. */
  readonly allowed: number;
}
export type ModelFn = (input: ModelInput) => Promise<KBest>;

/** Encodes and decodes text; injected so that the engine stays free of I/O and of any tokenizer library. */
export interface TextCodec {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /**
   * The text of every id decoded alone ("" for special ids), index = id. Token healing (healing.ts) needs it to find
   * the tokens that extend a partial word; without it the engine does not heal.
   */
  pieces?(): readonly string[];
}

/** How the sampler chooses which masked positions to commit first in a step (methods.md section 1). */
export type UnmaskStrategy = 'confidence' | 'margin' | 'entropy' | 'random';

/**
 * The knobs of one generation. Settings flow one way: package.json schema -> typed config -> a frozen object of
 * this type (see engine/options.ts for the defaults and the validation).
 */
export interface SamplerOptions {
  /** Denoising steps; also the most model calls a generation makes. */
  readonly steps: number;
  readonly strategy: UnmaskStrategy;
  /** Also commit every token whose probability is above this in a step (Fast-dLLM); 0 turns it off. */
  readonly confidenceThreshold: number;
  /** 0 picks the most probable token (greedy and deterministic). */
  readonly temperature: number;
  /** Nucleus mass when sampling (temperature above 0). */
  readonly topP: number;
  /** Alternatives generated together as one batch (rows of the same canvas). */
  readonly candidates: number;
  readonly seed: number;
  /** Tokens of text around the holes that the canvas may hold (the model's maximum length also caps it). */
  readonly contextTokens: number;
  /**
   * Once a row commits end-of-span in a hole, commit the still-masked rest of that hole as end-of-span at once
   * (saves steps; the text is cut there anyway). Default true.
   */
  readonly eosFill?: boolean;
  /**
   * End-of-span only right after a committed token of its hole, so a span's end grows from written code and a hole
   * is never empty (sampler.ts, rule 4). Default true.
   */
  readonly eosAfterCode?: boolean;
  /**
   * Token healing (healing.ts): when the text before a hole ends inside a token, back the canvas up over it and let
   * the hole's first token only extend it. Default true; it needs the codec's pieces.
   */
  readonly tokenHealing?: boolean;
  /**
   * Milliseconds from the start of the request by which the generation should be done; when another step would not
   * fit, the step in hand commits every remaining mask (sampler.ts, rule 6). 0 or undefined: no budget, every
   * step runs. Needs a clock (InfillHooks.now).
   */
  readonly latencyBudgetMs?: number;
  /**
   * Mix a cache n-gram model of the document's tokens into the sampler wherever a masked position's left neighbours
   * are known (ngram-cache.ts, sampler.ts rule 7). Default in options.ts.
   */
  readonly cacheNgram?: boolean;
  /** The most weight the cache gets in the mixture (λ = this times its confidence), 0 to 1. */
  readonly cacheNgramWeight?: number;
  /** Its longest n-gram: contexts of up to this minus one tokens. */
  readonly cacheNgramOrder?: number;
  /**
   * Canvas tokens that snippets of other files may take (InfillRequest.snippetSources, related-snippets.ts), out of
   * the text's budget; 0 turns them off. Used only with a model that declares the layout (ModelFacts.relatedContext),
   * whose own maximum also caps it. Default in options.ts.
   */
  readonly relatedContextTokens?: number;
}

/** One place to fill: a run of masks whose length is rounded up to one of the model's span buckets. */
export interface HoleRequest {
  readonly maxTokens: number;
}

/** What to fill: the text around and between the holes, in document order. */
export interface InfillRequest {
  /** segments.length === holes.length + 1: segments[0] is the prefix, the last one the suffix. */
  readonly segments: readonly string[];
  readonly holes: readonly HoleRequest[];
  /** VS Code language id ("python", "typescriptreact", ...); unknown ones use the "other" tag. */
  readonly languageId: string;
  /**
   * The text the cache n-gram model counts (SamplerOptions.cacheNgram), laid out like `segments` around the same
   * holes, each as long as the caller has it: the first ends where segments[0] ends and may start further back, the
   * last starts where the last segment starts and may run further on (the whole document rather than the model's
   * window). Default: the segments.
   */
  readonly cacheSegments?: readonly string[];
  /**
   * Token ids of other texts the cache n-gram model counts too (other open files of the language, encoded by the same
   * codec), each a text of its own: no context runs from one into the next or into the document's. Ids that are
   * special or outside the vocabulary count as separators. At most MAX_CACHE_RELATED_TOKENS of them in all are
   * counted (infill.ts); the caller chooses and bounds them (protocol/document-tokens.ts).
   */
  readonly cacheRelated?: readonly Int32Array[];
  /**
   * Token ids of other documents (other open files of the language, encoded by the same codec) that snippets may come
   * from (SamplerOptions.relatedContextTokens), most wanted first: the order breaks ties between equal chunks. Special
   * and out-of-vocabulary ids are dropped; a model without ModelFacts.relatedContext ignores them.
   */
  readonly snippetSources?: readonly Int32Array[];
}
