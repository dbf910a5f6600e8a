/**
 * Token healing: the cursor inside a word. The model was trained on spans that start at token boundaries, but a
 * prefix typed up to `token.start_ma` encodes as `... .start _ ma`, and a canvas that ends in `ma` right before the
 * masks is a shape the model never saw (it answers with noise instead of `rks`). So the canvas backs up over the
 * prefix's last tokens (`_ma`, the "partial" text), and the hole's first tokens must spell the partial out and go on
 * (`_` `marks`, or `_max`, ...); the completion shown is the span's text minus the partial, so it still goes in at the
 * cursor. The recipe's sample.py (`heal_tail`, `heal_chains`) implements the same rule; the fixture
 * test/fixtures/healing-cases.json holds both to it.
 *
 * What is removed, for the text before a hole and its tokens:
 *   - nothing when the text ends in a line break: the pre-tokenizer always ends a piece at the last line break of a
 *     whitespace run, so the boundary is certain, and a hole at a line start is the model's line-aligned training
 *     shape (server/protocol/completion.ts starts the hole there when the cursor sits in indentation);
 *   - else the longest run of last tokens (at most MAX_HEALED_TOKENS) whose text decodes cleanly (a byte-level token
 *     can hold part of a character), is a suffix of the text, and is strictly extended by some vocabulary token: a
 *     text that one token can hold and continue may be cut anywhere by the prefix's encoding (` tot` encodes as ` t`
 *     `ot`, while the model learned ` total`); when no run qualifies, the text ends at a boundary and nothing is
 *     removed.
 *
 * The constraint (sampler.ts, rule 5): in the first step, the hole's first positions are decided left to right from
 * their K-best lists, each keeping only the tokens compatible with what is left of the partial: a token that starts
 * with it (the partial is spelled, the chain ends) or a shorter one that it starts with (the next position continues
 * with the rest). The list is not renormalised (like end-of-span at a hole's first position). Deciding them first
 * means every other position is written knowing the whole word, and the constraint cannot be broken by another
 * commit. When some position of the chain has no compatible token in its list, the hole's first positions take the
 * removed tokens themselves (the fallback): the text then reads as it did before healing, and those commits are the
 * sampler's, not the model's.
 */

/** A character is at most 4 UTF-8 bytes, and a word cut by the cursor is rarely more than 4 tokens. */
export const MAX_HEALED_TOKENS = 4;

/** How a hole's first positions are constrained (plain data: it crosses to the inference worker). */
export interface FirstTokenRule {
  /** The text the hole's first tokens must spell out (and may extend). */
  readonly partial: string;
  /** Every token compatible with some suffix of the partial, ascending, and its text (`texts[i]` is `ids[i]`'s). */
  readonly ids: readonly number[];
  readonly texts: readonly string[];
  /** The removed tokens: the hole's first positions take them when a chain finds no compatible listed token. */
  readonly fallback: readonly number[];
}

/**
 * The rule for the text before a hole, or undefined when it ends at a certain token boundary. `tokens` are the tokens
 * of (the end of) `text`, as the canvas holds them; `pieces[id]` is token id's text decoded alone ("" for special
 * ids). The canvas drops the last `fallback.length` tokens.
 */
export function healTail(tokens: readonly number[], text: string, decode: (ids: readonly number[]) => string, pieces: readonly string[]): FirstTokenRule | undefined {
  if (tokens.length === 0 || text === '' || /[\r\n]$/.test(text)) return undefined;
  let removed = 0;
  let partial = '';
  for (let n = 1; n <= Math.min(MAX_HEALED_TOKENS, tokens.length); n++) {
    const tail = decode(tokens.slice(tokens.length - n));
    if (tail === '' || tail.includes('\uFFFD') || !text.endsWith(tail)) continue;
    if (pieces.some((piece) => piece.length > tail.length && piece.startsWith(tail))) {
      removed = n;
      partial = tail;
    }
  }
  if (removed === 0) return undefined;
  const suffixes = Array.from({ length: partial.length }, (_, k) => partial.slice(k));
  const ids: number[] = [];
  const texts: string[] = [];
  pieces.forEach((piece, id) => {
    if (suffixes.some((suffix) => compatible(piece, suffix) !== undefined)) {
      ids.push(id);
      texts.push(piece);
    }
  });
  return { partial, ids, texts, fallback: tokens.slice(tokens.length - removed) };
}

/**
 * What is left of `remaining` after a token of text `piece`: "" when the token spells it out (and maybe more), the
 * rest when the token is a shorter start of it, undefined when they are not compatible.
 */
export function compatible(piece: string, remaining: string): string | undefined {
  if (piece === '') return undefined;
  if (piece.startsWith(remaining)) return '';
  if (remaining.startsWith(piece)) return remaining.slice(piece.length);
  return undefined;
}

/** The completion at the cursor: the span's text minus the partial it starts with. */
export function afterPartial(text: string, partial: string): string {
  return text.startsWith(partial) ? text.slice(partial.length) : text;
}
