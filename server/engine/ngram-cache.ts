/**
 * The cache n-gram model (issue 14, "Context from the workspace", the route that needs no training): code repeats
 * itself locally, so the tokens of the document around the cursor say what comes after the last few tokens before a
 * position wherever those occurred there already. Hellendoorn and Devanbu (FSE 2017) found a nested cache n-gram
 * model beat the deep models of its day on code completion; this is its cache part over the model's own token ids.
 *
 * For a left context of committed ids it answers a sparse distribution over the next token, interpolated over every
 * context length that matches (1 to order - 1 tokens) with Witten-Bell weights, and a confidence: the mass its counts
 * claim, 1 - the product over the matched lengths m of the escape weight u_m / (c_m + u_m) (c_m occurrences of the
 * m-token context, u_m distinct tokens after them). A context seen once has confidence 1/2, one seen often with one
 * continuation nearly 1, one followed by anything stays low.
 *
 *   p_1(w) = c_1(w) / c_1
 *   p_m(w) = (c_m(w) + u_m p_{m-1}(w)) / (c_m + u_m)    for each longer length m whose context occurs (else p_{m-1})
 *
 * `ListMixer` mixes that into a position's K-best list (types.ts KBest): p = (1 - λ) p_model + λ p_cache, with λ =
 * weight * confidence; the sampler does it where a masked position's left neighbours are committed (sampler.ts,
 * rule 7). Nothing is counted at build time but an index by token; a query scans the occurrences of the context's
 * last token. Pure: no I/O.
 */
import type { KBest } from './types';

/** What separates two texts in the cache's token sequence: no context runs across it. */
export const CACHE_SEPARATOR = -1;

/** The texts' token ids one after another, each ended by CACHE_SEPARATOR: the layout the cache counts. */
export function joinTexts(texts: readonly ArrayLike<number>[]): Int32Array {
  const out = new Int32Array(texts.reduce((sum, ids) => sum + ids.length + 1, 0));
  let at = 0;
  for (const ids of texts) {
    out.set(ids, at);
    at += ids.length;
    out[at++] = CACHE_SEPARATOR;
  }
  return out;
}

/** The settings of the cache n-gram route (SamplerConfig.cache). */
export interface CacheSettings {
  /** Longest n-gram: contexts of 1 to order - 1 tokens. */
  readonly order: number;
  /** The most weight the cache gets in the mixture: λ = weight * confidence. 0 turns it off. */
  readonly weight: number;
}

/** Bounds of the settings (options.ts checks them). */
export const MIN_CACHE_ORDER = 2;
export const MAX_CACHE_ORDER = 10;

/** Most entries of a prediction: the cache's likeliest next tokens, added to a K-best list of the model. */
export const CACHE_ENTRIES = 8;

/** A sparse next-token distribution (its `size` likeliest tokens, best first) and how much the cache trusts it. */
export interface NgramPrediction {
  readonly ids: Int32Array;
  readonly probabilities: Float64Array;
  size: number;
  /** 1 - the product of the Witten-Bell escape weights of the matched lengths; 0 when nothing matched. */
  confidence: number;
  /** Longest context length that occurs in the cache (0: none). */
  matched: number;
}

export function emptyPrediction(entries = CACHE_ENTRIES): NgramPrediction {
  return { ids: new Int32Array(entries), probabilities: new Float64Array(entries), size: 0, confidence: 0, matched: 0 };
}

export class NgramCache {
  /** Per token t, where its occurrences with a next token start in `at` (start[t]..start[t + 1]). */
  private readonly start: Int32Array;
  /** Indices i into `tokens` (the ids counted, unusable ones made separators) with tokens[i + 1] a token, by tokens[i]. */
  private readonly at: Int32Array;
  /** Scratch of a query: the slot of each next token (-1: not seen), the slots' ids and per-length counts. */
  private readonly slotOf: Int32Array;
  private readonly slotIds: Int32Array;
  /** counts[(L - 1) * maxSlots + s]: occurrences whose context matches exactly L tokens, followed by slot s. */
  private readonly counts: Int32Array;
  private readonly p: Float64Array;
  /** Per context length m (index m), its occurrences and distinct next tokens. */
  private readonly totals: Float64Array;
  private readonly distinct: Float64Array;
  private readonly tokens: Int32Array;
  private readonly maxSlots: number;

  /**
   * `tokens`: the ids the cache counts, CACHE_SEPARATOR between texts; an id that is not `usable` (a special token,
   * end-of-span) counts as a separator, so it is never predicted and no context runs across it.
   */
  constructor(
    tokens: Int32Array,
    private readonly vocabSize: number,
    readonly order: number,
    usable: (id: number) => boolean = () => true,
  ) {
    const clean = new Int32Array(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i];
      clean[i] = Number.isInteger(id) && id >= 0 && id < vocabSize && usable(id) ? id : CACHE_SEPARATOR;
    }
    this.tokens = clean;
    this.start = new Int32Array(vocabSize + 1);
    for (let i = 0; i + 1 < clean.length; i++) if (clean[i] >= 0 && clean[i + 1] >= 0) this.start[clean[i] + 1]++;
    let most = 0;
    for (let t = 0; t < vocabSize; t++) {
      most = Math.max(most, this.start[t + 1]);
      this.start[t + 1] += this.start[t];
    }
    this.at = new Int32Array(this.start[vocabSize]);
    const fill = this.start.slice(0, vocabSize);
    for (let i = 0; i + 1 < clean.length; i++) if (clean[i] >= 0 && clean[i + 1] >= 0) this.at[fill[clean[i]]++] = i;
    this.maxSlots = Math.max(1, most);
    this.slotOf = new Int32Array(vocabSize).fill(-1);
    this.slotIds = new Int32Array(this.maxSlots);
    this.counts = new Int32Array(Math.max(1, order - 1) * this.maxSlots);
    this.totals = new Float64Array(order + 1);
    this.distinct = new Float64Array(order + 1);
    this.p = new Float64Array(this.maxSlots);
  }

  /** Tokens the cache holds (separators included). */
  get length(): number {
    return this.tokens.length;
  }

  /**
   * The next-token distribution after `context`, newest first (context[0] is the token right before the position),
   * of which the first `length` ids are known; ids past order - 1 are ignored. Writes into `out` (its size 0 and
   * confidence 0 when the last token never occurs with a next one) and returns out.size > 0.
   */
  predict(context: ArrayLike<number>, length: number, out: NgramPrediction): boolean {
    out.size = 0;
    out.confidence = 0;
    out.matched = 0;
    const n = Math.min(length, this.order - 1);
    const last = n > 0 ? context[0] : -1;
    if (!(last >= 0 && last < this.vocabSize)) return false;
    const { tokens, slotOf, slotIds, counts, maxSlots } = this;
    let slots = 0;
    let matched = 0;
    for (let k = this.start[last], end = this.start[last + 1]; k < end; k++) {
      const i = this.at[k];
      let L = 1;
      while (L < n && i - L >= 0 && tokens[i - L] === context[L]) L++;
      const next = tokens[i + 1];
      let s = slotOf[next];
      if (s < 0) {
        s = slots++;
        slotOf[next] = s;
        slotIds[s] = next;
        for (let m = 0; m < n; m++) counts[m * maxSlots + s] = 0;
      }
      counts[(L - 1) * maxSlots + s]++;
      if (L > matched) matched = L;
    }
    if (slots === 0) return false;
    // counts rows become c_m(w), the occurrences matching at least m tokens (summed from the longest length down);
    // then the interpolation runs up from length 1.
    const { p, totals, distinct } = this;
    for (let m = matched; m >= 1; m--) {
      const row = (m - 1) * maxSlots;
      let total = 0;
      let unique = 0;
      for (let s = 0; s < slots; s++) {
        if (m < matched) counts[row + s] += counts[row + maxSlots + s];
        total += counts[row + s];
        if (counts[row + s] > 0) unique++;
      }
      totals[m] = total;
      distinct[m] = unique;
    }
    let escape = distinct[1] / (totals[1] + distinct[1]);
    for (let s = 0; s < slots; s++) p[s] = counts[s] / totals[1];
    for (let m = 2; m <= matched; m++) {
      const row = (m - 1) * maxSlots;
      const denominator = totals[m] + distinct[m];
      for (let s = 0; s < slots; s++) p[s] = (counts[row + s] + distinct[m] * p[s]) / denominator;
      escape *= distinct[m] / denominator;
    }
    // The likeliest entries, best first (ties: the lower id), by selection: the list is short.
    const entries = Math.min(out.ids.length, slots);
    for (let e = 0; e < entries; e++) {
      let best = -1;
      for (let s = 0; s < slots; s++) {
        if (p[s] < 0) continue;
        if (best < 0 || p[s] > p[best] || (p[s] === p[best] && slotIds[s] < slotIds[best])) best = s;
      }
      out.ids[e] = slotIds[best];
      out.probabilities[e] = p[best];
      p[best] = -1;
    }
    for (let s = 0; s < slots; s++) slotOf[slotIds[s]] = -1;
    out.size = entries;
    out.confidence = 1 - escape;
    out.matched = matched;
    return true;
  }
}

/** A one-position K-best list the mixture is written into (KBest with one slot). */
export interface MixedList extends KBest {
  allowed: number;
}

export function emptyMixedList(k: number, entries = CACHE_ENTRIES): MixedList {
  return { k: k + entries, logits: new Float32Array(k + entries), ids: new Int32Array(k + entries), logZ: new Float32Array(1), allowed: 0 };
}

/**
 * Mixes a cache prediction into a position's K-best list: writes into `out` (one slot, k = the model's k +
 * CACHE_ENTRIES) the mixture (1 - lambda) p_model + lambda p_cache, best first, as logits whose normaliser is 0 (the
 * mixture sums to 1). A cache token outside the model's list gets the model's leftover mass spread evenly over the
 * ids the list leaves out (the even tail of choose-token.ts). Its scratch grows to the longest list once.
 */
export class ListMixer {
  private ids = new Int32Array(0);
  private p = new Float64Array(0);
  private order = new Int32Array(0);

  /**
   * Mixes K-best slot `slot` with `prediction`. Returns false, writing nothing, when the model's list is malformed or
   * empty or the prediction is: the caller then hands the model's own list to the chooser, which names a problem.
   */
  mix(kbest: KBest, slot: number, prediction: NgramPrediction, lambda: number, out: MixedList): boolean {
    const k = kbest.k;
    const base = slot * k;
    const logZ = kbest.logZ[slot];
    if (!Number.isFinite(logZ) || prediction.size === 0 || out.k < k + prediction.size) return false;
    let finite = 0;
    let listed = 0;
    let previous = Infinity;
    for (let j = base; j < base + k; j++) {
      const logit = kbest.logits[j];
      if (Number.isNaN(logit) || logit === Infinity || logit > previous) return false;
      previous = logit;
      if (logit === -Infinity) break;
      finite++;
      listed += Math.exp(logit - logZ);
    }
    if (finite === 0) return false;
    const capacity = finite + prediction.size;
    if (this.ids.length < capacity) {
      this.ids = new Int32Array(capacity);
      this.p = new Float64Array(capacity);
      this.order = new Int32Array(capacity);
    }
    const { ids, p, order } = this;
    const keep = 1 - lambda;
    for (let j = 0; j < finite; j++) {
      ids[j] = kbest.ids[base + j];
      p[j] = keep * Math.exp(kbest.logits[base + j] - logZ);
    }
    const unlisted = Math.max(0, 1 - listed) / Math.max(1, kbest.allowed - finite);
    let size = finite;
    for (let e = 0; e < prediction.size; e++) {
      const id = prediction.ids[e];
      const q = lambda * prediction.probabilities[e];
      let j = 0;
      while (j < finite && ids[j] !== id) j++;
      if (j < finite) {
        p[j] += q;
      } else {
        ids[size] = id;
        p[size++] = keep * unlisted + q;
      }
    }
    // Insertion sort, stable: equal probabilities keep the model's order, then the cache's.
    for (let i = 0; i < size; i++) {
      let j = i;
      while (j > 0 && p[order[j - 1]] < p[i]) {
        order[j] = order[j - 1];
        j--;
      }
      order[j] = i;
    }
    for (let i = 0; i < size; i++) {
      out.ids[i] = ids[order[i]];
      out.logits[i] = Math.log(p[order[i]]);
    }
    out.logits.fill(-Infinity, size);
    out.ids.fill(0, size);
    out.logZ[0] = 0;
    out.allowed = kbest.allowed;
    return true;
  }
}
