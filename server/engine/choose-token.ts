/**
 * The per-position work of a denoising step: from one position's K-best list (types.ts KBest), choose a token and
 * score how sure the model is, by the rule of models/README.md ("K-best head"), which the recipe's sample.py follows
 * too. The list is the K entries minus padding (-Infinity), minus ids the sampler never commits, minus end-of-span
 * where the position may not end its span, minus the ids a token-healing rule does not allow (healing.ts); nothing is
 * renormalised for what is removed. With p_i = exp(logit_i -
 * logZ), the model's own probabilities:
 *   - temperature 0 takes the first entry; confidence p_0, margin p_0 - p_1 (Dream's `sample_tokens` scores, which
 *     DiffuCoder uses), negative entropy sum p_i log p_i over the list plus r log(r / n) for the mass r outside the K
 *     entries taken as spread evenly over the n tokens it covers: the list alone would make a flat distribution look
 *     surer than a peaked one, and an even tail is the most entropy the tail can have;
 *   - temperature T > 0 weighs the list by w_i = exp((logit_i - logit_0) / T), keeps the shortest prefix whose weight
 *     reaches topP of the total (top-k sampling with k = K, then top-p), draws from q = w / sum(prefix), and scores
 *     with q: confidence q(token), margin q_0 - q_1, negative entropy sum q log q;
 *   - the random strategy scores with a uniform draw (MDLM's random order).
 * The token's log-probability under the model (temperature 1, no truncation) is logit - logZ, so candidates sampled
 * at different temperatures rank on one scale.
 *
 * The lists arrive sorted, so the work per position is a pass over K entries (K = 64 for the shipped model), not over
 * the vocabulary: the graph's head did the scan natively. Nothing is allocated per call.
 */
import { ModelOutputError } from './errors';
import type { Rng } from './rng';
import type { KBest, UnmaskStrategy } from './types';

export interface TokenChoice {
  token: number;
  /** Probability of the token under the sampling distribution; compared with the confidence threshold. */
  probability: number;
  /** The strategy's ordering score: the highest-scoring positions are committed first. */
  score: number;
  /** Natural log-probability of the token under the model's untempered distribution. */
  logProb: number;
}

const where = (row: number, position: number): string => `row ${row}, position ${position}`;

export function emptyChoice(): TokenChoice {
  return { token: -1, probability: 0, score: 0, logProb: 0 };
}

export class TokenChooser {
  /** banned[id] = 1 for ids the sampler never commits. */
  private readonly banned: Uint8Array;
  /** Offsets (into the K-best arrays) of the current position's list, best first. */
  private readonly list: Int32Array;
  private readonly weights: Float64Array;
  /** Finite entries of the current position's K (before any id is skipped), for the entropy's tail. */
  private finite = 0;
  /** Where the current position's K entries start in the K-best arrays. */
  private slotStart = 0;

  constructor(
    private readonly vocabSize: number,
    bannedIds: readonly number[],
    private readonly eosId: number,
    /** The longest K-best list this chooser takes. */
    readonly maxK: number,
  ) {
    this.banned = new Uint8Array(vocabSize);
    for (const id of bannedIds) if (id >= 0 && id < vocabSize) this.banned[id] = 1;
    this.list = new Int32Array(maxK);
    this.weights = new Float64Array(maxK);
  }

  /**
   * Chooses the token of K-best slot `slot` (= row * numPositions + index) and writes the result into `out`. With
   * `banEos` the position may not end its span; with `allowed` (a 0/1 mask over the vocabulary) it may take only the
   * ids marked 1. `row` and `position` only name the position in errors. Returns false, leaving `out` alone, when
   * `allowed` leaves the list empty (the caller falls back); a list empty without it is a ModelOutputError.
   */
  choose(
    kbest: KBest,
    slot: number,
    banEos: boolean,
    temperature: number,
    topP: number,
    strategy: UnmaskStrategy,
    rng: Rng,
    out: TokenChoice,
    row: number,
    position: number,
    allowed?: Uint8Array,
  ): boolean {
    const size = this.collect(kbest, slot, banEos, allowed, row, position);
    if (size === 0) return false;
    const logZ = kbest.logZ[slot];
    if (!Number.isFinite(logZ)) throw new ModelOutputError(`The model returned log_z ${logZ} at ${where(row, position)}.`);
    if (temperature === 0) this.chooseGreedy(kbest, size, logZ, strategy, rng, out);
    else this.chooseSampled(kbest, size, logZ, temperature, topP, strategy, rng, out);
    return true;
  }

  /** Fills `list` with the position's usable entries, best first; returns how many (0 only when `allowed` left none). */
  private collect(kbest: KBest, slot: number, banEos: boolean, allowed: Uint8Array | undefined, row: number, position: number): number {
    const { logits, ids, k } = kbest;
    const list = this.list;
    let size = 0;
    let usable = 0;
    let finite = 0;
    let previous = Infinity;
    for (let j = slot * k, end = j + k; j < end; j++) {
      const logit = logits[j];
      const id = ids[j];
      if (Number.isNaN(logit) || logit === Infinity) throw new ModelOutputError(`The model returned a logit of ${logit} at ${where(row, position)}.`);
      if (logit > previous) throw new ModelOutputError(`The model's K-best list at ${where(row, position)} is not sorted best first.`);
      previous = logit;
      if (logit === -Infinity) break;
      finite++;
      if (id < 0 || id >= this.vocabSize) throw new ModelOutputError(`The model returned token id ${id} at ${where(row, position)}, outside the vocabulary (${this.vocabSize}).`);
      if (this.banned[id] === 1 || (banEos && id === this.eosId)) continue;
      usable++;
      if (allowed !== undefined && allowed[id] !== 1) continue;
      list[size++] = j;
    }
    if (usable === 0) throw new ModelOutputError(`The model's K-best list at ${where(row, position)} has no token the sampler may commit.`);
    this.finite = finite;
    this.slotStart = slot * k;
    return size;
  }

  private chooseGreedy(kbest: KBest, size: number, logZ: number, strategy: UnmaskStrategy, rng: Rng, out: TokenChoice): void {
    const { logits, ids } = kbest;
    const list = this.list;
    const best = list[0];
    const p0 = Math.exp(logits[best] - logZ);
    let score: number;
    if (strategy === 'confidence') score = p0;
    else if (strategy === 'margin') score = p0 - (size > 1 ? Math.exp(logits[list[1]] - logZ) : 0);
    else if (strategy === 'entropy') score = this.negEntropy(kbest, size, logZ);
    else score = rng.next();
    out.token = ids[best];
    out.probability = p0;
    out.logProb = logits[best] - logZ;
    out.score = score;
  }

  /** Negative entropy of the model's distribution at the position: the list's terms and an even tail (see above). */
  private negEntropy(kbest: KBest, size: number, logZ: number): number {
    const { logits } = kbest;
    const list = this.list;
    let sum = 0;
    for (let i = 0; i < size; i++) {
      const logP = logits[list[i]] - logZ;
      sum += Math.exp(logP) * logP;
    }
    // The tail: everything outside the K entries (a skipped end-of-span is inside them, so it is not tail).
    let listed = 0;
    for (let j = 0; j < this.finite; j++) listed += Math.exp(kbest.logits[this.slotStart + j] - logZ);
    const tail = 1 - listed;
    const spread = kbest.allowed - this.finite;
    if (tail > 0 && spread > 0) sum += tail * Math.log(tail / spread);
    return sum;
  }

  private chooseSampled(
    kbest: KBest,
    size: number,
    logZ: number,
    temperature: number,
    topP: number,
    strategy: UnmaskStrategy,
    rng: Rng,
    out: TokenChoice,
  ): void {
    const { logits, ids } = kbest;
    const { list, weights } = this;
    const top = logits[list[0]];
    const invT = 1 / temperature;
    let total = 0;
    for (let i = 0; i < size; i++) total += weights[i] = Math.exp((logits[list[i]] - top) * invT);
    // The nucleus: the shortest prefix whose weight reaches topP of the total (the whole list when topP is 1).
    let nucleus = size;
    let mass = total;
    if (topP < 1) {
      const target = topP * total;
      mass = 0;
      nucleus = 0;
      while (nucleus < size && (nucleus === 0 || mass < target)) mass += weights[nucleus++];
    }
    let u = rng.next() * mass;
    let chosen = nucleus - 1; // Rounding can leave u a hair above zero after the last entry.
    for (let i = 0; i < nucleus; i++) {
      u -= weights[i];
      if (u < 0) {
        chosen = i;
        break;
      }
    }
    let score: number;
    if (strategy === 'confidence') score = weights[chosen] / mass;
    else if (strategy === 'margin') score = (weights[0] - (nucleus > 1 ? weights[1] : 0)) / mass;
    else if (strategy === 'entropy') {
      score = 0;
      for (let i = 0; i < nucleus; i++) {
        const q = weights[i] / mass;
        if (q > 0) score += q * Math.log(q);
      }
    } else score = rng.next();
    const entry = list[chosen];
    out.token = ids[entry];
    out.probability = weights[chosen] / mass;
    out.logProb = logits[entry] - logZ;
    out.score = score;
  }
}
