/**
 * The score that ranks candidates (issue 5): the model's likelihood of the candidate, an optional learned reward
 * (the discriminator, once it exists), and an optional syntax check of the filled file. Higher is better.
 *
 *   score = likelihood * meanLogProb + reward * rewardScore + syntax * (valid ? 0 : invalid ? -1 : 0)
 *
 * The likelihood term is the mean log-probability per token, so that long and short completions compare fairly.
 * An invalid parse costs `syntax` points; an unknown one (no parser for the language) costs nothing, so that
 * languages without a parser still rank by likelihood alone.
 */

export interface RerankWeights {
  /** Weight of the mean log-probability per token (nats). */
  readonly likelihood: number;
  /** Weight of the reward model's score. */
  readonly reward: number;
  /** Points an invalid parse of the filled file costs. */
  readonly syntax: number;
}

export const DEFAULT_RERANK_WEIGHTS: RerankWeights = Object.freeze({ likelihood: 1, reward: 1, syntax: 2 });

export interface RerankInputs {
  /** Sum of the natural log-probabilities of the candidate's tokens. */
  readonly logProb: number;
  /** How many tokens that sum is over. */
  readonly tokens: number;
  /** The discriminator's score, when one ran. */
  readonly reward?: number;
  /** Whether the filled file parses, when a parser for its language exists. */
  readonly syntaxValid?: boolean;
}

export function meanLogProb(inputs: Pick<RerankInputs, 'logProb' | 'tokens'>): number {
  return inputs.tokens > 0 ? inputs.logProb / inputs.tokens : -Infinity;
}

export function rerankScore(inputs: RerankInputs, weights: RerankWeights = DEFAULT_RERANK_WEIGHTS): number {
  const syntaxPenalty = inputs.syntaxValid === false ? -1 : 0;
  // A zero weight switches its term off entirely, even for a candidate without tokens (mean -Infinity).
  const likelihood = weights.likelihood === 0 ? 0 : weights.likelihood * meanLogProb(inputs);
  return likelihood + weights.reward * (inputs.reward ?? 0) + weights.syntax * syntaxPenalty;
}
