/**
 * What the unmasking-order view (visualizer.ts, media/visualizer.js) draws, computed from a generation's trace
 * (`unmask/trace`, `unmask/lastTrace`): every mask position of every hole in document order, with the step that
 * committed it, its commit rank and its confidence, plus how many tokens each step committed and the AR-ness@k of
 * the decoding order. The webview only builds the DOM from this once and toggles classes while it replays, so all
 * the bookkeeping lives here, where it is unit-tested. Pure: it imports nothing but types.
 */
import type { TraceParams } from '../server/protocol/messages';

/** One mask position of a hole. */
export interface ReplayCell {
  /** 0-based step that committed it; -1 while it is still masked (a live trace). */
  readonly step: number;
  /** Its rank in commit order (0-based); -1 while masked. */
  readonly order: number;
  /** The token's text as shown: newlines as "↵" plus a line break, tabs as "→"; "" for end-of-span. */
  readonly text: string;
  /** Probability of the token when it was committed (0 while masked). */
  readonly confidence: number;
  /** End-of-span: the hole's text ends at the first one. */
  readonly eos: boolean;
  /** Committed by the sampler rather than by the model: end-of-span fill, or token healing's fallback. */
  readonly filled: boolean;
  /** After the hole's first end-of-span: committed, but cut from the text that was inserted. */
  readonly trimmed: boolean;
}

export interface ReplayArness {
  readonly k: number;
  /** null where undefined (too few tokens for this k). */
  readonly local: number | null;
  readonly global: number | null;
}

export interface Replay {
  /** Identifies the generation and how far it got: a restored view keeps its position when the key is unchanged. */
  readonly key: string;
  readonly kind: TraceParams['kind'];
  /** The document's file name ("" when the trace has no document). */
  readonly file: string;
  /** Steps done (the replay's last position); a live trace grows step by step. */
  readonly steps: number;
  readonly plannedSteps: number;
  /** The latency budget cut the steps: the last one committed every remaining token at once. */
  readonly cutByDeadline: boolean;
  readonly partial: boolean;
  /** A partial trace whose generation ended without a final one (cancelled, or failed) after `steps` steps. */
  readonly stopped: boolean;
  readonly latencyMs: number | null;
  /** holes[h][i] = mask position i of hole h. */
  readonly holes: ReplayCell[][];
  /** committedAt[s] = tokens committed in step s. */
  readonly committedAt: number[];
  /** Tokens committed so far, over all holes. */
  readonly committed: number;
  /** Mask positions over all holes. */
  readonly positions: number;
  readonly arness: ReplayArness[];
}

/** A token's text made visible: a newline shows as "↵" before the line break, a tab as "→". */
export function displayText(text: string): string {
  return text.replace(/\r?\n/g, '↵\n').replace(/\t/g, '→');
}

function fileName(uri: string): string {
  const path = uri.split(/[?#]/)[0];
  const name = path.slice(path.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/**
 * The view of a trace; `stopped` says that its generation was cancelled (see Replay.stopped). Tokens outside the
 * trace's holes are ignored (they cannot be drawn anywhere).
 */
export function replayOf(trace: TraceParams, stopped = false): Replay {
  const masked: ReplayCell = { step: -1, order: -1, text: '', confidence: 0, eos: false, filled: false, trimmed: false };
  const holes: ReplayCell[][] = trace.holeLengths.map((length) => Array.from({ length: Math.max(0, length) }, () => masked));
  const committedAt = Array.from({ length: Math.max(0, trace.steps) }, () => 0);
  let committed = 0;
  trace.tokens.forEach((token, order) => {
    const hole = holes[token.hole];
    if (!hole || token.index < 0 || token.index >= hole.length) return;
    hole[token.index] = {
      step: token.step,
      order,
      text: token.eos ? '' : displayText(token.text),
      confidence: token.confidence,
      eos: token.eos,
      filled: token.filled,
      trimmed: false,
    };
    if (token.step >= 0 && token.step < committedAt.length) committedAt[token.step] += 1;
    committed += 1;
  });
  for (const hole of holes) {
    const firstEos = hole.findIndex((cell) => cell.eos);
    if (firstEos < 0) continue;
    for (let i = firstEos + 1; i < hole.length; i++) if (hole[i].step >= 0 && !hole[i].eos) hole[i] = { ...hole[i], trimmed: true };
  }
  const arness = trace.localArness.map((local, i) => ({ k: i + 1, local, global: trace.globalArness[i] ?? null }));
  const orderKey = trace.tokens.map((t) => `${t.hole}.${t.index}@${t.step}`).join(',');
  return {
    key: [trace.uri, trace.kind, trace.steps, trace.plannedSteps, trace.cutByDeadline, trace.partial, stopped, trace.latencyMs ?? '', orderKey].join('|'),
    kind: trace.kind,
    file: fileName(trace.uri),
    steps: trace.steps,
    plannedSteps: trace.plannedSteps,
    cutByDeadline: trace.cutByDeadline,
    partial: trace.partial,
    stopped: trace.partial && stopped,
    latencyMs: trace.latencyMs ?? null,
    holes,
    committedAt,
    committed,
    positions: holes.reduce((sum, hole) => sum + hole.length, 0),
    arness,
  };
}
