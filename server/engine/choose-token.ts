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
 * Cost: one pass for the maximum and one pass of exponentials over the vocabulary; sampling reuses the stored
 * exponentials, and top-p sorts only the tokens that can be in the nucleus. Ids the model must never produce (the
 * mask itself, padding, language tags) are skipped by looping over the ranges between them, so the hot loops carry
 * no per-token test. Nothing is allocated per call.
 */
import { ModelOutputError } from './errors';
import type { Rng } from './rng';
import type { UnmaskStrategy } from './types';

export interface TokenChoice {
  token: number;
  /** Probability of the token under the sampling distribution; compared with the confidence threshold. */
  probability: number;
  /** The strategy's ordering score: the highest-scoring positions are committed first. */
  score: number;
  /** Natural log-probability of the token under the model's untempered distribution. */
  logProb: number;
}

export function emptyChoice(): TokenChoice {
  return { token: -1, probability: 0, score: 0, logProb: 0 };
}

export class TokenChooser {
  /** [start, end) pairs covering the vocabulary minus the banned ids. */
  private readonly ranges: Int32Array;
  private readonly weights: Float64Array;
  private readonly nucleus: Int32Array;
  private readonly byWeightDescending = (a: number, b: number): number => this.weights[b] - this.weights[a] || a - b;

  constructor(
    private readonly vocabSize: number,
    bannedIds: readonly number[],
  ) {
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
   * `where` names the position in errors.
   */
  choose(
    logits: Float32Array,
    offset: number,
    temperature: number,
    topP: number,
    strategy: UnmaskStrategy,
    rng: Rng,
    out: TokenChoice,
    where: string,
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
      throw new ModelOutputError(`The model returned no usable logits at ${where} (all -Infinity, NaN or +Infinity).`);
    }
    if (temperature === 0) {
      this.chooseGreedy(logits, offset, max1, max2, argmax, strategy, rng, out, where);
    } else {
      this.chooseSampled(logits, offset, max1, max2, temperature, topP, strategy, rng, out, where);
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
    where: string,
  ): void {
    const ranges = this.ranges;
    let z = 0;
    let weightedLogit = 0;
    if (strategy === 'entropy') {
      for (let r = 0; r < ranges.length; r += 2) {
        for (let i = ranges[r], end = ranges[r + 1]; i < end; i++) {
          const d = logits[offset + i] - max1;
          const e = Math.exp(d);
          z += e;
          // A logit of -Infinity has weight 0 and adds nothing (0 * -Infinity would be NaN).
          if (e > 0) weightedLogit += e * d;
        }
      }
    } else {
      for (let r = 0; r < ranges.length; r += 2) {
        for (let i = ranges[r], end = ranges[r + 1]; i < end; i++) z += Math.exp(logits[offset + i] - max1);
      }
    }
    if (!Number.isFinite(z)) throw new ModelOutputError(`The model returned NaN logits at ${where}.`);
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
    where: string,
  ): void {
    const ranges = this.ranges;
    const weights = this.weights;
    const invT = 1 / temperature;
    let z1 = 0;
    let zT = 0;
    let weightedLogit = 0;
    for (let r = 0; r < ranges.length; r += 2) {
      for (let i = ranges[r], end = ranges[r + 1]; i < end; i++) {
        const d = logits[offset + i] - max1;
        const e = Math.exp(d);
        const w = invT === 1 ? e : Math.exp(d * invT);
        weights[i] = w;
        z1 += e;
        zT += w;
        if (w > 0) weightedLogit += w * d * invT;
      }
    }
    if (!Number.isFinite(z1) || !Number.isFinite(zT)) throw new ModelOutputError(`The model returned NaN logits at ${where}.`);

    let token: number;
    let probability: number;
    let margin: number;
    let negEntropy: number;
    if (topP < 1) {
      // Every token outside the nucleus has weight below eps: the tokens below eps hold less than (1 - topP) of the
      // mass together, so the sorted tokens at or above eps always reach topP first.
      const eps = ((1 - topP) * zT) / this.vocabSize;
      const nucleus = this.nucleus;
      let candidates = 0;
      for (let r = 0; r < ranges.length; r += 2) {
        for (let i = ranges[r], end = ranges[r + 1]; i < end; i++) if (weights[i] >= eps) nucleus[candidates++] = i;
      }
      const sorted = nucleus.subarray(0, candidates).sort(this.byWeightDescending);
      const target = topP * zT;
      let size = 0;
      let mass = 0;
      while (size < sorted.length && mass < target) mass += weights[sorted[size++]];
      let u = rng.next() * mass;
      token = sorted[size - 1];
      for (let j = 0; j < size; j++) {
        u -= weights[sorted[j]];
        if (u < 0) {
          token = sorted[j];
          break;
        }
      }
      probability = weights[token] / mass;
      margin = (weights[sorted[0]] - (size > 1 ? weights[sorted[1]] : 0)) / mass;
      negEntropy = 0;
      if (strategy === 'entropy') {
        for (let j = 0; j < size; j++) {
          const q = weights[sorted[j]] / mass;
          negEntropy += q * Math.log(q);
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
      // Rounding can leave u a hair above zero after the last token; the last token with weight is then the draw.
      if (token < 0) token = this.lastWeighted();
      probability = weights[token] / zT;
      margin = (1 - Math.exp((max2 - max1) * invT)) / zT;
      negEntropy = weightedLogit / zT - Math.log(zT);
    }
    out.token = token;
    out.probability = probability;
    out.logProb = logits[offset + token] - max1 - Math.log(z1);
    out.score = this.score(strategy, probability, margin, negEntropy, rng);
  }

  private lastWeighted(): number {
    for (let r = this.ranges.length - 2; r >= 0; r -= 2) {
      for (let i = this.ranges[r + 1] - 1; i >= this.ranges[r]; i--) if (this.weights[i] > 0) return i;
    }
    return this.ranges[0];
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
