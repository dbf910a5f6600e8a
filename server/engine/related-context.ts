/**
 * How the canvas takes in snippets of other files (issue 14, item 3, route 1; related-snippets.ts chooses them):
 * how many canvas tokens to keep for them, the sources cleaned of ids that must not reach the canvas, which ids end
 * a line, and the ids placed between the language tag and the file's text:
 *
 *     <lang tag>  [FILE] chunk ... [FILE] chunk  [FILE]  prefix ...  [MASK] x n  suffix ...
 *
 * Only a model that declares the layout (ModelFacts.relatedContext, `unmask.related_context`) gets snippets; for any
 * other the canvas is the one it was trained on, with no [FILE] token at all.
 */
import { MIN_CHUNK_TOKENS, QUERY_TOKENS, selectSnippets } from './related-snippets';
import { specialTokenIds } from './special-tokens';
import type { InfillRequest, ModelFacts, TextCodec } from './types';

/**
 * Most token ids of snippet sources looked at, whatever the caller hands in (the server hands in at most
 * RELATED_TOKENS, protocol/document-tokens.ts): each request scores every chunk of them.
 */
export const MAX_SNIPPET_SOURCE_TOKENS = 32 * 1024;

/** Why InfillRequest.snippetSources is malformed, or nothing. */
export function snippetSourceProblems(sources: InfillRequest['snippetSources']): string[] {
  if (sources === undefined) return [];
  if (!Array.isArray(sources) || sources.some((ids) => !(ids instanceof Int32Array))) {
    return ['snippetSources must be a list of Int32Array token ids'];
  }
  return [];
}

/**
 * The sources as the selection sees them: ids that are special (a file that holds "<|mask|>" must not put a real
 * mask into the canvas, as with the file's own text) or outside the vocabulary dropped, empty ones left out (they
 * hold no chunk, so the others keep their order), MAX_SNIPPET_SOURCE_TOKENS in all (a source past it is cut at its end).
 */
export function cleanSources(sources: readonly Int32Array[] | undefined, facts: ModelFacts): Int32Array[] {
  if (!sources) return [];
  const special = specialTokenIds(facts);
  const usable = (id: number): boolean => id >= 0 && id < facts.vocabSize && !special.has(id);
  let room = MAX_SNIPPET_SOURCE_TOKENS;
  const out: Int32Array[] = [];
  for (const ids of sources) {
    if (room <= 0) break;
    const part = ids.length > room ? ids.subarray(0, room) : ids;
    const kept = part.every(usable) ? part : part.filter(usable);
    if (kept.length === 0) continue;
    out.push(kept);
    room -= part.length;
  }
  return out;
}

/**
 * Canvas tokens kept for snippets out of `room` (what the text could have): the caller's budget, capped by the
 * model's maximum and by half the room (the file's own text stays the larger part); 0 when the model reads no
 * snippets, there are no sources, or the budget could not hold one chunk of MIN_CHUNK_TOKENS with its two [FILE]s
 * (then nothing would be chosen and the text would be cut for nothing).
 */
export function snippetBudget(facts: ModelFacts, requested: number, room: number, sources: number): number {
  if (!facts.relatedContext || sources === 0 || !(requested > 0)) return 0;
  const budget = Math.min(Math.floor(requested), facts.relatedContext.maxTokens, Math.floor(room / 2));
  return budget >= MIN_CHUNK_TOKENS + 2 ? budget : 0;
}

const newlineTables = new WeakMap<TextCodec, (id: number) => boolean>();

/**
 * Whether a token's text holds a line break (the trainer's newline table: each id decoded alone), from the codec's
 * pieces when it lists them, else decoding each id once. Kept per codec: a tokenizer's table never changes.
 */
export function newlineTest(codec: TextCodec): (id: number) => boolean {
  let test = newlineTables.get(codec);
  if (!test) {
    const pieces = codec.pieces?.();
    if (pieces) {
      const table = Uint8Array.from(pieces, (piece) => (piece.includes('\n') ? 1 : 0));
      test = (id) => table[id] === 1;
    } else {
      const known = new Map<number, boolean>();
      test = (id) => {
        let is = known.get(id);
        if (is === undefined) known.set(id, (is = codec.decode([id]).includes('\n')));
        return is;
      };
    }
    newlineTables.set(codec, test);
  }
  return test;
}

/**
 * The ids between the language tag and the text: `[FILE] chunk` per chosen snippet (the best last) and one more
 * [FILE], at most `budget` of them; empty when none is chosen. `prefix` is the text before the first hole as the
 * canvas holds it: its last QUERY_TOKENS ids are what the chunks are compared with.
 */
export function snippetIds(
  prefix: readonly number[],
  sources: readonly Int32Array[],
  codec: TextCodec,
  facts: ModelFacts,
  budget: number,
): Int32Array {
  if (budget <= 0 || sources.length === 0) return new Int32Array(0);
  const query = Int32Array.from(prefix.slice(Math.max(0, prefix.length - QUERY_TOKENS)));
  const chunks = selectSnippets(query, sources, newlineTest(codec), budget);
  if (chunks.length === 0) return new Int32Array(0);
  const ids = new Int32Array(chunks.reduce((sum, chunk) => sum + 1 + chunk.length, 1));
  let at = 0;
  for (const chunk of chunks) {
    ids[at++] = facts.fileSepId;
    ids.set(chunk, at);
    at += chunk.length;
  }
  ids[at] = facts.fileSepId;
  return ids;
}
