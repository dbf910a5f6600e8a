/** Converts the engine's trace into the `unmask/trace` message the visualizer reads. */
import type { Trace } from '../engine/trace';
import type { TraceParams } from './messages';

/** JSON has no NaN: undefined AR-ness values travel as null. */
const finiteOrNull = (values: readonly number[]): (number | null)[] => values.map((v) => (Number.isFinite(v) ? v : null));

export function traceParams(trace: Trace, uri: string, kind: TraceParams['kind'], partial: boolean, latencyMs?: number): TraceParams {
  return {
    uri,
    kind,
    steps: trace.steps,
    plannedSteps: trace.plannedSteps,
    cutByDeadline: trace.cutByDeadline,
    holeLengths: [...trace.holeLengths],
    ...(trace.relatedTokens > 0 ? { relatedTokens: trace.relatedTokens } : {}),
    tokens: trace.tokens.map((t) => ({
      index: t.index,
      hole: t.hole,
      step: t.step,
      text: t.text,
      confidence: t.confidence,
      eos: t.eos,
      filled: t.filled,
    })),
    localArness: finiteOrNull(trace.localArness),
    globalArness: finiteOrNull(trace.globalArness),
    partial,
    ...(latencyMs !== undefined ? { latencyMs: Math.round(latencyMs) } : {}),
  };
}
