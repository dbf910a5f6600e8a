/**
 * The score that ranks candidates (issue 5) and the merge of near-duplicates. Pure: it takes plain numbers that the
 * protocol layer gathered (log-probabilities from the engine, syntax error counts from the parser in runtime/syntax.ts)
 * and does no I/O. Higher is better:
 *
 *   score = likelihood * meanLogProb + reward * rewardScore - syntax * extraSyntaxErrors
 *
 * - meanLogProb (weight 1): the mean natural log-probability per token of the tokens the model chose, so that long
 *   and short completions compare fairly.
 * - extraSyntaxErrors (weight 2): the syntax errors (tree-sitter ERROR and MISSING nodes) of the file with this
 *   candidate filled in, beyond the fewest that any candidate of the same request leaves. Counting from the best
 *   candidate keeps errors elsewhere in a file that is being edited from costing every candidate alike. One extra
 *   error costs as much as 2 nats per token of likelihood: a candidate that parses outranks one that adds an error
 *   unless the model finds it e^2 (about 7) times less likely per token. A language without a parser adds nothing.
 * - rewardScore (weight 1): the learned reward of models/README.md's discriminator, the mean over the candidate's
 *   span positions of its per-token log-odds (teacher : student, in nats like the likelihood). It is present only
 *   when the model folder's manifest lists a discriminator and the runtime scored the candidate with it; the shipped
 *   model has none, so the term is absent and the ranking is likelihood and syntax alone. Its weight of 1 puts it on
 *   the likelihood's scale until it is tuned on held-out data.
 */

export interface RerankWeights {
  /** Weight of the mean log-probability per token (nats). */
  readonly likelihood: number;
  /** Weight of the reward model's score (nats). */
  readonly reward: number;
  /** Points each syntax error beyond the best candidate's costs. */
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
  /** Syntax errors in the file with the candidate filled in; undefined when no parser for the language exists. */
  readonly syntaxErrors?: number;
}

export function meanLogProb(inputs: Pick<RerankInputs, 'logProb' | 'tokens'>): number {
  return inputs.tokens > 0 ? inputs.logProb / inputs.tokens : -Infinity;
}

/**
 * The score of one candidate. `fewestSyntaxErrors` is the smallest syntax error count among the candidates it is
 * ranked with (0 when it is scored alone).
 */
export function rerankScore(inputs: RerankInputs, weights: RerankWeights = DEFAULT_RERANK_WEIGHTS, fewestSyntaxErrors = 0): number {
  const extraErrors = inputs.syntaxErrors === undefined ? 0 : Math.max(0, inputs.syntaxErrors - fewestSyntaxErrors);
  // A zero weight switches its term off entirely, even for a candidate without tokens (mean -Infinity).
  const likelihood = weights.likelihood === 0 ? 0 : weights.likelihood * meanLogProb(inputs);
  const reward = weights.reward === 0 ? 0 : weights.reward * (inputs.reward ?? 0);
  const syntax = weights.syntax === 0 ? 0 : weights.syntax * extraErrors;
  return likelihood + reward - syntax;
}

/**
 * Candidates count as the same when their texts are equal once all whitespace is removed, or when they are at
 * least this similar (1 - edit distance / length of the longer text, also without whitespace): a one-character
 * difference merges texts of 20 characters or more, shorter ones only when whitespace is all that differs.
 */
export const NEAR_DUPLICATE_SIMILARITY = 0.95;

function withoutWhitespace(text: string): string {
  return text.replace(/\s+/g, '');
}

/**
 * Whether the edit distance of `a` and `b` is at most `limit`. Only the diagonal band of width 2 * limit + 1 is
 * computed, and it stops as soon as every cell of a row is over the limit, so distant texts cost little.
 */
function withinEditDistance(a: string, b: string, limit: number): boolean {
  if (Math.abs(a.length - b.length) > limit) return false;
  const over = limit + 1;
  let previous = new Array<number>(b.length + 1);
  let current = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) previous[j] = j <= limit ? j : over;
  for (let i = 1; i <= a.length; i++) {
    const from = Math.max(1, i - limit);
    const to = Math.min(b.length, i + limit);
    current.fill(over);
    current[0] = i <= limit ? i : over;
    let best = current[0];
    for (let j = from; j <= to; j++) {
      const substitute = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(over, substitute, previous[j] + 1, current[j - 1] + 1);
      best = Math.min(best, current[j]);
    }
    if (best > limit) return false;
    [previous, current] = [current, previous];
  }
  return previous[b.length] <= limit;
}

/** Whether two candidate texts are near-duplicates (see NEAR_DUPLICATE_SIMILARITY). */
export function isNearDuplicate(a: string, b: string): boolean {
  const x = withoutWhitespace(a);
  const y = withoutWhitespace(b);
  if (x === y) return true;
  const limit = Math.floor((1 - NEAR_DUPLICATE_SIMILARITY) * Math.max(x.length, y.length) + 1e-9);
  return limit > 0 && withinEditDistance(x, y, limit);
}

export interface RankedCandidate<T> {
  readonly candidate: T;
  /** The combined score (see the top of this file). */
  readonly score: number;
  /** How many lower-ranked near-duplicates were merged into this one. */
  readonly merged: number;
}

/**
 * Scores every candidate, sorts them best first (ties keep their input order), and merges near-duplicates into the
 * best-ranked of each group.
 */
export function rankCandidates<T extends RerankInputs & { readonly text: string }>(
  candidates: readonly T[],
  weights: RerankWeights = DEFAULT_RERANK_WEIGHTS,
): RankedCandidate<T>[] {
  const counts = candidates.map((c) => c.syntaxErrors).filter((n): n is number => n !== undefined);
  const fewest = counts.length > 0 ? Math.min(...counts) : 0;
  const sorted = candidates
    .map((candidate, i) => ({ candidate, i, score: rerankScore(candidate, weights, fewest) }))
    .sort((a, b) => b.score - a.score || a.i - b.i);
  const kept: { candidate: T; score: number; merged: number }[] = [];
  for (const entry of sorted) {
    const same = kept.find((k) => isNearDuplicate(k.candidate.text, entry.candidate.text));
    if (same) same.merged++;
    else kept.push({ candidate: entry.candidate, score: entry.score, merged: 0 });
  }
  return kept;
}
