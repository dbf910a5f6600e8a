/**
 * Test doubles for the engine: a character-level codec, the facts of a tiny model, and mock model functions
 * (deterministic pseudo-random logits, and a scripted model whose preferences the test chooses). The mocks compute full
 * logits and answer with the K-best lists a real graph's head would return (test/fixtures/kbest.ts).
 */
import { bannedTokenIds } from '../../server/engine/special-tokens';
import { kbestFromLogits } from '../fixtures/kbest';
import { Mulberry32 } from '../../server/engine/rng';
import type { KBest, ModelFacts, ModelFn, ModelInput, TextCodec } from '../../server/engine/types';
import type { SamplerCanvas, SamplerConfig } from '../../server/engine/sampler';

export const PAD = 0;
export const MASK = 1;
export const EOS = 2;
export const FILE_SEP = 3;
/** Character c is token CHAR_BASE + its code (ASCII only). */
export const CHAR_BASE = 16;
export const VOCAB = CHAR_BASE + 128;

export const FACTS: ModelFacts = Object.freeze({
  vocabSize: VOCAB,
  maxSeqLen: 256,
  maskId: MASK,
  eosId: EOS,
  padId: PAD,
  fileSepId: FILE_SEP,
  langIds: Object.freeze({ python: 4, typescript: 5, javascript: 6, other: 7 }),
  spanBuckets: Object.freeze([8, 16, 32, 64, 128]),
});

const SPECIAL_NAMES: Record<number, string> = { 0: 'pad', 1: 'mask', 2: 'eos', 3: 'file_sep', 4: 'lang:python', 5: 'lang:typescript', 6: 'lang:javascript', 7: 'lang:other' };

/** One token per ASCII character; special tokens decode to visible markup, as a real tokenizer's do. */
export class CharCodec implements TextCodec {
  encodedChars = 0;

  encode(text: string): number[] {
    this.encodedChars += text.length;
    return Array.from(text, (ch) => CHAR_BASE + (ch.charCodeAt(0) < 128 ? ch.charCodeAt(0) : 63));
  }

  decode(ids: readonly number[]): string {
    return ids.map((id) => (id >= CHAR_BASE ? String.fromCharCode(id - CHAR_BASE) : `<|${SPECIAL_NAMES[id] ?? id}|>`)).join('');
  }
}

export const tok = (ch: string): number => CHAR_BASE + ch.charCodeAt(0);

/** A copy of one model call's input, kept for assertions. */
export interface RecordedCall {
  readonly ids: Int32Array;
  readonly batch: number;
  readonly seqLen: number;
  readonly positions: Int32Array;
  readonly numPositions: number;
  readonly holes: ModelInput['holes'];
}

export interface MockModel {
  readonly model: ModelFn;
  readonly calls: RecordedCall[];
}

/** Entries per K-best list of the mocks: fewer than the vocabulary, so that the truncation is exercised too. */
export const MOCK_K = 32;

/** The K-best answer to full mock logits [slots, VOCAB]. */
export function answer(logits: Float32Array, k = MOCK_K): KBest {
  return kbestFromLogits(logits, VOCAB, k, bannedTokenIds(FACTS));
}

function record(calls: RecordedCall[], input: ModelInput): void {
  calls.push({ ...input, ids: input.ids.slice(), positions: input.positions.slice() });
}

/** FNV-1a over a row of ids and a position: the mock's logits depend on the whole canvas, like a real model's. */
function hashRow(ids: Int32Array, start: number, length: number, position: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < start + length; i++) h = Math.imul(h ^ ids[i], 0x01000193);
  return Math.imul(h ^ position, 0x01000193) >>> 0;
}

/** Deterministic pseudo-random logits in [-spread, spread] from a hash of (row ids, position). */
export function hashedModel(spread = 4): MockModel {
  const calls: RecordedCall[] = [];
  const model: ModelFn = async (input) => {
    record(calls, input);
    const out = new Float32Array(input.batch * input.numPositions * VOCAB);
    for (let r = 0; r < input.batch; r++) {
      for (let j = 0; j < input.numPositions; j++) {
        const position = input.positions[r * input.numPositions + j];
        const rng = new Mulberry32(hashRow(input.ids, r * input.seqLen, input.seqLen, position));
        const offset = (r * input.numPositions + j) * VOCAB;
        for (let v = 0; v < VOCAB; v++) out[offset + v] = (rng.next() * 2 - 1) * spread;
      }
    }
    return answer(out);
  };
  return { model, calls };
}

/** What the scripted model prefers at one canvas position: a token and how strongly (its logit; all others are 0). */
export interface Preference {
  readonly token: number;
  readonly strength: number;
}

/**
 * A model with fixed preferences per canvas position, the same in every row and step. Positions without a
 * preference favour end-of-span weakly.
 */
export function scriptedModel(prefer: (position: number) => Preference | undefined): MockModel {
  const calls: RecordedCall[] = [];
  const model: ModelFn = async (input) => {
    record(calls, input);
    const out = new Float32Array(input.batch * input.numPositions * VOCAB);
    for (let r = 0; r < input.batch; r++) {
      for (let j = 0; j < input.numPositions; j++) {
        const position = input.positions[r * input.numPositions + j];
        const preference = prefer(position) ?? { token: EOS, strength: 1 };
        out[(r * input.numPositions + j) * VOCAB + preference.token] = preference.strength;
      }
    }
    return answer(out);
  };
  return { model, calls };
}

/**
 * A scripted model that writes `text` into a hole starting at canvas position `start` and end-of-span after it.
 * Character i gets strength `strengths(i)` (default: a strong, equal preference for every character).
 */
export function textModel(start: number, text: string, strengths: (i: number) => number = () => 12): MockModel {
  return scriptedModel((position) => {
    const i = position - start;
    if (i < 0) return undefined;
    if (i < text.length) return { token: tok(text[i]), strength: strengths(i) };
    return { token: EOS, strength: 12 };
  });
}

/** The position of the first mask of the first hole for a request whose prefix has `prefixChars` characters (no windowing). */
export const holeStartAfter = (prefixChars: number): number => 1 + prefixChars;

/** The sampler tests' canvas: [tag, 'a', 'b', MASK x SPAN, 'c'], one hole at HOLE_START. */
export const HOLE_START = 3;
export const SPAN = 16;
export const spanCanvas: SamplerCanvas = {
  ids: Int32Array.from([4, tok('a'), tok('b'), ...Array<number>(SPAN).fill(MASK), tok('c')]),
  holes: [{ start: HOLE_START, length: SPAN }],
};

/** Greedy 8-step confidence decoding over the mock vocabulary, with `overrides`. */
export const samplerConfig = (overrides: Partial<SamplerConfig> = {}): SamplerConfig => ({
  steps: 8,
  strategy: 'confidence',
  confidenceThreshold: 0,
  topP: 1,
  temperatures: [0],
  seed: 1,
  vocabSize: VOCAB,
  eosId: EOS,
  eosFill: false,
  eosAfterCode: false,
  bannedIds: [MASK, PAD, FILE_SEP, 4, 5, 6, 7],
  ...overrides,
});
