/**
 * Loads a model's tokenizer.json with @huggingface/tokenizers (pure JavaScript, fully offline) and exposes it as the
 * engine's TextCodec, after checking that it agrees with the model's facts: every special and language-tag id the
 * model uses is a special token of the tokenizer, named as the manifest says, and the tokenizer fits the vocabulary.
 */
import * as fs from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ModelFacts, TextCodec } from '../engine/types';

export interface LoadedTokenizer {
  readonly codec: TextCodec;
  /** Number of ids the tokenizer can produce (base vocabulary plus added tokens). */
  readonly size: number;
  /** Token string of an id, for traces and error messages. */
  tokenText(id: number): string | undefined;
  /** Whether encoding goes line by line through a cache (false when the tokenizer failed the self-check). */
  readonly lineCache: boolean;
}

interface TokenizerJson {
  added_tokens?: { id: number; content: string; special?: boolean }[];
  model?: { type?: string; vocab?: Record<string, number> | [string, number][] };
}

/**
 * Reads and validates `file` against `facts`. `specialTokens` maps roles (mask, eos, pad, file, lang:<id>) to the strings
 * the manifest names, if any. Throws an Error naming the file and the first mismatch.
 */
export function loadTokenizer(file: string, facts: ModelFacts, specialTokens: Readonly<Record<string, string>> = {}): LoadedTokenizer {
  let json: TokenizerJson;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as TokenizerJson;
  } catch (err) {
    throw new Error(`Tokenizer ${file} is not readable JSON (${(err as Error).message})`);
  }
  if (!json.model || typeof json.model !== 'object') throw new Error(`Tokenizer ${file} has no "model" section`);

  // User text must never turn into control tokens (a file that contains "<|mask|>" would otherwise punch a hole in
  // the canvas), so the tokenizer is built without its added tokens: such strings are encoded as plain text. The
  // special tokens stay in the BPE vocabulary, so ids and token strings are unchanged.
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer({ ...json, added_tokens: [] }, {});
  } catch (err) {
    throw new Error(`Tokenizer ${file} could not be built (${(err as Error).message})`);
  }
  const specials = new Map<number, string>();
  for (const t of json.added_tokens ?? []) if (t.special) specials.set(t.id, t.content);
  const tokenText = (id: number): string | undefined => specials.get(id) ?? tokenizer.id_to_token(id);

  let size = 0;
  for (const id of tokenizer.get_vocab(true).values()) size = Math.max(size, id + 1);
  for (const id of specials.keys()) size = Math.max(size, id + 1);
  if (size > facts.vocabSize) {
    throw new Error(`Tokenizer ${file} has ids up to ${size - 1} but the model's vocabulary has ${facts.vocabSize} entries`);
  }

  const roles: [string, number][] = [
    ['mask', facts.maskId],
    ['eos', facts.eosId],
    ['pad', facts.padId],
    ['file_sep', facts.fileSepId],
    ...Object.entries(facts.langIds).map(([lang, id]): [string, number] => [`lang:${lang}`, id]),
  ];
  for (const [role, id] of roles) {
    const content = specials.get(id);
    if (content === undefined) {
      const actual = tokenizer.id_to_token(id);
      throw new Error(`Tokenizer ${file}: the model's ${role} id ${id} is ${actual === undefined ? 'not in the tokenizer' : `the ordinary token ${JSON.stringify(actual)}`}, expected a special token`);
    }
    // The recipe calls the file separator "file"; the metadata key says file_sep.
    const named = specialTokens[role] ?? (role === 'file_sep' ? specialTokens.file : undefined);
    if (named !== undefined && named !== content) {
      throw new Error(`Tokenizer ${file}: the manifest names ${role} ${JSON.stringify(named)} but id ${id} is ${JSON.stringify(content)}`);
    }
  }

  const encodeText = (text: string): number[] => tokenizer.encode(text, { add_special_tokens: false }).ids;
  const lines = new LineCache(encodeText);
  const chunked = lines.agreesOn(SELF_CHECK_TEXT);
  let pieces: string[] | undefined;
  const codec: TextCodec = {
    encode: (text) => (text === '' ? [] : chunked ? lines.encode(text) : encodeText(text)),
    // Special tokens never reach the user: the sampler trims at end-of-span, and anything else special is dropped.
    decode: (ids) => {
      const kept = ids.filter((id) => !specials.has(id));
      return kept.length === 0 ? '' : tokenizer.decode(kept, { clean_up_tokenization_spaces: false });
    },
    // Token healing's table, built on first use (about 50 ms for 8k ids) and kept: ids decoded one at a time.
    pieces: () =>
      (pieces ??= Array.from({ length: size }, (_, id) =>
        specials.has(id) ? '' : tokenizer.decode([id], { clean_up_tokenization_spaces: false }),
      )),
  };
  return { codec, size, tokenText, lineCache: chunked };
}

/**
 * Places where the pre-tokenizer always starts a new piece, so that text can be encoded piece by piece with the same
 * ids as in one go: right after the last line break of a whitespace run (the run's newlines always end a piece, and
 * the indentation after them always starts one). Holds for the recipe's code regex and GPT-2/Llama-3 style ones;
 * LineCache.agreesOn checks it for the tokenizer at hand before it is used.
 */
const CHUNK_BOUNDARY = /\n(?=[^\S\r\n]*\S)/g;

/** Splits text after each chunk boundary; the pieces concatenate to the text. */
export function splitAtLineStarts(text: string): string[] {
  const pieces: string[] = [];
  let start = 0;
  for (const match of text.matchAll(CHUNK_BOUNDARY)) {
    const end = match.index! + 1;
    pieces.push(text.slice(start, end));
    start = end;
  }
  if (start < text.length) pieces.push(text.slice(start));
  return pieces;
}

/**
 * A copy of `text` that does not keep the string it was sliced from alive. V8 represents a slice of 13 or more
 * characters as a view into its parent, so a cached line keeps the whole document version it was cut from: typing
 * into a 150 KB file filled this cache with a document per keystroke (the bench's soak, issue 15). Concatenating
 * makes V8 flatten into a fresh string; slicing that keeps only it.
 */
export function detachedCopy(text: string): string {
  return (' ' + text).slice(1);
}

/** Most lines kept; a few thousand lines of ids is well under a megabyte. */
const LINE_CACHE_ENTRIES = 8192;

/**
 * Encodes text line by line with a cache: completions ask for nearly the same prefix and suffix at every keystroke,
 * so only the edited line is tokenised again. The pure-JavaScript BPE costs tens of microseconds per character on a
 * busy CPU; without this, a 256-token context costs more to encode than a model call.
 */
export class LineCache {
  /**
   * Line -> its ids, with the key string it was stored under. A hit re-inserts that stored (detached) key: setting the
   * looked-up piece instead would swap in a slice of the current document version, which then keeps that whole
   * version alive (the soak's slow climb in session 7: 383 document versions, 38 MB, held by this map).
   */
  private readonly cache = new Map<string, { readonly key: string; readonly ids: readonly number[] }>();

  constructor(private readonly encodeText: (text: string) => number[]) {}

  encode(text: string): number[] {
    const ids: number[] = [];
    for (const piece of splitAtLineStarts(text)) {
      let entry = this.cache.get(piece);
      if (entry) {
        this.cache.delete(entry.key); // Re-inserted below: Map order is the recency order.
      } else {
        entry = { key: detachedCopy(piece), ids: this.encodeText(piece) };
        if (this.cache.size >= LINE_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
      }
      this.cache.set(entry.key, entry);
      for (const id of entry.ids) ids.push(id);
    }
    return ids;
  }

  /** Whether line-by-line encoding gives the ids of encoding in one go, on a text with every kind of line start. */
  agreesOn(text: string): boolean {
    const whole = this.encodeText(text);
    const pieces = this.encode(text);
    this.cache.clear();
    return whole.length === pieces.length && whole.every((id, i) => id === pieces[i]);
  }
}

/** Code with the line starts that could trip chunked encoding: indentation, blank lines, CRLF, tabs, trailing spaces. */
const SELF_CHECK_TEXT = [
  'import os\n\n\ndef f(x):\n    if x:  \n        return [x, \'y\']\n    \n\treturn None\n',
  'class A {\r\n  run(): void {\r\n    call(1, 2);\r\n  }\r\n}\r\n\r\n// done\n',
  '  \n\n  x = 1\n}\n)\n  .then(() => 0)\n\n\n\n#!/bin/sh\necho "ünï"\n 42\n',
].join('');
