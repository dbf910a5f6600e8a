/**
 * Builds the canvas the model fills (models/README.md, "Canvas layout"):
 *
 *     <lang tag>  prefix ...  [MASK] x n0  between ...  [MASK] x n1  ...  suffix ...
 *
 * Each hole becomes a run of masks whose length is the requested token count rounded up to one of the model's span
 * buckets. The text around the holes is windowed to a token budget: the tag, the masks and the text together never
 * exceed the model's maximum sequence length, and the text kept is the text nearest the holes. With token healing the
 * text before a hole that ends inside a token loses that token, and the hole's first position is constrained to
 * extend it (healing.ts). A model trained with snippets of other files gets them between the tag and the text
 * (related-context.ts): their tokens come out of the text's budget, which is windowed first, since the snippets are
 * chosen by the windowed text before the first hole.
 */
import { CanvasError, OptionsError } from './errors';
import { healTail, type FirstTokenRule } from './healing';
import { joinTexts } from './ngram-cache';
import { cleanSources, snippetBudget, snippetIds, snippetSourceProblems } from './related-context';
import { specialTokenIds } from './special-tokens';
import type { InfillRequest, ModelFacts, TextCodec } from './types';

/** Where one hole lies in the canvas. */
export interface HoleSpan {
  /** Index of the hole's first mask in the canvas. */
  readonly start: number;
  /** Number of masks: a span bucket. */
  readonly length: number;
  /** The token count that was asked for (at most `length`). */
  readonly requestedTokens: number;
}

export interface Canvas {
  /** One row of token ids: the tag, the windowed text and the masks. */
  readonly ids: Int32Array;
  readonly holes: readonly HoleSpan[];
  /** The key of `langIds` used for the tag ("other" when the language is unknown). */
  readonly languageTag: string;
  /** Tokens of text kept around the holes. */
  readonly contextTokens: number;
  /**
   * Canvas tokens taken by snippets of other files, every [FILE] token included (related-context.ts): they sit right
   * after the tag, before the text; 0 when there are none.
   */
  readonly relatedTokens: number;
  /** Tokens of text left out by the window: 0 when everything fit (a lower bound when a huge segment was cut). */
  readonly droppedTokens: number;
  /** Per hole, the token healing of the text before it (healing.ts); undefined where there is none. */
  readonly healing: readonly (FirstTokenRule | undefined)[];
}

/**
 * VS Code language ids that share a tag with another one: JSX/TSX files are trained as their base language.
 * Used only when the model has no tag of its own for the id.
 */
const LANGUAGE_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  typescriptreact: 'typescript',
  javascriptreact: 'javascript',
});

export const OTHER_LANGUAGE = 'other';

/**
 * How the text budget is shared when not everything fits. The prefix gets the most because the text just before the
 * cursor matters most for what comes next; text between two holes is shared by both; the suffix gets the least.
 */
const PREFIX_WEIGHT = 3;
const BETWEEN_WEIGHT = 2;
const SUFFIX_WEIGHT = 1;

/**
 * No token of a code tokenizer spans more characters than this, so cutting a segment to budget * this many characters
 * before encoding never loses a token the window keeps. It bounds the tokenizer's work on huge files.
 */
const MAX_CHARS_PER_TOKEN = 32;

/** The tag to use for a VS Code language id: its own, its alias's, or "other". */
export function languageTagFor(languageId: string, langIds: Readonly<Record<string, number>>): { tag: string; id: number } {
  const has = (key: string): boolean => Object.prototype.hasOwnProperty.call(langIds, key);
  const lower = languageId.toLowerCase();
  for (const key of [languageId, lower, LANGUAGE_ALIASES[lower]]) {
    if (key !== undefined && has(key)) return { tag: key, id: langIds[key] };
  }
  if (!has(OTHER_LANGUAGE)) {
    throw new CanvasError(`The model has no tag for language "${languageId}" and no "${OTHER_LANGUAGE}" tag to fall back to.`);
  }
  return { tag: OTHER_LANGUAGE, id: langIds[OTHER_LANGUAGE] };
}

/** The smallest span bucket that holds `maxTokens`, or the largest bucket when none does. */
export function spanLengthFor(maxTokens: number, buckets: readonly number[]): number {
  if (buckets.length === 0) throw new CanvasError('The model declares no span buckets.');
  const sorted = [...buckets].sort((a, b) => a - b);
  return sorted.find((bucket) => bucket >= maxTokens) ?? sorted[sorted.length - 1];
}

/**
 * Shares `budget` tokens among segments of the given lengths in proportion to their weights; a segment never gets
 * more than its length, and what it cannot use goes to the others ("water filling"). Rounding leftovers go to the
 * earliest segments with room, which puts them in the prefix first.
 */
export function allocateBudget(lengths: readonly number[], weights: readonly number[], budget: number): number[] {
  const granted = lengths.map(() => 0);
  let remaining = Math.max(0, Math.floor(budget));
  let open = lengths.map((_, i) => i).filter((i) => lengths[i] > 0 && weights[i] > 0);
  while (remaining > 0 && open.length > 0) {
    const totalWeight = open.reduce((sum, i) => sum + weights[i], 0);
    const saturated = open.filter((i) => lengths[i] - granted[i] <= (remaining * weights[i]) / totalWeight);
    if (saturated.length === 0) {
      const shares = open.map((i) => Math.floor((remaining * weights[i]) / totalWeight));
      open.forEach((i, j) => (granted[i] += shares[j]));
      remaining -= shares.reduce((a, b) => a + b, 0);
      for (const i of open) {
        if (remaining === 0) break;
        if (granted[i] < lengths[i]) {
          granted[i] += 1;
          remaining -= 1;
        }
      }
      break;
    }
    for (const i of saturated) {
      remaining -= lengths[i] - granted[i];
      granted[i] = lengths[i];
    }
    open = open.filter((i) => !saturated.includes(i));
  }
  return granted;
}

type SegmentRole = 'prefix' | 'between' | 'suffix';

/** A segment's tokens, encoded from at most the characters the window could ever keep. */
interface EncodedSegment {
  readonly role: SegmentRole;
  /** Tokens from the segment's start (all of them when the segment was not cut). */
  readonly head: readonly number[];
  /** Tokens up to the segment's end (the same array as head when the segment was not cut). */
  readonly tail: readonly number[];
  /** How many tokens the window may choose from. */
  readonly length: number;
}

/**
 * A segment's tokens. Special tokens are removed: the text is the user's, and a tokenizer that parses special-token
 * strings (a file that contains "<|mask|>") must not put a real mask or end-of-span into the context.
 */
function encodeSegment(
  encode: (text: string) => number[],
  text: string,
  role: SegmentRole,
  charLimit: number,
): EncodedSegment {
  // A segment between two holes may keep text from both of its ends, so it may need twice the characters.
  if (text.length <= (role === 'between' ? 2 * charLimit : charLimit)) {
    const tokens = encode(text);
    return { role, head: tokens, tail: tokens, length: tokens.length };
  }
  if (role === 'prefix') {
    const tail = encode(text.slice(text.length - charLimit));
    return { role, head: tail, tail, length: tail.length };
  }
  if (role === 'suffix') {
    const head = encode(text.slice(0, charLimit));
    return { role, head, tail: head, length: head.length };
  }
  const head = encode(text.slice(0, charLimit));
  const tail = encode(text.slice(text.length - charLimit));
  return { role, head, tail, length: head.length + tail.length };
}

/**
 * The `keep` tokens of a segment nearest the holes: the end of the prefix, the start of the suffix, and both ends of
 * a segment between two holes (the middle of a long one is left out).
 */
function windowSegment(segment: EncodedSegment, keep: number): readonly number[] {
  if (keep >= segment.length && segment.head === segment.tail) return segment.head;
  if (segment.role === 'prefix') return segment.tail.slice(segment.tail.length - keep);
  if (segment.role === 'suffix') return segment.head.slice(0, keep);
  let fromHead = Math.min(Math.ceil(keep / 2), segment.head.length);
  let fromTail = keep - fromHead;
  if (fromTail > segment.tail.length) {
    fromTail = segment.tail.length;
    fromHead = keep - fromTail;
  }
  return [...segment.head.slice(0, fromHead), ...segment.tail.slice(segment.tail.length - fromTail)];
}

function requestProblems(request: InfillRequest): string[] {
  const problems: string[] = [];
  if (!Array.isArray(request.holes) || request.holes.length === 0) problems.push('a request needs at least one hole');
  if (!Array.isArray(request.segments) || request.segments.length !== (request.holes?.length ?? 0) + 1) {
    problems.push(`a request with ${request.holes?.length ?? 0} holes needs ${(request.holes?.length ?? 0) + 1} text segments (got ${request.segments?.length ?? 0})`);
  } else if (request.segments.some((segment) => typeof segment !== 'string')) {
    problems.push('every text segment must be a string');
  }
  request.holes?.forEach((hole, i) => {
    if (!Number.isInteger(hole?.maxTokens) || hole.maxTokens < 1) {
      problems.push(`hole ${i}: maxTokens must be a positive integer (got ${String(hole?.maxTokens)})`);
    }
  });
  if (typeof request.languageId !== 'string') problems.push('languageId must be a string');
  problems.push(...snippetSourceProblems(request.snippetSources));
  return problems;
}

/** Whether the tokens a window keeps of a segment run to the segment's end (a segment between two holes keeps its
 * end only when at least two of its tokens are kept, or all of them). */
function keepsEnd(segment: EncodedSegment, keep: number): boolean {
  return segment.role === 'prefix' || keep >= 2 || keep >= segment.length;
}

/**
 * The canvas for a request, with at most `contextTokens` tokens of text (fewer when the model's maximum sequence
 * length leaves less room after the tag and the masks). With `heal` (and a codec that lists its pieces) the text
 * before each hole is healed (healing.ts). With `relatedTokens` above 0, a model that reads snippets of other files
 * (ModelFacts.relatedContext) and request.snippetSources, up to that many of those tokens replace text
 * (related-context.ts). Throws OptionsError for a malformed request and CanvasError when the holes alone do not fit
 * the model.
 */
export function buildCanvas(
  codec: TextCodec,
  facts: ModelFacts,
  request: InfillRequest,
  contextTokens: number,
  heal = false,
  relatedTokens = 0,
): Canvas {
  const problems = requestProblems(request);
  if (problems.length > 0) throw new OptionsError(problems);
  const language = languageTagFor(request.languageId, facts.langIds);
  const spans = request.holes.map((hole) => spanLengthFor(hole.maxTokens, facts.spanBuckets));
  const fixedTokens = 1 + spans.reduce((a, b) => a + b, 0);
  if (fixedTokens > facts.maxSeqLen) {
    throw new CanvasError(
      `${spans.length} hole(s) of ${spans.join(' + ')} tokens plus the language tag need ${fixedTokens} tokens, ` +
        `more than the model's maximum of ${facts.maxSeqLen}.`,
    );
  }
  const room = Math.max(0, Math.min(Math.floor(contextTokens), facts.maxSeqLen - fixedTokens));
  const sources = facts.relatedContext && relatedTokens > 0 ? cleanSources(request.snippetSources, facts) : [];
  // Kept for the snippets before the text is windowed; when fewer are chosen the canvas is just shorter.
  const snippetRoom = snippetBudget(facts, relatedTokens, room, sources.length);
  const budget = room - snippetRoom;
  const last = request.segments.length - 1;
  const special = specialTokenIds(facts);
  const encode = (text: string): number[] => (text.length === 0 ? [] : codec.encode(text).filter((id) => !special.has(id)));
  const segments = request.segments.map((text, i) => {
    const role: SegmentRole = i === 0 ? 'prefix' : i === last ? 'suffix' : 'between';
    return encodeSegment(encode, text, role, Math.max(1, budget) * MAX_CHARS_PER_TOKEN);
  });
  const weights = segments.map((s) => (s.role === 'prefix' ? PREFIX_WEIGHT : s.role === 'suffix' ? SUFFIX_WEIGHT : BETWEEN_WEIGHT));
  const keep = allocateBudget(
    segments.map((s) => s.length),
    weights,
    budget,
  );
  const kept = segments.map((segment, i) => windowSegment(segment, keep[i]));
  const windowed = kept.reduce((sum, tokens) => sum + tokens.length, 0);
  const pieces = heal ? codec.pieces?.() : undefined;
  const healing = spans.map((_, h) =>
    pieces && keepsEnd(segments[h], keep[h]) ? healTail(kept[h], request.segments[h], (ids) => codec.decode(ids), pieces) : undefined,
  );
  healing.forEach((healed, h) => {
    if (healed) kept[h] = kept[h].slice(0, kept[h].length - healed.fallback.length);
  });
  const textTokens = kept.reduce((sum, tokens) => sum + tokens.length, 0);
  // Chosen by the text before the first hole as the canvas holds it: windowed, and healed.
  const snippets = snippetIds(kept[0], sources, codec, facts, snippetRoom);

  const ids = new Int32Array(fixedTokens + snippets.length + textTokens);
  const holes: HoleSpan[] = [];
  let at = 0;
  ids[at++] = language.id;
  ids.set(snippets, at);
  at += snippets.length;
  kept.forEach((tokens, i) => {
    ids.set(tokens, at);
    at += tokens.length;
    if (i < spans.length) {
      holes.push({ start: at, length: spans[i], requestedTokens: request.holes[i].maxTokens });
      ids.fill(facts.maskId, at, at + spans[i]);
      at += spans[i];
    }
  });
  return {
    ids,
    holes,
    languageTag: language.tag,
    contextTokens: textTokens,
    relatedTokens: snippets.length,
    droppedTokens: segments.reduce((sum, s) => sum + s.length, 0) - windowed,
    healing,
  };
}

/**
 * The token ids the cache n-gram model counts (ngram-cache.ts): each text encoded as the canvas's text is (special
 * tokens removed), CACHE_SEPARATOR between texts. `texts` lie around the canvas's holes like the request's segments
 * (InfillRequest.cacheSegments), so where token healing took a hole's partial token off the text before it, the
 * same tokens come off that text here: the cache would otherwise predict the partial token itself, whose text the
 * hole's first position must extend.
 */
export function cacheTokens(codec: TextCodec, facts: ModelFacts, texts: readonly string[], canvas: Pick<Canvas, 'healing'>): Int32Array {
  const special = specialTokenIds(facts);
  const pieces = texts.map((text, i) => {
    const ids = text.length === 0 ? [] : codec.encode(text).filter((id) => !special.has(id));
    const healed = canvas.healing[i];
    return healed ? ids.slice(0, Math.max(0, ids.length - healed.fallback.length)) : ids;
  });
  return joinTexts(pieces);
}
