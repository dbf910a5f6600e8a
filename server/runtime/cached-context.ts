/**
 * The cached-context form of a model call (models/README.md, "Cached-context denoiser"). With context_only
 * attention the context's keys and values do not depend on the span, so a request runs the context graph once and
 * every denoising step runs the step graph over the span tokens only. `splitForCache` turns the engine's ModelInput
 * (whole canvases plus the hole layout) into the two graphs' inputs; `ContextCache` remembers the last context so
 * steps 2..N of a request skip the context graph. Pure data: the worker turns these arrays into tensors.
 */
import type { ModelInput } from '../engine/types';

/** The arrays behind the two graphs' inputs for one model call. */
export interface CachedRunInputs {
  readonly batch: number;
  readonly seqLen: number;
  readonly numPositions: number;
  /**
   * Rows of the context graph: 1 when every row has row 0's context (the sampler's candidates always do), so one
   * cache serves the whole batch; else `batch`.
   */
  readonly contextRows: number;
  /** [contextRows, seqLen]: the canvases with 0 at span positions (the context graph never reads them). */
  readonly contextIds: Int32Array;
  /** [seqLen]: 1 at span positions, the same for every row. */
  readonly spanMask: Uint8Array;
  /** [S]: the span positions in canvas order (hole by hole). */
  readonly spanPos: Int32Array;
  /** [batch, S]: each row's current tokens at the span positions (masks or committed tokens). */
  readonly spanIds: Int32Array;
  /** [batch, numPositions]: where each requested position lies in spanPos. */
  readonly outIdx: Int32Array;
}

/**
 * Splits a model input into the context graph's and the step graph's inputs. Throws (naming the holes or the
 * position) when a hole does not fit the canvas in order, when nothing is left as context, or when a requested
 * position lies outside the holes (the step graph computes span positions only).
 */
export function splitForCache(input: ModelInput): CachedRunInputs {
  const { ids, batch, seqLen, positions, numPositions, holes } = input;
  const layout = holes.map((h) => `${h.start}+${h.length}`).join(', ');
  if (holes.length === 0) throw new Error('a cached-context model needs the canvas\'s hole layout (holes is empty)');
  const spanMask = new Uint8Array(seqLen);
  let end = 0;
  for (const { start, length } of holes) {
    if (!Number.isInteger(start) || !Number.isInteger(length) || start < end || length < 1 || start + length > seqLen) {
      throw new Error(`holes [${layout}] must be runs of at least one position, in order, inside [0, ${seqLen})`);
    }
    spanMask.fill(1, start, start + length);
    end = start + length;
  }
  const spanPos = new Int32Array(holes.reduce((sum, h) => sum + h.length, 0));
  if (spanPos.length === seqLen) throw new Error(`holes [${layout}] cover the whole canvas; the context graph needs at least one context position`);
  const indexInSpan = new Int32Array(seqLen).fill(-1);
  let s = 0;
  for (const { start, length } of holes) {
    for (let p = start; p < start + length; p++) {
      indexInSpan[p] = s;
      spanPos[s++] = p;
    }
  }

  const S = spanPos.length;
  const spanIds = new Int32Array(batch * S);
  for (let r = 0; r < batch; r++) for (let j = 0; j < S; j++) spanIds[r * S + j] = ids[r * seqLen + spanPos[j]];
  const outIdx = new Int32Array(batch * numPositions);
  for (let i = 0; i < outIdx.length; i++) {
    const j = indexInSpan[positions[i]];
    if (j < 0) throw new Error(`position ${positions[i]} lies outside the holes [${layout}]; the step graph computes span positions only`);
    outIdx[i] = j;
  }

  const contextRows = sharesRowZeroContext(ids, batch, seqLen, spanMask) ? 1 : batch;
  const contextIds = ids.slice(0, contextRows * seqLen);
  for (let r = 0; r < contextRows; r++) for (const p of spanPos) contextIds[r * seqLen + p] = 0;
  return { batch, seqLen, numPositions, contextRows, contextIds, spanMask, spanPos, spanIds, outIdx };
}

function sharesRowZeroContext(ids: Int32Array, batch: number, seqLen: number, spanMask: Uint8Array): boolean {
  for (let r = 1; r < batch; r++) {
    for (let p = 0; p < seqLen; p++) if (spanMask[p] === 0 && ids[r * seqLen + p] !== ids[p]) return false;
  }
  return true;
}

/** The shapes of one cached call, for error messages that name every input with its dtype and shape. */
export function describeCachedRun(x: Pick<CachedRunInputs, 'batch' | 'seqLen' | 'numPositions' | 'contextRows' | 'spanPos'>): {
  context: string;
  step: string;
} {
  const { batch: B, seqLen: T, numPositions: P, contextRows: Bc } = x;
  const S = x.spanPos.length;
  return {
    context: `input_ids int64 [${Bc}, ${T}], span_mask bool [${Bc}, ${T}]`,
    step:
      `span_ids int64 [${B}, ${S}], span_pos int64 [${B}, ${S}], past_key/past_value float32 [L, ${Bc}, H, ${T}, Dh], ` +
      `context_mask bool [${Bc}, ${T}], out_idx int64 [${B}, ${P}]`,
  };
}

function sameArray(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The cache of the last context the context graph ran on, keyed by its ids and its span mask (the hole layout). One
 * entry: the steps of a request are sequential and a new request usually cancels the previous one, so the last
 * context is the one the next step asks for; any other context replaces it.
 */
export class ContextCache<Value> {
  private key?: { contextIds: Int32Array; spanMask: Uint8Array; contextRows: number };
  private value?: Value;

  /** The cached value when `run` has the cached context and hole layout, else undefined. */
  get(run: CachedRunInputs): Value | undefined {
    const k = this.key;
    if (!k || k.contextRows !== run.contextRows || !sameArray(k.spanMask, run.spanMask) || !sameArray(k.contextIds, run.contextIds)) {
      return undefined;
    }
    return this.value;
  }

  set(run: CachedRunInputs, value: Value): void {
    this.key = { contextIds: run.contextIds.slice(), spanMask: run.spanMask.slice(), contextRows: run.contextRows };
    this.value = value;
  }

  clear(): void {
    this.key = undefined;
    this.value = undefined;
  }
}
