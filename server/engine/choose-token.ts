/**
 * The per-position work of a denoising step: from one position's logits, choose a token (argmax at temperature 0,
 * otherwise a sample from the tempered, nucleus-truncated distribution) and score how sure the model is, the way
 * Dream's `sample_tokens` does (which DiffuCoder uses):
 *   - confidence: probability of the chosen token under the sampling distribution (MaskGIT; top-1 at temperature 0);
 *   - margin: top-1 minus top-2 probability;
 *   - entropy: negative entropy of the sampling distribution (higher = surer);
 *   - random: a uniform draw (MDLM's random order).
 * It also returns the token's log-probability under the model's own distribution (temperature 1, no truncation),
 * so that candidates sampled at different temperatures can be ranked on one scale.
 *
 * Cost: one pass for the maximum and one pass of table exponentials (fast-exp.ts) over the vocabulary. Sampling
 * reuses the stored weights. Top-p finds the nucleus with a histogram of the weights (1/32-nat buckets): every bucket
 * above the one where the mass crosses topP is wholly inside, and only that boundary bucket is sorted. Ids the model
 * must never produce (the mask itself, padding, language tags) are skipped by looping over the ranges between them,
 * so the hot loops carry no per-token test. Nothing is allocated per call.
 */
import { ModelOutputError } from './errors';
import * as fastExp from './fast-exp';
import type { Rng } from './rng';
import type { UnmaskStrategy } from './types';

// Local bindings: a CommonJS build reaches imports through getters, which the hot loops must not pay per token.
const expScaled = fastExp.expScaled;
const EXP_TABLE = fastExp.EXP_TABLE;
const EXP_STEPS_PER_NAT = fastExp.EXP_STEPS_PER_NAT;
const EXP_RANGE_NATS = fastExp.EXP_RANGE_NATS;

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

/** Nucleus histogram: bucket b holds weights in (exp(-(b+1)/BUCKETS_PER_NAT), exp(-b/BUCKETS_PER_NAT)]. */
const BUCKETS_PER_NAT = 32;
const TABLE_STEPS_PER_BUCKET = EXP_STEPS_PER_NAT / BUCKETS_PER_NAT;
const BUCKETS_PER_TABLE_STEP = 1 / TABLE_STEPS_PER_BUCKET;
const BUCKETS = EXP_RANGE_NATS * BUCKETS_PER_NAT;

export class TokenChooser {
  /** [start, end) pairs covering the vocabulary minus the banned ids. */
  private readonly ranges: Int32Array;
  private readonly weights: Float64Array;
  private readonly nucleus: Int32Array;
  private readonly bucketMass = new Float64Array(BUCKETS + 1);
  private readonly byWeightDescending = (a: number, b: number): number => this.weights[b] - this.weights[a] || a - b;

  constructor(vocabSize: number, bannedIds: readonly number[]) {
    const banned = [...new Set(bannedIds)].filter((id) => id >= 0 && id < vocabSize).sort((a, b) => a - b);
    const ranges: number[] = [];
    let start = 0;
    for (const id of banned) {
      if (id > start) ranges.push(start, id);
      start = id + 1;
    }
    if (start < vocabSize) ranges.push(start, vocabSize);
    this.ranges = Int32Array.from(ranges);
    this.weights = new Float64Array(vocabSize);
    this.nucleus = new Int32Array(vocabSize);
  }

  /**
   * Chooses the token at the position whose logits start at `offset` and writes the result into `out`.
   * `row` and `position` only name the position in errors.
   */
  choose(
    logits: Float32Array,
    offset: number,
    temperature: number,
    topP: number,
    strategy: UnmaskStrategy,
    rng: Rng,
    out: TokenChoice,
    row: number,
    position: number,
  ): void {
    const ranges = this.ranges;
    let max1 = -Infinity;
    let max2 = -Infinity;
    let argmax = -1;
    for (let r = 0; r < ranges.length; r += 2) {
      for (let i = ranges[r], end = ranges[r + 1]; i < end; i++) {
        const x = logits[offset + i];
        if (x > max1) {
          max2 = max1;
          max1 = x;
          argmax = i;
        } else if (x > max2) {
          max2 = x;
        }
      }
    }
    if (argmax < 0 || max1 === Infinity) {
      throw new ModelOutputError(`The model returned no usable logits at ${where(row, position)} (all -Infinity, NaN or +Infinity).`);
    }
    if (temperature === 0) {
      this.chooseGreedy(logits, offset, max1, max2, argmax, strategy, rng, out);
    } else {
      this.chooseSampled(logits, offset, max1, max2, temperature, topP, strategy, rng, out);
    }
    if (!Number.isFinite(out.probability) || Number.isNaN(out.score)) {
      throw new ModelOutputError(`The model returned NaN logits at ${where(row, position)}.`);
    }
  }

  private chooseGreedy(
    logits: Float32Array,
    offset: number,
    max1: number,
    max2: number,
    argmax: number,
    strategy: UnmaskStrategy,
    rng: Rng,
    out: TokenChoice,
  ): void {
    const ranges = this.ranges;
    let z = 0;
    let weightedLogit = 0;
    if (strategy === 'entropy') {
      for (let r = 0; r < ranges.length; r += 2) {
        for (let i = ranges[r], end = ranges[r + 1]; i < end; i++) {
          const d = logits[offset + i] - max1;
          const e = expScaled(-d * EXP_STEPS_PER_NAT);
          z += e;
          // A logit of -Infinity has weight 0 and adds nothing (0 * -Infinity would be NaN).
          if (e > 0) weightedLogit += e * d;
        }
      }
    } else {
      for (let r = 0; r < ranges.length; r += 2) {
        for (let i = ranges[r], end = ranges[r + 1]; i < end; i++) z += expScaled((max1 - logits[offset + i]) * EXP_STEPS_PER_NAT);
      }
    }
    const logZ = Math.log(z);
    out.token = argmax;
    out.probability = 1 / z;
    out.logProb = -logZ;
    out.score = this.score(strategy, out.probability, (1 - Math.exp(max2 - max1)) / z, weightedLogit / z - logZ, rng);
  }

  private chooseSampled(
    logits: Float32Array,
    offset: number,
    max1: number,
    max2: number,
    temperature: number,
    topP: number,
    strategy: UnmaskStrategy,
    rng: Rng,
    out: TokenChoice,
  ): void {
    const ranges = this.ranges;
    const weights = this.weights;
    const invT = 1 / temperature;
    const scaleT = EXP_STEPS_PER_NAT * invT;
    const truncate = topP < 1;
    const untempered = invT === 1;
    const bucketMass = this.bucketMass;
    if (truncate) bucketMass.fill(0);
    let z1 = 0;
    let zT = 0;
    let weightedLogit = 0;
    for (let r = 0; r < ranges.length; r += 2) {
      for (let i = ranges[r], end = ranges[r + 1]; i < end; i++) {
        const below = max1 - logits[offset + i];
        const y = below * scaleT;
        const w = expScaled(y);
        weights[i] = w;
        z1 += untempered ? w : expScaled(below * EXP_STEPS_PER_NAT);
        zT += w;
        // A weight of 0 (more than EXP_RANGE_NATS below the best) adds nothing to either sum.
        if (w > 0) {
          weightedLogit -= w * below * invT;
          if (truncate) bucketMass[(y * BUCKETS_PER_TABLE_STEP) | 0] += w;
        }
      }
    }
    if (!Number.isFinite(z1) || !Number.isFinite(zT)) {
      // NaN logits: reported by choose() from the NaN probability.
      out.token = -1;
      out.probability = NaN;
      return;
    }

    let token: number;
    let probability: number;
    let margin: number;
    let negEntropy: number;
    if (truncate) {
      const { size, mass } = this.findNucleus(topP * zT);
      const nucleus = this.nucleus;
      let u = rng.next() * mass;
      token = nucleus[size - 1];
      for (let j = 0; j < size; j++) {
        u -= weights[nucleus[j]];
        if (u < 0) {
          token = nucleus[j];
          break;
        }
      }
      probability = weights[token] / mass;
      // The top two tokens are in any nucleus of two or more; the best one has weight exp(0) = 1.
      margin = (1 - (size > 1 ? expScaled((max1 - max2) * scaleT) : 0)) / mass;
      negEntropy = 0;
      if (strategy === 'entropy') {
        for (let j = 0; j < size; j++) {
          const q = weights[nucleus[j]] / mass;
          if (q > 0) negEntropy += q * Math.log(q);
        }
      }
    } else {
      let u = rng.next() * zT;
      token = -1;
      for (let r = 0; r < ranges.length && token < 0; r += 2) {
        for (let i = ranges[r], end = ranges[r + 1]; i < end; i++) {
          u -= weights[i];
          if (u < 0) {
            token = i;
            break;
          }
        }
      }
      // Rounding can leave u a hair above zero after the last token; the best token is then the draw.
      if (token < 0) token = this.argmaxOfWeights();
      probability = weights[token] / zT;
      margin = (1 - expScaled((max1 - max2) * scaleT)) / zT;
      negEntropy = weightedLogit / zT - Math.log(zT);
    }
    out.token = token;
    out.probability = probability;
    out.logProb = logits[offset + token] - max1 - Math.log(z1);
    out.score = this.score(strategy, probability, margin, negEntropy, rng);
  }

  /**
   * Fills `nucleus` with the smallest set of highest-weight tokens whose weights reach `target` (in any order but
   * the boundary bucket's, which is sorted) and returns its size and mass.
   */
  private findNucleus(target: number): { size: number; mass: number } {
    const { ranges, weights, nucleus, bucketMass } = this;
    let boundary = 0;
    let above = 0;
    while (boundary < BUCKETS && above + bucketMass[boundary] < target) above += bucketMass[boundary++];
    // Bucket b holds weights w with EXP_TABLE[b * s + s] < w <= EXP_TABLE[b * s] (s = table steps per bucket); the
    // table exponential is monotone, so these comparisons put each token in the same bucket as the histogram did.
    const upper = EXP_TABLE[boundary * TABLE_STEPS_PER_BUCKET];
    const lower = boundary < BUCKETS ? EXP_TABLE[(boundary + 1) * TABLE_STEPS_PER_BUCKET] : -1;
    let sure = 0;
    let edge = weights.length;
    for (let r = 0; r < ranges.length; r += 2) {
      for (let i = ranges[r], end = ranges[r + 1]; i < end; i++) {
        const w = weights[i];
        if (w > upper) nucleus[sure++] = i;
        else if (w > lower) nucleus[--edge] = i;
      }
    }
    // The boundary bucket's tokens sit at the end of the array; sort them best first and take what reaches target.
    const boundaryTokens = nucleus.subarray(edge).sort(this.byWeightDescending);
    let mass = above;
    let size = sure;
    for (let j = 0; j < boundaryTokens.length && (mass < target || size === 0); j++) {
      nucleus[size++] = boundaryTokens[j];
      mass += weights[boundaryTokens[j]];
    }
    return { size, mass };
  }

  private argmaxOfWeights(): number {
    let best = this.ranges[0];
    for (let r = 0; r < this.ranges.length; r += 2) {
      for (let i = this.ranges[r]; i < this.ranges[r + 1]; i++) if (this.weights[i] > this.weights[best]) best = i;
    }
    return best;
  }

  private score(strategy: UnmaskStrategy, probability: number, margin: number, negEntropy: number, rng: Rng): number {
    switch (strategy) {
      case 'confidence':
        return probability;
      case 'margin':
        return margin;
      case 'entropy':
        return negEntropy;
      case 'random':
        return rng.next();
    }
  }
}
