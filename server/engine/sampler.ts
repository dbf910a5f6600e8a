/**
 * The denoising sampler: a pure async function of (model function, canvas, configuration, seed). All masks of all
 * holes start masked; each step makes exactly one model call for the whole batch, asks for logits only at the
 * positions still masked, and commits some of them. A committed token is never re-masked.
 *
 * Candidates are the batch dimension: every row starts from the same canvas and differs only by its random stream
 * (and, possibly, its temperature), so N candidates cost at most N rows of one call per step, not N generations. A
 * call carries each distinct unfinished canvas once: the first step of N candidates is a single row, and rows that
 * agree (greedy rows, or rows that drew the same tokens) or have finished cost nothing.
 *
 * Per row and step:
 *   1. choose a token at every masked position and score it by the strategy (choose-token.ts);
 *   2. commit the `tokensToCommit` best-scored positions (schedule.ts); with a confidence threshold, commit every
 *      position whose probability is above it as well (Fast-dLLM), so a step never commits fewer than scheduled;
 *   3. with `eosFill`, once a row commits end-of-span at position j of a hole, the still-masked positions after j in
 *      that hole are committed as end-of-span too: the completion is trimmed at the first end-of-span anyway, so
 *      predicting them would only spend steps (and the model was trained to pad spans with end-of-span).
 *   4. with `eosAfterCode`, the first position of a hole never chooses end-of-span, and a position that chooses
 *      end-of-span waits until its left neighbour in the hole has been committed in an earlier step: it keeps its
 *      place in the ranking (it uses up one of the step's scheduled commits, so unsure positions are not committed
 *      early in its stead) but is not committed; each step still commits at least one position, and the last step
 *      commits everything. The span's end then grows from code already written and a hole is never empty. Without
 *      it, confidence order commits the surest end-of-span tokens at the far right first and walks left until the
 *      whole span is end-of-span (DiffuCoder's "entropy sink"), which a weakly trained model does on most requests.
 *      The call count does not change: waiting positions are resolved by later steps.
 *   5. with `firstTokens` (token healing, healing.ts), in the first step a healed hole's first positions are decided
 *      left to right from the same model call, besides the step's scheduled commits and whatever their scores: each
 *      takes the best (or sampled) token of its list that is compatible with what is left of the partial, until the
 *      partial is spelled out. The user already typed the start of that text, the surest thing in the span, so every
 *      other position is decided knowing the whole word. When a position of the chain has no compatible token in its
 *      list, the hole's first positions take the rule's fallback tokens (the removed ones), committed by the sampler
 *      (like end-of-span fill: marked `filled`, not scored).
 *   6. with a `deadline` (the latency budget), once the model has answered a step, the step becomes the last one when
 *      another would end past the deadline, taking as long as the longest step since the first (the first also
 *      encodes the context, so after it the generation stops only when the deadline has passed: one step alone
 *      writes poor code): it commits every remaining mask at once from the answer in hand, as the scheduled last step
 *      does, with no further model call. A slow machine gets a rougher
 *      completion on time rather than a better one late. The clock is the hooks' `now`, never one the sampler reads
 *      itself, so a generation stays a function of its inputs.
 *   7. with a `cache` (the cache n-gram model of the document's tokens, ngram-cache.ts), a masked position whose left
 *      neighbour is known (context text, a token of its hole committed in an earlier step, or the link before it in a
 *      rule-5 chain) chooses from the model's list mixed with the cache's prediction after the known tokens that run
 *      up to it: p = (1 - λ) p_model + λ p_cache, λ = the cache's weight times its confidence (its counts). The
 *      mixture decides the token and its score, so a position the document's text predicts is committed early and
 *      its right neighbour then has a known left neighbour too: a repeated run is written left to right. Such a
 *      commit's confidence and log-probability are the mixture's. The cache draws no random numbers.
 *
 * Model calls: exactly min(steps, masks) when neither the threshold nor the end-of-span fill commits extra tokens;
 * otherwise at most that, fewer only because every mask got resolved early or the deadline cut the steps. Cancellation is checked before and after
 * every model call, i.e. between steps.
 */
import { emptyChoice, TokenChooser } from './choose-token';
import { AbortError, ModelOutputError, OptionsError } from './errors';
import { compatible, type FirstTokenRule } from './healing';
import { CACHE_ENTRIES, type CacheSettings, emptyMixedList, emptyPrediction, ListMixer, MAX_CACHE_ORDER, MIN_CACHE_ORDER, type MixedList, NgramCache } from './ngram-cache';
import { createRng, type Rng } from './rng';
import { tokensToCommit } from './schedule';
import type { HoleLayout, KBest, ModelFn, UnmaskStrategy } from './types';

export interface SamplerConfig {
  readonly steps: number;
  readonly strategy: UnmaskStrategy;
  /** Commit every token whose probability is above this as well; 0 turns it off. */
  readonly confidenceThreshold: number;
  readonly topP: number;
  /** One temperature per batch row; its length is the batch size. */
  readonly temperatures: readonly number[];
  /** Row r draws from stream r of this seed. */
  readonly seed: number;
  readonly vocabSize: number;
  readonly eosId: number;
  readonly eosFill: boolean;
  /** End-of-span only right after a committed token of its hole, never first (rule 4 above). */
  readonly eosAfterCode: boolean;
  /** Ids never to commit (mask, padding, language tags, ...). */
  readonly bannedIds: readonly number[];
  /** Per hole, the token-healing constraint on its first position (rule 5 above); missing or undefined: none. */
  readonly firstTokens?: readonly (FirstTokenRule | undefined)[];
  /** When the generation must be done, in ms on the clock of `SamplerHooks.now` (rule 6); undefined: no deadline. */
  readonly deadline?: number;
  /** The cache n-gram model mixed in where left neighbours are known (rule 7); undefined or weight 0: none. */
  readonly cache?: SamplerCache;
}

/** What the sampler's cache n-gram model counts, and how it mixes in (ngram-cache.ts). Plain data: it crosses to the worker. */
export interface SamplerCache extends CacheSettings {
  /** The token ids it counts (the document around the holes, other texts), CACHE_SEPARATOR (-1) between texts. */
  readonly tokens: Int32Array;
}

/** The part of a canvas the sampler needs: one row of ids and where the holes are. */
export interface SamplerCanvas {
  readonly ids: Int32Array;
  readonly holes: readonly HoleLayout[];
}

/** One committed token of one row. */
export interface Commit {
  /** Index in the canvas. */
  readonly position: number;
  readonly hole: number;
  /** Index within the hole. */
  readonly index: number;
  /** 0-based step (= model call) that committed it. */
  readonly step: number;
  readonly tokenId: number;
  /** Probability of the token under the sampling distribution when it was committed (with rule 7: the mixture's). */
  readonly confidence: number;
  /** Its log-probability under the model's untempered distribution (rule 7: the mixture's); 0 for end-of-span fill. */
  readonly logProb: number;
  /**
   * True when the sampler committed it rather than the model: end-of-span fill (its confidence is the triggering
   * token's) or token healing's fallback (confidence 0).
   */
  readonly filled: boolean;
}

export interface SamplerProgress {
  /** The 0-based step just finished. */
  readonly step: number;
  /** Per row, every commit so far in commit order (within a step left to right). Live arrays: copy to keep. */
  readonly commits: readonly (readonly Commit[])[];
}

export interface SamplerHooks {
  readonly signal?: AbortSignal;
  readonly onStep?: (progress: SamplerProgress) => void;
  /** The clock `SamplerConfig.deadline` is on, in ms; needed with a deadline. */
  readonly now?: () => number;
}

export interface SamplerResult {
  /** Per row, the final canvas with every mask resolved. */
  readonly rows: readonly Int32Array[];
  /** Per row, every commit in commit order (within a step left to right). */
  readonly commits: readonly (readonly Commit[])[];
  readonly modelCalls: number;
  /** Wall time spent awaiting the model function. */
  readonly modelMs: number;
  /** True when the deadline made a step before the planned last one commit every remaining mask (rule 6). */
  readonly cutByDeadline: boolean;
}

/**
 * The sampler as a service: sampleCanvas with the model bound in. The runtime offers one that runs the whole loop next
 * to the session, in the inference worker, so a step costs no message round trip between threads.
 */
export type SampleFn = (canvas: SamplerCanvas, config: SamplerConfig, hooks?: SamplerHooks) => Promise<SamplerResult>;

const NOT_SELECTED = 0;
const BY_MODEL = 1;
const BY_EOS_FILL = 2;
const WAITING = 3;
const BY_RULE = 4;

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError();
}

/** Checks the model's answer against the call it answers; a broken model function gets a clear error. */
function checkKBest(answer: KBest, batch: number, numPositions: number): void {
  const slots = batch * numPositions;
  const ok =
    answer !== null &&
    typeof answer === 'object' &&
    Number.isInteger(answer.k) &&
    answer.k >= 1 &&
    answer.logits instanceof Float32Array &&
    answer.ids instanceof Int32Array &&
    answer.logZ instanceof Float32Array &&
    Number.isInteger(answer.allowed) &&
    answer.allowed >= 1 &&
    answer.logits.length === slots * answer.k &&
    answer.ids.length === slots * answer.k &&
    answer.logZ.length === slots;
  if (!ok) {
    const got =
      answer && typeof answer === 'object'
        ? `k ${answer.k}, logits ${answer.logits?.length}, ids ${answer.ids?.length}, logZ ${answer.logZ?.length}`
        : String(answer);
    throw new ModelOutputError(
      `The model returned ${got}; expected K-best lists for batch ${batch} x positions ${numPositions}: ` +
        `float32 logits and int32 ids of ${slots} x k values and float32 logZ of ${slots}.`,
    );
  }
}

/**
 * The rows a step's model call needs: each unfinished row whose canvas no earlier row has, in row order. Fills
 * `callRow` with the index in that list that answers each row (-1 for a finished row). Equal canvases have equal masks,
 * so one row of the call serves all of them.
 */
function distinctUnfinishedRows(ids: Int32Array, seqLen: number, maskedCount: Int32Array, callRow: Int32Array): number[] {
  const rows: number[] = [];
  for (let r = 0; r < maskedCount.length; r++) {
    callRow[r] = -1;
    if (maskedCount[r] === 0) continue;
    const canvas = ids.subarray(r * seqLen, (r + 1) * seqLen);
    const same = rows.findIndex((q) => maskedCount[q] === maskedCount[r] && sameIds(ids.subarray(q * seqLen, (q + 1) * seqLen), canvas));
    if (same >= 0) callRow[r] = same;
    else callRow[r] = rows.push(r) - 1;
  }
  return rows;
}

function sameIds(a: Int32Array, b: Int32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function configProblems(canvas: SamplerCanvas, config: SamplerConfig): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(config.steps) || config.steps < 1) problems.push(`steps must be a positive integer (got ${config.steps})`);
  if (config.temperatures.length < 1) problems.push('the batch needs at least one row (one temperature)');
  if (config.temperatures.some((t) => !(t >= 0) || !Number.isFinite(t))) problems.push('temperatures must be finite and not negative');
  if (!(config.topP > 0 && config.topP <= 1)) problems.push(`topP must be above 0 and at most 1 (got ${config.topP})`);
  let end = 0;
  for (const hole of canvas.holes) {
    if (hole.start < end || hole.length < 1 || hole.start + hole.length > canvas.ids.length) {
      problems.push(`hole at ${hole.start} of length ${hole.length} does not fit a canvas of ${canvas.ids.length} tokens in order`);
    }
    end = hole.start + hole.length;
  }
  const cache = config.cache;
  if (cache !== undefined) {
    if (!(cache.tokens instanceof Int32Array)) problems.push('the cache\'s tokens must be an Int32Array');
    if (!Number.isInteger(cache.order) || cache.order < MIN_CACHE_ORDER || cache.order > MAX_CACHE_ORDER) {
      problems.push(`the cache's order must be an integer from ${MIN_CACHE_ORDER} to ${MAX_CACHE_ORDER} (got ${cache.order})`);
    }
    if (!(cache.weight >= 0 && cache.weight <= 1)) problems.push(`the cache's weight must be from 0 to 1 (got ${cache.weight})`);
  }
  const rules = config.firstTokens ?? [];
  if (rules.length > canvas.holes.length) problems.push(`firstTokens has ${rules.length} rules for ${canvas.holes.length} holes`);
  const committable = (id: number): boolean =>
    Number.isInteger(id) && id >= 0 && id < config.vocabSize && id !== config.eosId && !config.bannedIds.includes(id);
  rules.forEach((rule, h) => {
    if (!rule) return;
    if (rule.partial === '' || rule.ids.length !== rule.texts.length || !rule.ids.every(committable)) {
      problems.push(`hole ${h}: a first-token rule needs a partial text and committable ids with their texts`);
    }
    if (rule.fallback.length < 1 || rule.fallback.length > (canvas.holes[h]?.length ?? 0) || !rule.fallback.every(committable)) {
      problems.push(`hole ${h}: the first-token fallback must be 1 to ${canvas.holes[h]?.length ?? 0} tokens the sampler may commit`);
    }
  });
  return problems;
}

export async function sampleCanvas(
  model: ModelFn,
  canvas: SamplerCanvas,
  config: SamplerConfig,
  hooks: SamplerHooks = {},
): Promise<SamplerResult> {
  const problems = configProblems(canvas, config);
  if (config.deadline !== undefined && (!Number.isFinite(config.deadline) || !hooks.now)) {
    problems.push('a deadline must be a finite time on the clock the hooks pass as `now`');
  }
  if (problems.length > 0) throw new OptionsError(problems);
  const { steps, strategy, topP, temperatures, vocabSize: V, eosId } = config;
  const batch = temperatures.length;
  const seqLen = canvas.ids.length;

  // Which hole each canvas position belongs to (-1 for text), and each hole's first position.
  const holeOf = new Int32Array(seqLen).fill(-1);
  canvas.holes.forEach((hole, h) => holeOf.fill(h, hole.start, hole.start + hole.length));
  const holeStart = canvas.holes.map((hole) => hole.start);
  const capacity = canvas.holes.reduce((sum, hole) => sum + hole.length, 0);
  // The span layout every model call carries: a cached-context model runs only these positions per step.
  const layout = canvas.holes.map(({ start, length }) => ({ start, length }));
  // Rule 5: per hole, its rule and the text of each id that may take part in its chain.
  const firstRules = canvas.holes.map((_, h) => {
    const rule = config.firstTokens?.[h];
    return rule && { ...rule, textOf: new Map(rule.ids.map((id, i) => [id, rule.texts[i]])) };
  });
  // The ids compatible with what is left of a partial, as a mask over the vocabulary (rebuilt per chain position).
  const chainMask = new Uint8Array(V);
  // Rule 7: the cache over every id the sampler may commit, its query's context (newest first) and the mixed list.
  const banned = new Uint8Array(V);
  for (const id of config.bannedIds) if (id >= 0 && id < V) banned[id] = 1;
  const usable = (id: number): boolean => id >= 0 && id < V && id !== eosId && banned[id] === 0;
  const cacheWeight = config.cache?.weight ?? 0;
  const cache = cacheWeight > 0 ? new NgramCache(config.cache!.tokens, V, config.cache!.order, usable) : undefined;
  const prediction = emptyPrediction();
  const mixer = new ListMixer();
  const context = new Int32Array(MAX_CACHE_ORDER);
  let mixed: MixedList | undefined;

  // Per row: its still-masked positions in ascending order, its random stream and its commits.
  const ids = new Int32Array(batch * seqLen);
  const masked: Int32Array[] = [];
  const maskedCount = new Int32Array(batch);
  // isMasked[r * seqLen + p]: position p of row r still waits for a token (read by rule 4).
  const isMasked = new Uint8Array(batch * seqLen);
  const rngs: Rng[] = [];
  const commits: Commit[][] = [];
  for (let r = 0; r < batch; r++) {
    ids.set(canvas.ids, r * seqLen);
    const positions = new Int32Array(capacity);
    let m = 0;
    for (const hole of canvas.holes) {
      for (let p = hole.start; p < hole.start + hole.length; p++) positions[m++] = p;
      isMasked.fill(1, r * seqLen + hole.start, r * seqLen + hole.start + hole.length);
    }
    masked.push(positions);
    maskedCount[r] = m;
    rngs.push(createRng(config.seed, r));
    commits.push([]);
  }

  // Scratch reused by every row and step (the chooser's lists grow to the model's K on the first call).
  let chooser: TokenChooser | undefined;
  const choice = emptyChoice();
  const tokens = new Int32Array(capacity);
  const probabilities = new Float64Array(capacity);
  const scores = new Float64Array(capacity);
  const logProbs = new Float64Array(capacity);
  const selected = new Uint8Array(capacity);
  // waits[j]: rule 4 holds masked position j back this step (end-of-span whose left neighbour is still masked).
  const waits = new Uint8Array(capacity);
  // pinned[j]: rule 5 commits masked position j this step; fellBack[j]: with its hole's fallback token.
  const pinned = new Uint8Array(capacity);
  const fellBack = new Uint8Array(capacity);
  const order = new Int32Array(capacity);
  const byScoreDescending = (a: number, b: number): number => scores[b] - scores[a] || a - b;

  let modelCalls = 0;
  let modelMs = 0;
  // Rule 6: how long a step may take (on the hooks' clock), and whether the deadline made a step the last.
  let stepEstimateMs = 0;
  let cutByDeadline = false;
  // callRow[r]: which row of this step's model call answers row r (-1 once r is finished).
  const callRow = new Int32Array(batch);
  for (let step = 0; step < steps; step++) {
    const callRows = distinctUnfinishedRows(ids, seqLen, maskedCount, callRow);
    if (callRows.length === 0) break;
    throwIfAborted(hooks.signal);
    const stepStarted = config.deadline !== undefined ? hooks.now!() : 0;
    let numPositions = 0;
    for (const r of callRows) numPositions = Math.max(numPositions, maskedCount[r]);

    // The call carries each distinct unfinished canvas once: the candidates of a request all start from one canvas,
    // so the first step is one row however many there are, and a finished row costs nothing. Rows with fewer masked
    // positions repeat their last one; the answers at those padding slots are ignored. Fresh arrays each call: the
    // model function may keep them or transfer them to a worker.
    const callBatch = callRows.length;
    const callIds = new Int32Array(callBatch * seqLen);
    const positions = new Int32Array(callBatch * numPositions);
    callRows.forEach((r, c) => {
      const m = maskedCount[r];
      callIds.set(ids.subarray(r * seqLen, (r + 1) * seqLen), c * seqLen);
      const row = positions.subarray(c * numPositions, (c + 1) * numPositions);
      row.set(masked[r].subarray(0, m));
      row.fill(masked[r][m - 1], m);
    });
    const started = performance.now();
    const kbest = await model({ ids: callIds, batch: callBatch, seqLen, positions, numPositions, holes: layout });
    modelMs += performance.now() - started;
    modelCalls++;
    throwIfAborted(hooks.signal);
    checkKBest(kbest, callBatch, numPositions);
    let last = step === steps - 1;
    if (!last && config.deadline !== undefined) {
      // Rule 6, decided once the model has answered. The first step also encodes the context, so it says little about
      // the next one and does not count; from the second on, the longest step is the estimate, because on a busy CPU
      // one step in a few takes several times the others.
      const answered = hooks.now!();
      if (step > 0) stepEstimateMs = Math.max(stepEstimateMs, answered - stepStarted);
      last = cutByDeadline = answered + stepEstimateMs >= config.deadline;
    }
    const listLength = kbest.k + (cache ? CACHE_ENTRIES : 0);
    if (!chooser || chooser.maxK < listLength) chooser = new TokenChooser(V, config.bannedIds, eosId, listLength);
    if (cache && (!mixed || mixed.k < listLength)) mixed = emptyMixedList(kbest.k);
    for (let r = 0; r < batch; r++) {
      const m = maskedCount[r];
      if (m === 0) continue;
      const rowMasked = masked[r];
      for (let j = 0; j < m; ) {
        const position = rowMasked[j];
        const hole = holeOf[position];
        const first = position === holeStart[hole];
        const rule = first ? firstRules[hole] : undefined;
        if (rule) {
          j = chooseChain(kbest, callRow[r] * numPositions, r, j, m, rule);
          continue;
        }
        const banEos = config.eosAfterCode && first;
        const slot = callRow[r] * numPositions + j;
        if (mixCache(kbest, slot, r, position)) chooser.choose(mixed!, 0, banEos, temperatures[r], topP, strategy, rngs[r], choice, r, position);
        else chooser.choose(kbest, slot, banEos, temperatures[r], topP, strategy, rngs[r], choice, r, position);
        tokens[j] = choice.token;
        probabilities[j] = choice.probability;
        scores[j] = choice.score;
        logProbs[j] = choice.logProb;
        pinned[j] = 0;
        waits[j] = config.eosAfterCode && tokens[j] === eosId && isMasked[r * seqLen + position - 1] === 1 ? 1 : 0;
        j++;
      }
      selectPositions(m, last ? m : tokensToCommit(m, step, steps), config.confidenceThreshold);
      if (config.eosFill) markEosFill(rowMasked, m);

      // Commit left to right, and keep the still-masked positions in ascending order.
      const rowOffset = r * seqLen;
      let kept = 0;
      let fillConfidence = 0;
      for (let j = 0; j < m; j++) {
        const position = rowMasked[j];
        const how = selected[j];
        if (how === NOT_SELECTED) {
          rowMasked[kept++] = position;
          continue;
        }
        const hole = holeOf[position];
        const byModel = how === BY_MODEL || (how === BY_RULE && fellBack[j] === 0);
        const tokenId = how === BY_EOS_FILL ? eosId : tokens[j];
        if (byModel && tokenId === eosId) fillConfidence = probabilities[j];
        ids[rowOffset + position] = tokenId;
        isMasked[rowOffset + position] = 0;
        commits[r].push({
          position,
          hole,
          index: position - holeStart[hole],
          step,
          tokenId,
          confidence: byModel ? probabilities[j] : how === BY_RULE ? 0 : fillConfidence,
          logProb: byModel ? logProbs[j] : 0,
          filled: !byModel,
        });
      }
      maskedCount[r] = kept;
    }
    hooks.onStep?.({ step, commits });
    if (last) break;
  }
  if (maskedCount.some((m) => m > 0)) {
    throw new Error('The sampler finished with masks left; the schedule must resolve every mask by the last step.');
  }
  const rows = Array.from({ length: batch }, (_, r) => ids.slice(r * seqLen, (r + 1) * seqLen));
  return { rows, commits, modelCalls, modelMs, cutByDeadline };

  /**
   * Rule 5 for row r, whose K-best lists start at slot `slots` of `kbest`: the chain of a healed hole whose first
   * position is masked slot j (so is the rest of the hole: the chain runs in the first step). Fills the slots it
   * decides and returns the slot after them.
   */
  function chooseChain(kbest: KBest, slots: number, r: number, j: number, m: number, rule: NonNullable<(typeof firstRules)[number]>): number {
    const rowMasked = masked[r];
    let remaining = rule.partial;
    let k = j;
    while (remaining !== '') {
      if (k >= m || rowMasked[k] !== rowMasked[j] + (k - j) || holeOf[rowMasked[k]] !== holeOf[rowMasked[j]]) break;
      chainMask.fill(0);
      for (const [id, text] of rule.textOf) if (compatible(text, remaining) !== undefined) chainMask[id] = 1;
      const mix = mixCache(kbest, slots + k, r, rowMasked[k], rowMasked[j], j);
      const list = mix ? mixed! : kbest;
      if (!chooser!.choose(list, mix ? 0 : slots + k, config.eosAfterCode, temperatures[r], topP, strategy, rngs[r], choice, r, rowMasked[k], chainMask)) break;
      tokens[k] = choice.token;
      probabilities[k] = choice.probability;
      scores[k] = choice.score;
      logProbs[k] = choice.logProb;
      pinned[k] = 1;
      fellBack[k] = 0;
      waits[k] = 0;
      remaining = compatible(rule.textOf.get(choice.token)!, remaining)!;
      k++;
    }
    if (remaining === '') return k;
    // No compatible token at some link: the removed tokens go back, by the sampler (validated to fit the hole).
    rule.fallback.forEach((id, i) => {
      tokens[j + i] = id;
      probabilities[j + i] = 0;
      scores[j + i] = -Infinity;
      logProbs[j + i] = 0;
      pinned[j + i] = 1;
      fellBack[j + i] = 1;
      waits[j + i] = 0;
    });
    return j + rule.fallback.length;
  }

  /**
   * Rule 7 for row r at `position` (K-best slot `slot`): when its left neighbour is known and the cache predicts
   * something after the known tokens that run up to it, writes the mixture into `mixed` and returns true. In a rule-5
   * chain starting at canvas position `chainStart` (its tokens from slot index `chainSlot` on, chosen this step), the
   * chain's earlier links count as known.
   */
  function mixCache(kbest: KBest, slot: number, r: number, position: number, chainStart = -1, chainSlot = 0): boolean {
    if (!cache) return false;
    const offset = r * seqLen;
    let length = 0;
    for (let q = position - 1; q >= 0 && length < cache.order - 1; q--) {
      let id: number;
      if (chainStart >= 0 && q >= chainStart) id = tokens[chainSlot + q - chainStart];
      else if (isMasked[offset + q] === 1) break;
      else id = ids[offset + q];
      if (!usable(id)) break;
      context[length++] = id;
    }
    if (length === 0 || !cache.predict(context, length, prediction)) return false;
    return mixer.mix(kbest, slot, prediction, cacheWeight * prediction.confidence, mixed!);
  }

  /** Marks the positions the model commits this step: everything above the threshold, then the best-scored. */
  function selectPositions(m: number, scheduled: number, threshold: number): void {
    selected.fill(NOT_SELECTED, 0, m);
    // Rule 5: a healed hole's first position goes in now, whatever the ranking, and uses none of its slots.
    for (let j = 0; j < m; j++) if (pinned[j]) selected[j] = BY_RULE;
    // The last step (scheduled = every mask) commits everything; before it, waiting positions are held back.
    if (scheduled < m) for (let j = 0; j < m; j++) if (waits[j] && !pinned[j]) selected[j] = WAITING;
    let count = 0;
    let committed = 0;
    if (threshold > 0) {
      for (let j = 0; j < m; j++) {
        if (selected[j] === NOT_SELECTED && probabilities[j] > threshold) {
          selected[j] = BY_MODEL;
          count++;
          committed++;
        }
      }
    }
    for (let j = 0; j < m; j++) order[j] = j;
    const ranked = count < scheduled ? order.subarray(0, m).sort(byScoreDescending) : order.subarray(0, 0);
    let firstFree = -1;
    for (let k = 0; k < ranked.length; k++) {
      const j = ranked[k];
      if (selected[j] === WAITING) {
        if (count < scheduled) count++; // Uses its slot without being committed.
      } else if (selected[j] === NOT_SELECTED) {
        if (firstFree < 0) firstFree = j;
        if (count < scheduled) {
          selected[j] = BY_MODEL;
          count++;
          committed++;
        }
      }
    }
    if (committed === 0 && firstFree >= 0) selected[firstFree] = BY_MODEL;
    for (let j = 0; j < m; j++) if (selected[j] === WAITING) selected[j] = NOT_SELECTED;
  }

  /** Marks the still-masked positions after an end-of-span committed this step, within the same hole. */
  function markEosFill(rowMasked: Int32Array, m: number): void {
    let fillHole = -1;
    for (let j = 0; j < m; j++) {
      const hole = holeOf[rowMasked[j]];
      if (selected[j] === BY_MODEL) {
        if (tokens[j] === eosId && fillHole !== hole) fillHole = hole;
      } else if (hole === fillHole && selected[j] === NOT_SELECTED) {
        selected[j] = BY_EOS_FILL;
      }
    }
  }
}
