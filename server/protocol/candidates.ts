/**
 * Ranked alternatives at one position, shared by the `unmask/candidates` request and explicit inline requests
 * (cycled with Alt+] / Alt+[): one batched generation of N rows (engine/infill.ts through completion.ts), the syntax
 * errors of the file with each candidate filled in (runtime/syntax.ts), the reward of the model folder's
 * discriminator when it has one (runtime/discriminator.ts), and the combined score with near-duplicates merged
 * (engine/rerank.ts), and for inline completions the copy candidate among them (copy-candidate.ts); and the best joint
 * fill of several holes (Fill All Holes), ranked the same way. No LSP types here.
 */
import type { CopyMatch } from '../engine/copy-lookup';
import { type GateFeatures, gateFeatures, type GateRow } from '../engine/gate-features';
import { type Candidate, infill, type InfillHooks, type InfillRequest, type InfillResult } from '../engine/infill';
import { rankCandidates } from '../engine/rerank';
import type { SamplerOptions } from '../engine/types';
import type { LoadedDiscriminator } from '../runtime/discriminator';
import type { SyntaxChecker } from '../runtime/syntax';
import { type CompletionModel, type CompletionOutcome, type CompletionQuery, complete, denoiserOf, dropRepeatedLines } from './completion';
import { COPY_MIN_MATCH, type CopySource, copyMatch, leadingCopy, withCopyRow } from './copy-candidate';
import type { CandidateItem } from './messages';

export interface RankedOutcome {
  /** Best first, near-duplicates merged; empty when the model produced nothing but whitespace. */
  readonly candidates: readonly CandidateItem[];
  readonly result: InfillResult;
  /** The first candidate's text and the engine's first-line numbers for it, as the gate reads them (gate.ts). */
  readonly best?: GateRow;
  /** For each of `candidates`, its row in result.candidates: the canvas the reward model scored. */
  readonly rows: readonly number[];
}

/** A completion model with, when its folder ships one, the discriminator that scores finished candidates. */
export type RankingModel = CompletionModel & { readonly discriminator?: Pick<LoadedDiscriminator, 'tClean' | 'score'> };

/**
 * The reward of each candidate (`candidateIndex` into result.candidates): one batched discriminator pass over the
 * finished canvases of all of them (asInserted) at t = t_clean, reduced per candidate to the mean of its per-token scores over the
 * span positions. The contract ranks by their sum; every candidate of one request has the same span positions, so
 * the mean orders them the same and stays on the per-token scale of the likelihood it is added to (rerank.ts).
 * Undefined without a discriminator, without candidates, or when the pass fails (logged; the ranking goes on).
 */
async function rewardsOf(
  discriminator: RankingModel['discriminator'],
  result: InfillResult,
  candidateIndex: readonly number[],
  eosId: number,
  log: (line: string) => void,
): Promise<number[] | undefined> {
  if (!discriminator || candidateIndex.length === 0) return undefined;
  const canvases = candidateIndex.map((i) => asInserted(result.candidates[i].canvas, result.holes, eosId));
  const span = result.holes.flatMap(({ start, length }) => Array.from({ length }, (_, k) => start + k));
  const batch = canvases.length;
  const seqLen = canvases[0].length;
  const numPositions = span.length;
  const ids = new Int32Array(batch * seqLen);
  const positions = new Int32Array(batch * numPositions);
  canvases.forEach((canvas, r) => {
    ids.set(canvas, r * seqLen);
    positions.set(span, r * numPositions);
  });
  try {
    const t = new Float32Array(batch).fill(discriminator.tClean);
    const scores = await discriminator.score({ ids, batch, seqLen, positions, numPositions, t });
    return canvases.map((_, r) => scores.subarray(r * numPositions, (r + 1) * numPositions).reduce((sum, s) => sum + s, 0) / numPositions);
  } catch (err) {
    log(`discriminator: scoring ${batch} candidate(s) failed (${(err as Error).message}); ranking without it`);
    return undefined;
  }
}

/**
 * The canvas as the candidate would be inserted: in each hole, every position after the first end-of-span holds
 * end-of-span. Out-of-order decoding can leave tokens there that the text never shows; the reward model was trained
 * on canvases written this way (models/recipe/scripts/data_reward.py), so it never scores text nobody would see.
 */
export function asInserted(canvas: Int32Array, holes: readonly { start: number; length: number }[], eosId: number): Int32Array {
  const out = Int32Array.from(canvas);
  for (const { start, length } of holes) {
    const end = out.subarray(start, start + length).indexOf(eosId);
    if (end >= 0) out.fill(eosId, start + end, start + length);
  }
  return out;
}

export async function rankedCompletions(
  model: RankingModel,
  query: CompletionQuery,
  /** The whole document before and after the position: the file each candidate is checked in. */
  file: { readonly before: string; readonly after: string },
  options: SamplerOptions,
  hooks: InfillHooks,
  syntax: Pick<SyntaxChecker, 'errorsWithInsertions'>,
  log: (line: string) => void,
): Promise<RankedOutcome> {
  const outcome = await complete(model, query, options, hooks);
  // The parser runs on this thread and the discriminator in the inference worker: they overlap.
  const rewarding = rewardsOf(model.discriminator, outcome.result, outcome.candidateIndex, model.facts.eosId, log);
  let errors: number[] | undefined;
  try {
    errors = await syntax.errorsWithInsertions(query.languageId, file.before, file.after, outcome.texts);
  } catch (err) {
    // A parser failure must not lose the candidates: they rank by likelihood alone.
    log(`syntax: checking ${outcome.texts.length} candidate(s) failed (${(err as Error).message}); ranking without it`);
  }
  const rewards = await rewarding;
  const scored = outcome.texts.map((text, i) => {
    const engine = outcome.result.candidates[outcome.candidateIndex[i]];
    return {
      text,
      logProb: engine.logProb,
      tokens: engine.scoredTokens,
      meanConfidence: engine.meanConfidence,
      ...(errors ? { syntaxErrors: errors[i] } : {}),
      ...(rewards ? { reward: rewards[i] } : {}),
    };
  });
  const ranked = rankCandidates(scored);
  const candidates = ranked.map(({ candidate, score }): CandidateItem => ({ ...candidate, score }));
  // rankCandidates hands back the scored objects themselves: each one's index finds its engine candidate.
  const rows = ranked.map(({ candidate }) => outcome.candidateIndex[scored.indexOf(candidate)]);
  const best = ranked.length > 0 ? gateRow(ranked[0].candidate.text, outcome.result.candidates[rows[0]]) : undefined;
  return { candidates, result: outcome.result, rows, ...(best ? { best } : {}) };
}

/** A finished text and the engine candidate it came from, as the gate reads them. */
export function gateRow(text: string, engine: Pick<Candidate, 'firstLine' | 'agreement'>): GateRow {
  return { text, firstLine: engine.firstLine, agreement: engine.agreement };
}

/**
 * The gate's numbers for a one-row completion (complete()) shown with `copy` among its rows (copy-candidate.ts
 * withCopyRow), `before` the document's text before the cursor; undefined when there is nothing to show.
 */
export function completionGate(outcome: CompletionOutcome, copy: CopyMatch | undefined, before: string): GateFeatures | undefined {
  if (outcome.texts.length === 0 && copy === undefined) return undefined;
  const best = outcome.texts.length > 0 ? gateRow(outcome.texts[0], outcome.result.candidates[outcome.candidateIndex[0]]) : undefined;
  return gateFeatures(best, leadingCopy(copy, best?.text), before);
}

/** What inline completions show: the rows, best first, and the gate's numbers for the first (undefined without one). */
export interface InlineRows {
  readonly candidates: readonly CandidateItem[];
  readonly gate: GateFeatures | undefined;
}

/**
 * Ranked candidates with the copy candidate (copy-candidate.ts) among them when the document, or another open one,
 * repeats a run ending at the cursor (first when it leads, else second), and the gate's numbers for the first of them (gate-features.ts): what
 * inline completions and the CLI show. The candidates panel and the fills list the model's own rows.
 */
export function withCopyCandidate(
  ranked: Pick<RankedOutcome, 'candidates' | 'best'>,
  file: CopySource,
  copyMinMatch = COPY_MIN_MATCH,
): InlineRows {
  const { candidates } = ranked;
  const copy = copyMatch(file, copyMinMatch);
  const item: CandidateItem = { text: '', logProb: 0, tokens: 0, meanConfidence: 1, score: candidates[0]?.score ?? 0, source: 'copy' };
  // The copy takes the place of the lowest-ranked model row: a request for N alternatives still gets at most N.
  const withCopy = withCopyRow(candidates, copy, (c) => c.text, (text) => ({ ...item, text }));
  const shown = withCopy.slice(0, Math.max(candidates.length, 1));
  return { candidates: shown, gate: shown.length > 0 ? gateFeatures(ranked.best, leadingCopy(copy, candidates[0]?.text), file.before) : undefined };
}

export interface HoleFill {
  /** The text for each hole (after dropRepeatedLines); undefined when every row left every hole blank. */
  readonly texts: readonly string[] | undefined;
  /** Holes the chosen row left blank. */
  readonly blankHoles: number;
  readonly result: InfillResult;
}

/**
 * The best joint fill of the holes of `request` from one generation of `options.candidates` rows: the row that leaves
 * the fewest holes blank (a hole the user marked is meant to be filled), and among those the best by the candidates'
 * score: likelihood and the tree-sitter syntax errors of the file with every hole filled (runtime/syntax.ts
 * errorsWithFills). A syntax check that fails is logged and leaves the likelihood alone.
 */
export async function bestHoleFill(
  model: CompletionModel,
  request: InfillRequest,
  options: SamplerOptions,
  hooks: InfillHooks,
  syntax: Pick<SyntaxChecker, 'errorsWithFills'>,
  log: (line: string) => void,
): Promise<HoleFill> {
  const result = await infill(denoiserOf(model), model.codec, model.facts, request, options, hooks);
  const fills = result.candidates.map((c) => c.holes.map((text, i) => dropRepeatedLines(text, request.segments[i + 1])));
  if (fills.length === 0) return { texts: undefined, blankHoles: request.holes.length, result };
  let errors: number[] | undefined;
  try {
    errors = await syntax.errorsWithFills(request.languageId, request.segments, fills);
  } catch (err) {
    log(`syntax: checking ${fills.length} hole fill(s) failed (${(err as Error).message}); ranking without it`);
  }
  const blanks = fills.map((texts) => texts.filter((t) => t.trim() === '').length);
  const ranked = rankCandidates(
    result.candidates.map((c, i) => ({
      text: fills[i].join('\n\u0000\n'),
      logProb: c.logProb,
      tokens: c.scoredTokens,
      ...(errors ? { syntaxErrors: errors[i] } : {}),
      index: i,
    })),
  );
  // Fewer blank holes first; the ranking's order (a stable sort keeps it) decides among rows with as many.
  const best = [...ranked].sort((a, b) => blanks[a.candidate.index] - blanks[b.candidate.index])[0].candidate.index;
  return { texts: fills[best], blankHoles: blanks[best], result };
}
