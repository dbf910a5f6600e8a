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

  let full: Tokenizer;
  let plain: Tokenizer;
  try {
    full = new Tokenizer(json, {});
    // User text must never turn into control tokens (a file that contains "<|mask|>" would otherwise punch a hole in
    // the canvas), so text is encoded by a copy that does not match added tokens: such strings become plain bytes.
    plain = new Tokenizer({ ...json, added_tokens: [] }, {});
  } catch (err) {
    throw new Error(`Tokenizer ${file} could not be built (${(err as Error).message})`);
  }

  const vocab = full.get_vocab(true);
  let size = 0;
  for (const id of vocab.values()) size = Math.max(size, id + 1);
  if (size > facts.vocabSize) {
    throw new Error(`Tokenizer ${file} has ids up to ${size - 1} but the model's vocabulary has ${facts.vocabSize} entries`);
  }
  const specials = new Map<number, string>();
  for (const t of json.added_tokens ?? []) if (t.special) specials.set(t.id, t.content);

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
      const actual = full.id_to_token(id);
      throw new Error(`Tokenizer ${file}: the model's ${role} id ${id} is ${actual === undefined ? 'not in the tokenizer' : `the ordinary token ${JSON.stringify(actual)}`}, expected a special token`);
    }
    // The recipe calls the file separator "file"; the metadata key says file_sep.
    const named = specialTokens[role] ?? (role === 'file_sep' ? specialTokens.file : undefined);
    if (named !== undefined && named !== content) {
      throw new Error(`Tokenizer ${file}: the manifest names ${role} ${JSON.stringify(named)} but id ${id} is ${JSON.stringify(content)}`);
    }
  }

  const codec: TextCodec = {
    encode: (text) => (text === '' ? [] : plain.encode(text, { add_special_tokens: false }).ids),
    // Special tokens never reach the user: the sampler trims at end-of-span, and anything else special is dropped.
    decode: (ids) => full.decode([...ids], { skip_special_tokens: true, clean_up_tokenization_spaces: false }),
  };
  return { codec, size, tokenText: (id) => full.id_to_token(id) };
}
