/**
 * The model's special token ids, in one place: they must never reach the user's document, and the sampler must
 * never commit any of them except end-of-span.
 */
import type { ModelFacts } from './types';

/** Ids that are markup, not text: mask, end-of-span, padding, file separator and the language tags. */
export function specialTokenIds(facts: ModelFacts): ReadonlySet<number> {
  return new Set([facts.maskId, facts.eosId, facts.padId, facts.fileSepId, ...Object.values(facts.langIds)]);
}

/** Ids the sampler must never commit: every special id except end-of-span, which ends a completion. */
export function bannedTokenIds(facts: ModelFacts): number[] {
  return [...specialTokenIds(facts)].filter((id) => id !== facts.eosId);
}
