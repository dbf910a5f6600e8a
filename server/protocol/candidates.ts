/**
 * Ranked alternatives at one position, shared by the `unmask/candidates` request and explicit inline requests
 * (cycled with Alt+] / Alt+[): one batched generation of N rows (engine/infill.ts through completion.ts), the syntax
 * errors of the file with each candidate filled in (runtime/syntax.ts), and the combined score with near-duplicates
 * merged (engine/rerank.ts). No LSP types here.
 */
import type { InfillHooks, InfillResult } from '../engine/infill';
import { rankCandidates } from '../engine/rerank';
import type { SamplerOptions } from '../engine/types';
import type { SyntaxChecker } from '../runtime/syntax';
import { type CompletionModel, type CompletionQuery, complete } from './completion';
import type { CandidateItem } from './messages';

export interface RankedOutcome {
  /** Best first, near-duplicates merged; empty when the model produced nothing but whitespace. */
  readonly candidates: readonly CandidateItem[];
  readonly result: InfillResult;
}

export async function rankedCompletions(
  model: CompletionModel,
  query: CompletionQuery,
  /** The whole document before and after the position: the file each candidate is checked in. */
  file: { readonly before: string; readonly after: string },
  options: SamplerOptions,
  hooks: InfillHooks,
  syntax: Pick<SyntaxChecker, 'errorsWithInsertions'>,
  log: (line: string) => void,
): Promise<RankedOutcome> {
  const outcome = await complete(model, query, options, hooks);
  let errors: number[] | undefined;
  try {
    errors = await syntax.errorsWithInsertions(query.languageId, file.before, file.after, outcome.texts);
  } catch (err) {
    // A parser failure must not lose the candidates: they rank by likelihood alone.
    log(`syntax: checking ${outcome.texts.length} candidate(s) failed (${(err as Error).message}); ranking without it`);
  }
  const scored = outcome.texts.map((text, i) => {
    const engine = outcome.result.candidates[outcome.candidateIndex[i]];
    return {
      text,
      logProb: engine.logProb,
      tokens: engine.scoredTokens,
      meanConfidence: engine.meanConfidence,
      ...(errors ? { syntaxErrors: errors[i] } : {}),
    };
  });
  const candidates = rankCandidates(scored).map(({ candidate, score }): CandidateItem => ({ ...candidate, score }));
  return { candidates, result: outcome.result };
}
