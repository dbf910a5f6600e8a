/**
 * Which snippets of other files go into the canvas (issue 14, item 3, route 1): the chunk selection of a model
 * trained with the "file_sep" layout (models/README.md, "Canvas layout"). It must choose exactly what the trainer
 * chose, so it is a line-for-line twin of models/recipe/unmask/related.py `select`, and one fixture
 * (test/fixtures/related-snippets-cases.json) holds both to it. It works on token ids only, so the two sides need no
 * tokenizer to agree: a model would read a different selection as a canvas it was never trained on.
 *
 * A chunk is CHUNK_LINES lines of another document, chunks starting every CHUNK_STRIDE lines; it is scored by the
 * Jaccard similarity of its distinct ids with the distinct ids of the last QUERY_TOKENS ids before the first hole,
 * and the best ones are taken greedily within the budget (llama.vscode's ring buffer of chunks, on ids).
 */

export const CHUNK_LINES = 8;
export const CHUNK_STRIDE = 4;
/** Ids at the end of the canvas's text before the first hole that the chunks are compared with. */
export const QUERY_TOKENS = 64;
/** A chunk scoring below this shares too little with the query to be worth its canvas tokens. */
export const MIN_SCORE = 0.1;
/** Shorter chunks (and shorter cut tails) are not placed. */
export const MIN_CHUNK_TOKENS = 8;

/** Token range [begin, end) of one chunk inside document `doc` (its index in `others`). */
export interface ChunkRange {
  readonly doc: number;
  readonly begin: number;
  readonly end: number;
}

/**
 * The [begin, end) token ranges of a document's chunks. A line ends right after a token whose text holds a line
 * break; tokens after the last one form a final line. Chunk s covers lines s .. s + CHUNK_LINES - 1 (fewer at the
 * end), for s = 0, CHUNK_STRIDE, ...; the first chunk that reaches the last line is the last chunk.
 */
export function chunkRanges(ids: Int32Array, isNewline: (id: number) => boolean): [number, number][] {
  const ends: number[] = [];
  for (let i = 0; i < ids.length; i++) if (isNewline(ids[i])) ends.push(i + 1);
  if (ids.length > 0 && ends[ends.length - 1] !== ids.length) ends.push(ids.length);
  const lines = ends.length;
  const out: [number, number][] = [];
  for (let s = 0; s < lines; s += CHUNK_STRIDE) {
    const last = Math.min(s + CHUNK_LINES, lines) - 1;
    out.push([s === 0 ? 0 : ends[s - 1], ends[last]]);
    if (last === lines - 1) break;
  }
  return out;
}

/** |set(chunk) ∩ query| / |set(chunk) ∪ query|, as the trainer computes it (a plain double division). */
export function jaccard(chunk: Int32Array, query: ReadonlySet<number>): number {
  const distinct = new Set(chunk);
  let shared = 0;
  for (const id of distinct) if (query.has(id)) shared++;
  return shared / (distinct.size + query.size - shared);
}

/**
 * The chunks chosen, in the order they were chosen (the best first); the last one may be cut to the budget.
 * `budget` is every canvas token the snippets may take: each chunk costs its length plus its [FILE] token, and one
 * more [FILE] ends them before the file's own text.
 */
export function chooseChunks(
  query: Int32Array,
  others: readonly Int32Array[],
  isNewline: (id: number) => boolean,
  budget: number,
): ChunkRange[] {
  const wanted = new Set(query);
  if (wanted.size === 0) return [];
  const candidates: { score: number; doc: number; begin: number; end: number }[] = [];
  others.forEach((ids, doc) => {
    for (const [begin, end] of chunkRanges(ids, isNewline)) {
      if (end - begin < MIN_CHUNK_TOKENS) continue;
      const score = jaccard(ids.subarray(begin, end), wanted);
      if (score >= MIN_SCORE) candidates.push({ score, doc, begin, end });
    }
  });
  // Best score first; ties by document, then by position, so both sides order them alike.
  candidates.sort((a, b) => b.score - a.score || a.doc - b.doc || a.begin - b.begin);
  let remaining = budget - 1;
  const chosen: ChunkRange[] = [];
  for (const { doc, begin, end } of candidates) {
    // Chunks overlap by CHUNK_LINES - CHUNK_STRIDE lines: the same text is never placed twice.
    if (chosen.some((c) => c.doc === doc && c.begin < end && begin < c.end)) continue;
    const cost = 1 + (end - begin);
    if (cost <= remaining) {
      chosen.push({ doc, begin, end });
      remaining -= cost;
    } else {
      if (remaining - 1 >= MIN_CHUNK_TOKENS) chosen.push({ doc, begin, end: begin + remaining - 1 });
      break;
    }
  }
  return chosen;
}

/**
 * The snippets to place before the file's text, in canvas order: the chosen chunks' ids with the best one last,
 * nearest the text it resembles. Empty when none is chosen (then the canvas has no [FILE] token at all).
 */
export function selectSnippets(
  query: Int32Array,
  others: readonly Int32Array[],
  isNewline: (id: number) => boolean,
  budget: number,
): Int32Array[] {
  return chooseChunks(query, others, isNewline, budget)
    .reverse()
    .map(({ doc, begin, end }) => others[doc].subarray(begin, end));
}
