/**
 * Token healing: the cursor inside a word. The model was trained on spans that start at token boundaries, but a
 * prefix typed up to `token.start_ma` encodes as `... .start _ ma`, and a canvas that ends in `ma` right before the
 * masks is a shape the model never saw (it answers with noise instead of `rks`). So the canvas backs up over the
 * prefix's last token (`ma`, the "partial" text) and the hole's first position may only take a token whose text
 * starts with it (`ma`, `mark`, `marks`, ...); the completion shown is the span's text minus the partial, so it still
 * goes in at the cursor. The recipe's sample.py (`heal_tail`) implements the same rule; the fixture
 * test/fixtures/healing-cases.json holds both to it.
 *
 * The rule, for the text before a hole and its tokens:
 *   - no healing when the text ends in a line break: the pre-tokenizer always ends a piece at the last line break of a
 *     whitespace run, so the boundary is certain, and a hole at a line start is the model's line-aligned training
 *     shape (server/protocol/completion.ts starts the hole there when the cursor sits in indentation);
 *   - the partial is the text of the shortest run of last tokens (at most MAX_HEALED_TOKENS) that decodes cleanly (a
 *     byte-level token can hold part of a character) and is a suffix of the text;
 *   - it heals only when one vocabulary token spells the partial exactly (the fallback below) and another one extends
 *     it; when none extends it, the only allowed token would be the one removed, and healing could change nothing.
 * The hole's first position then chooses from its K-best list minus the tokens that do not start with the partial
 * (not renormalised, like end-of-span at a hole's first position). One position carries the whole constraint, so it
 * holds whatever order the sampler commits positions in; still, that position is committed in the first step, so
 * every other position is decided knowing the whole word (sampler.ts, rule 5). When no entry of the list starts
 * with the partial, that position takes the fallback, the token that spells the partial: the context then reads as
 * it would without healing, and the commit is the sampler's, not the model's.
 *
 * Not done: a partial that spans a split the tokenizer would not make (`return sel` encodes as ` return`, ` `, `sel`
 * because ` sel` is no token, so ` self` is never offered); backing up to the start of the pre-tokenizer's piece
 * would need a chain of constrained positions.
 */
import type { TextCodec } from './types';

/** A character is at most 4 UTF-8 bytes, so a clean tail never needs more byte-level tokens than this. */
export const MAX_HEALED_TOKENS = 4;

/** How the first position of one hole is constrained (plain data: it crosses to the inference worker). */
export interface FirstTokenRule {
  /** Token ids whose text starts with the partial, ascending. */
  readonly allowed: readonly number[];
  /** The token that spells the partial exactly: taken when the K-best list holds no allowed token. */
  readonly fallback: number;
}

export interface TokenHealing extends FirstTokenRule {
  /** The text removed from the end of the context: the completion starts with it, and it is cut off again. */
  readonly partial: string;
  /** How many tokens were removed from the end of the context. */
  readonly removed: number;
}

/**
 * The healing for the text before a hole, or undefined when it ends at a certain token boundary. `tokens` are the
 * tokens of (the end of) `text`, as the canvas holds them; `pieces[id]` is token id's text decoded alone ("" for
 * special ids).
 */
export function healTail(tokens: readonly number[], text: string, decode: TextCodec['decode'], pieces: readonly string[]): TokenHealing | undefined {
  if (tokens.length === 0 || text === '' || /[\r\n]$/.test(text)) return undefined;
  for (let removed = 1; removed <= Math.min(MAX_HEALED_TOKENS, tokens.length); removed++) {
    const partial = decode(tokens.slice(tokens.length - removed));
    if (partial === '' || partial.includes('\uFFFD') || !text.endsWith(partial)) continue;
    const rule = firstTokenRule(partial, pieces);
    return rule && { ...rule, partial, removed };
  }
  return undefined;
}

/** The ids whose text starts with `partial` and the one that spells it, when one does and another extends it. */
export function firstTokenRule(partial: string, pieces: readonly string[]): FirstTokenRule | undefined {
  const allowed: number[] = [];
  let fallback = -1;
  let extended = false;
  for (let id = 0; id < pieces.length; id++) {
    const piece = pieces[id];
    if (!piece.startsWith(partial)) continue;
    allowed.push(id);
    if (piece.length > partial.length) extended = true;
    else if (fallback < 0) fallback = id;
  }
  if (fallback < 0 || !extended) return undefined;
  return { allowed, fallback };
}

/** The completion at the cursor: the span's text minus the partial it starts with. */
export function afterPartial(text: string, partial: string): string {
  return text.startsWith(partial) ? text.slice(partial.length) : text;
}
