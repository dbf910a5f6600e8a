/**
 * One completion from plain text around a position to finished strings, shared by the language server and the CLI:
 * infill on the loaded model (which ranks candidates and trims them against the text after the cursor), then the
 * removal of whole lines that repeat the lines below the cursor, the line policy (unmask.multiline), and of candidates
 * that became empty or identical.
 * No LSP types here.
 */
import { cursorMidLine } from '../engine/gate-features';
import { asLineAboveCode } from '../engine/postprocess';
import { type Denoiser, infill, type InfillHooks, type InfillResult } from '../engine/infill';
import type { SamplerOptions } from '../engine/types';
import type { LoadedModel } from '../runtime/model';

/**
 * How many lines a completion at the cursor may have (unmask.multiline): `auto` cuts it to one line when the cursor's
 * line already holds code before the cursor (mid-statement, the rest of that line is what is wanted) and, at a line
 * start, after the lines the model was sure of (cutUnsureLines), `always` keeps what the model wrote, `never` keeps
 * one line everywhere.
 */
export const MULTILINE_MODES = ['auto', 'always', 'never'] as const;
export type MultilineMode = (typeof MULTILINE_MODES)[number];

export interface CompletionQuery {
  readonly prefix: string;
  readonly suffix: string;
  readonly languageId: string;
  /** Most tokens to generate; the engine rounds up to a span bucket. */
  readonly maxTokens: number;
  /**
   * More of the document around the cursor than prefix and suffix, for the cache n-gram model (unmask.cacheNgram):
   * `before` ends with the prefix and `after` starts with the suffix. Default: the prefix and the suffix.
   */
  readonly document?: { readonly before: string; readonly after: string };
  /**
   * Token ids of other open documents the cache n-gram model counts too (InfillRequest.cacheRelated, chosen and bounded
   * by document-tokens.ts).
   */
  readonly related?: readonly Int32Array[];
  /**
   * Token ids of other open documents that snippets may come from, for a model trained with them
   * (InfillRequest.snippetSources, unmask.relatedContextTokens).
   */
  readonly snippetSources?: readonly Int32Array[];
  /** Line policy (limitLines); default `always`: a fill of a selection keeps every line. */
  readonly multiline?: MultilineMode;
  /** Under `auto` at a line start, the least token probability of a kept line after the first (MIN_LINE_CONFIDENCE). */
  readonly minLineConfidence?: number;
}

export interface CompletionOutcome {
  /** Cleaned candidate texts in the engine's order, without empty ones or duplicates. */
  readonly texts: readonly string[];
  /** Index into result.candidates of each text. */
  readonly candidateIndex: readonly number[];
  readonly result: InfillResult;
}

/** The model pieces a completion needs (a LoadedModel, or a test double with the same shape). */
/** The model a completion needs; a loaded model also offers `sample`, the sampler run inside the inference worker. */
export type CompletionModel = Pick<LoadedModel, 'run' | 'codec' | 'facts'> & Partial<Pick<LoadedModel, 'sample'>>;

/** What infill denoises with: the in-worker sampler when the model offers one, else its model function. */
export function denoiserOf(model: CompletionModel): Denoiser {
  return model.sample ? { sample: model.sample } : model.run;
}

/**
 * Drops trailing lines of a completion that the lines after the cursor already start with (a model that sees the
 * suffix often writes out the rest of a block that is already there). The engine has already trimmed whitespace and
 * repeated closing brackets on the cursor's line; this looks at whole lines below it. Applies only when nothing
 * follows the cursor on its line, since otherwise the completion's lines end up before that text.
 */
export function dropRepeatedLines(text: string, suffix: string): string {
  const restOfLine = suffix.split('\n', 1)[0];
  const lines = text.split('\n');
  if (restOfLine.trim() !== '' || lines.length < 2) return text;
  const following = suffix
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  for (let n = Math.min(lines.length - 1, following.length); n > 0; n--) {
    const tail = lines.slice(lines.length - n).map((l) => l.trim());
    if (tail.every((l, i) => l === following[i]) && tail.some((l) => l !== '')) {
      return lines.slice(0, lines.length - n).join('\n').replace(/\s+$/u, '');
    }
  }
  return text;
}

/**
 * The completion under a line policy (MultilineMode). One line means up to the first line break after the first
 * non-blank character, so a completion at the end of a line that starts on the next one (`:` + `\n    body`) keeps
 * that line. Why `auto` is the default: mid-line, the model fills its 32-token span past the line it was asked to
 * finish (held-out eval, 600 tasks, model rows: the first line is exactly right on 9.3% but the whole text on 0.0%,
 * as the line is followed by guessed ones); cutting mid-line completions to one line made 14% of rest-of-line tasks
 * exact and raised edit similarity 25.0% -> 30.8%, and left the tasks at a line start untouched. At a line start,
 * complete() keeps the lines the model was sure of instead (cutUnsureLines).
 */
export function limitLines(text: string, prefix: string, mode: MultilineMode, suffix = ''): string {
  if (mode === 'always') return text;
  if (mode === 'auto' && !cursorMidLine(prefix)) return text;
  const firstCode = text.search(/\S/u);
  if (firstCode === -1) return text;
  const lineEnd = text.indexOf('\n', firstCode);
  if (lineEnd === -1) return text;
  // The model ended the kept line: above code that follows the cursor on its line, that line break stays.
  return asLineAboveCode(text.slice(0, lineEnd).replace(/\s+$/u, ''), prefix, suffix);
}

/**
 * The least token probability a line after the first needs to be kept, at a line start under `unmask.multiline` auto
 * (cutUnsureLines). The model writes its 32-token span to the end, and the lines after the first are mostly guesses:
 * calibration set (900 tasks, 2 ranked rows, copy offered; model card "Session 13"), cutting at the first line below
 * 0 / 0.1 / 0.2 / 0.3 / 0.4 / 0.5 / every line after the first: exact 9.4 / 9.9 / 10.1 / 10.3 / 10.4 / 10.6 / 10.6%,
 * edit similarity 37.6 / 37.7 / 37.8 / 38.1 / 38.1 / 38.0 / 37.8%, syntax valid 61.2 / 63.9 / 65.0 / 65.7 / 66.1 / 66.3 /
 * 67.0%, degenerate repetition 3.0 / 2.6 / 2.1 / 1.3 / 0.9 / 0.8 / 0.6%; multi-line edit similarity falls (Python 28.6
 * -> 25.6%, TS/JS 24.3 -> 21.2% at 0.4) as fewer of their lines are guessed at all. Re-checked on the rl16-line model
 * (session 17; the calibration set's 600 line-start tasks, 2 ranked rows) at 0 / 0.2 / 0.4: exact 3.2 / 3.5 / 3.5%,
 * edit similarity 32.3 / 32.1 / 31.8%, syntax valid 65.2 / 66.8 / 67.8%, degenerate 3.8 / 1.5 / 0.8%; multi-line
 * exact stays 0.0% (Python) and 1.3% (TS/JS) at every value: a lower bar keeps more guessed lines, not right ones.
 */
export const MIN_LINE_CONFIDENCE = 0.4;

/**
 * The completion up to the first line after the first whose least token probability (Candidate.lineConfidence) is
 * below `minConfidence`: where the model turned unsure, the rest is left for the next request. The first line always
 * stays, a line the numbers do not cover goes, and a kept line above code after the cursor keeps its line break
 * (asLineAboveCode).
 */
export function cutUnsureLines(text: string, lineConfidence: readonly number[], minConfidence: number, prefix = '', suffix = ''): string {
  const lines = text.split('\n');
  let keep = 1;
  while (keep < lines.length && keep < lineConfidence.length && lineConfidence[keep] >= minConfidence) keep++;
  if (keep >= lines.length) return text;
  return asLineAboveCode(lines.slice(0, keep).join('\n').replace(/\s+$/u, ''), prefix, suffix);
}

/**
 * Splits the whitespace that starts the cursor's line off the prefix, when the line holds nothing else before the
 * cursor (the usual place: right after Enter). The model learned line-aligned spans that begin at a line start and
 * write their own indentation; a prefix that ends in indentation instead tokenizes into a run of spaces the model
 * rarely saw before code (BPE glues a line's indentation to its first word differently), and it answers with more
 * whitespace. So the hole starts at the line start and the indentation is taken back off the completion.
 */
export function splitIndentation(prefix: string): { prefix: string; indent: string } {
  const match = /(?:^|\n)([ \t]+)$/u.exec(prefix);
  if (!match) return { prefix, indent: '' };
  return { prefix: prefix.slice(0, prefix.length - match[1].length), indent: match[1] };
}

/**
 * The completion for the cursor from a completion that starts at the line start: the typed indentation comes off
 * its front. A model that indents its first line differently keeps its code but the user's indentation wins (the
 * text goes in after what is already typed).
 */
export function afterIndentation(text: string, indent: string): string {
  if (indent === '') return text;
  if (text.startsWith(indent)) return text.slice(indent.length);
  return text.replace(/^[ \t]+/u, '');
}

/** Runs one infill for a single hole at the cursor and returns the cleaned candidates. */
export async function complete(
  model: CompletionModel,
  query: CompletionQuery,
  options: SamplerOptions,
  hooks: InfillHooks = {},
): Promise<CompletionOutcome> {
  const { prefix, indent } = splitIndentation(query.prefix);
  // The cache's text ends where the canvas's prefix does: the indentation split off goes from it too.
  const document = query.document && [query.document.before.slice(0, query.document.before.length - indent.length), query.document.after];
  const result = await infill(
    denoiserOf(model),
    model.codec,
    model.facts,
    {
      segments: [prefix, query.suffix],
      holes: [{ maxTokens: query.maxTokens }],
      languageId: query.languageId,
      ...(document ? { cacheSegments: document } : {}),
      ...(query.related ? { cacheRelated: query.related } : {}),
      ...(query.snippetSources ? { snippetSources: query.snippetSources } : {}),
    },
    options,
    hooks,
  );
  const texts: string[] = [];
  const candidateIndex: number[] = [];
  result.candidates.forEach((candidate, i) => {
    let text = limitLines(dropRepeatedLines(afterIndentation(candidate.holes[0] ?? '', indent), query.suffix), query.prefix, query.multiline ?? 'always', query.suffix);
    if (query.multiline === 'auto' && !cursorMidLine(query.prefix)) {
      text = cutUnsureLines(text, candidate.lineConfidence, query.minLineConfidence ?? MIN_LINE_CONFIDENCE, query.prefix, query.suffix);
    }
    if (text.trim() === '' || texts.includes(text)) return;
    texts.push(text);
    candidateIndex.push(i);
  });
  return { texts, candidateIndex, result };
}
