/**
 * What the candidates panel shows, as plain data: each ranked candidate as code (a few lines of the document around
 * the position, with the inserted text apart so the page can highlight it) and its scores in words. Pure, so that
 * it is unit-tested without VS Code; the page (media/candidates.js) only renders it.
 */
import type { CandidateItem, CandidatesResult } from '../server/protocol/messages';

/** Lines of the document shown above and below the cursor's line around each candidate. */
export const CONTEXT_LINES = 2;

export interface CandidateEntry {
  /** 1-based rank; keys 1-9 accept the first nine. */
  readonly rank: number;
  /** Document text shown before the insertion: the context lines and the cursor's line up to the cursor. */
  readonly before: string;
  /** The candidate's text, highlighted. */
  readonly inserted: string;
  /** Document text shown after the insertion: the rest of the cursor's line and the context lines. */
  readonly after: string;
  /** "syntax ok", "1 syntax error", or "no syntax check" for languages without a parser. */
  readonly syntax: string;
  /** true: parses, false: has errors, null: not checked. */
  readonly syntaxOk: boolean | null;
  /** Mean log-probability per token, with the per-token probability it means. */
  readonly likelihood: string;
  readonly score: string;
}

export interface PanelModel {
  readonly fileName: string;
  /** 1-based line and column of the position, as the editor shows them. */
  readonly line: number;
  readonly column: number;
  /** One line about the generation: how many, in how many model calls, how long. */
  readonly summary: string;
  readonly entries: readonly CandidateEntry[];
  /** Why there is nothing to show, when entries is empty. */
  readonly empty?: string;
}

/** The document around a position: `before` ends at the position, `after` starts there. */
export interface Surroundings {
  readonly before: string;
  readonly after: string;
}

/** Up to CONTEXT_LINES lines before the cursor's line plus that line up to the cursor, and the mirror after it. */
export function surroundings(documentText: string, offset: number): Surroundings {
  const head = documentText.slice(0, offset).split('\n');
  const tail = documentText.slice(offset).split('\n');
  return {
    before: head.slice(Math.max(0, head.length - 1 - CONTEXT_LINES)).join('\n'),
    after: tail.slice(0, CONTEXT_LINES + 1).join('\n'),
  };
}

function syntaxOf(candidate: CandidateItem): Pick<CandidateEntry, 'syntax' | 'syntaxOk'> {
  const errors = candidate.syntaxErrors;
  if (errors === undefined) return { syntax: 'no syntax check', syntaxOk: null };
  if (errors === 0) return { syntax: 'syntax ok', syntaxOk: true };
  return { syntax: `${errors} syntax error${errors === 1 ? '' : 's'}`, syntaxOk: false };
}

function likelihoodOf(candidate: CandidateItem): string {
  if (candidate.tokens <= 0) return 'likelihood n/a';
  const mean = candidate.logProb / candidate.tokens;
  return `log-prob ${mean.toFixed(2)}/token (p ≈ ${Math.exp(mean).toFixed(2)})`;
}

export function panelModel(
  result: CandidatesResult,
  around: Surroundings,
  where: { fileName: string; line: number; character: number },
): PanelModel {
  const entries = result.candidates.map((candidate, i) => ({
    rank: i + 1,
    before: around.before,
    inserted: candidate.text,
    after: around.after,
    ...syntaxOf(candidate),
    likelihood: likelihoodOf(candidate),
    score: `score ${candidate.score.toFixed(2)}`,
  }));
  const distinct = result.batch > result.candidates.length ? ` (${result.candidates.length} distinct)` : '';
  const summary =
    result.batch > 0
      ? `${result.batch} generated in one batch${distinct}, ${result.modelCalls} model calls, ${Math.round(result.latencyMs)} ms`
      : `nothing generated (${Math.round(result.latencyMs)} ms)`;
  return {
    fileName: where.fileName,
    line: where.line + 1,
    column: where.character + 1,
    summary,
    entries,
    ...(entries.length === 0 ? { empty: result.error ?? 'the model produced only empty or whitespace candidates here' } : {}),
  };
}
