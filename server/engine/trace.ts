/**
 * The trace of a generation: which token was committed at which step, with what confidence, in commit order, plus
 * the AR-ness of that order. It is plain data for the unmasking-order visualizer; TraceParams in
 * server/protocol/messages.ts takes its steps, tokens (hole, index, step, text, confidence) and AR-ness arrays as
 * they are. Undefined AR-ness values are NaN, which JSON carries as null.
 */
import { arnessProfile, decodingOrder } from './arness';
import type { Commit } from './sampler';
import { specialTokenIds } from './special-tokens';
import type { ModelFacts, TextCodec } from './types';

export interface TraceToken {
  readonly hole: number;
  /** Index of the token within its hole. */
  readonly index: number;
  /** 0-based step that committed it. */
  readonly step: number;
  readonly tokenId: number;
  /** The token's text ("" for end-of-span and other special tokens). */
  readonly text: string;
  /** Probability of the token when it was committed. */
  readonly confidence: number;
  /** True for end-of-span (the completion ends at the first one in a hole). */
  readonly eos: boolean;
  /**
   * True when the sampler committed it, not the model (end-of-span fill, or token healing's fallback); such tokens
   * are left out of the AR-ness.
   */
  readonly filled: boolean;
}

export interface Trace {
  /** The batch row traced: row 0 while running, the best-ranked candidate's row at the end. */
  readonly row: number;
  /** Steps (model calls) done so far. */
  readonly steps: number;
  /** Steps asked for; a generation may end earlier when every mask is resolved. */
  readonly plannedSteps: number;
  /** True when the latency budget made the last step commit every remaining mask before plannedSteps (final traces). */
  readonly cutByDeadline: boolean;
  /** Number of masks in each hole. */
  readonly holeLengths: number[];
  /**
   * Canvas tokens taken by snippets of other files ([FILE] tokens included): context before the document's text,
   * never part of it; the tokens below are hole-relative, so they are unaffected.
   */
  readonly relatedTokens: number;
  /** Every committed token in commit order (by step, left to right within a step). */
  readonly tokens: TraceToken[];
  /** localArness[k - 1] = local AR-ness@k of the model's decisions, k = 1..8. */
  readonly localArness: number[];
  readonly globalArness: number[];
}

/** Turns commits into traces, decoding each token's text once however often the trace is rebuilt. */
export class TraceBuilder {
  private readonly special: ReadonlySet<number>;
  private readonly pieces = new Map<number, string>();

  constructor(
    private readonly codec: TextCodec,
    private readonly facts: ModelFacts,
    private readonly holeLengths: readonly number[],
    private readonly plannedSteps: number,
    private readonly relatedTokens = 0,
  ) {
    this.special = specialTokenIds(facts);
  }

  build(row: number, commits: readonly Commit[], steps: number, cutByDeadline = false): Trace {
    const tokens = commits.map((commit) => ({
      hole: commit.hole,
      index: commit.index,
      step: commit.step,
      tokenId: commit.tokenId,
      text: this.piece(commit.tokenId),
      confidence: commit.confidence,
      eos: commit.tokenId === this.facts.eosId,
      filled: commit.filled,
    }));
    const arness = arnessProfile(decodingOrder(commits.filter((commit) => !commit.filled)));
    return {
      row,
      steps,
      plannedSteps: this.plannedSteps,
      cutByDeadline,
      holeLengths: [...this.holeLengths],
      relatedTokens: this.relatedTokens,
      tokens,
      localArness: arness.local,
      globalArness: arness.global,
    };
  }

  private piece(tokenId: number): string {
    if (this.special.has(tokenId)) return '';
    let text = this.pieces.get(tokenId);
    if (text === undefined) {
      text = this.codec.decode([tokenId]);
      this.pieces.set(tokenId, text);
    }
    return text;
  }
}
