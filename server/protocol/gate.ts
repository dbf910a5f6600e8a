/**
 * Whether a suggestion made as you type is worth showing (issue 14, item 1: show a suggestion only when it is likely
 * right). A small local model is often wrong, and a wrong ghost text costs the reader attention, so the suggestion
 * that would be shown gets a score, the estimated probability that its first line is exactly right, and is shown only
 * when the score reaches `unmask.minConfidence` (0 shows every one, 1 none). Explicit requests (Ctrl+Alt+\, the
 * candidates panel, commands) are never gated. No LSP types here.
 *
 * The score is a logistic regression on the numbers engine/gate-features.ts computes: whether the copy candidate is
 * shown, the length of its repeated run and whether the model's best row says the same, whether the cursor is inside
 * a line, whether the batch's rows agree on the first line, and the least probable first-line token of the best row.
 * The weights are fitted on a calibration set of held-out tasks, not the reported ones (models/recipe/scripts/
 * eval_calibrate.py prints them with the recommended default; the model card has the curve). The mean probability
 * of the row's tokens, the gate before this one, barely separates right rows from wrong ones and is not used.
 */
import type { GateFeatures } from '../engine/gate-features';

/** The logistic model: score = 1 / (1 + exp(-(bias + sum of weight x feature))). */
export interface GateWeights {
  readonly bias: number;
  /** 1 when the copy candidate is shown. */
  readonly copy: number;
  /** log2 of the copy's repeated run in characters (0 for a model row). */
  readonly copyRunLog2: number;
  /** 1 when the model's best row has the copy's first line. */
  readonly copyAgrees: number;
  /** 1 when the cursor's line holds text before the cursor. */
  readonly midLine: number;
  /** The share of the batch's other rows with the best row's first line (0..1). */
  readonly agreement: number;
  /** The best row's least probable first-line token (0..1). */
  readonly firstLineMin: number;
}

/**
 * Fitted by eval_calibrate.py on 900 calibration tasks of the shipped model (2 ranked rows, the copy offered from a run
 * of 4 and first from 12 or when the best row agrees, unsure lines cut at a line start, cache n-gram on). Every weight but the copy's own is positive: a
 * long repeated run, a model that writes the copy's line too, a started line and rows that agree each make a right
 * first line likelier.
 */
export const GATE_WEIGHTS: GateWeights = Object.freeze({
  bias: -3.957,
  copy: -1.756,
  copyRunLog2: 0.547,
  copyAgrees: 0.782,
  midLine: 0.931,
  agreement: 0.831,
  firstLineMin: 2.899,
});

/** The estimated probability (0..1) that the suggestion's first line is exactly right. */
export function gateScore(f: GateFeatures, weights: GateWeights = GATE_WEIGHTS): number {
  const copy = f.source === 'copy';
  const z =
    weights.bias +
    (copy ? weights.copy + weights.copyRunLog2 * Math.log2(Math.max(f.copyRun, 1)) : 0) +
    (f.copyAgrees ? weights.copyAgrees : 0) +
    (f.midLine ? weights.midLine : 0) +
    weights.agreement * f.agreement +
    weights.firstLineMin * f.firstLineMin;
  return 1 / (1 + Math.exp(-z));
}

/**
 * Whether to show the suggestion described by `gate` (undefined: there is none): always when asked for explicitly or
 * at `minConfidence` 0, never at 1, otherwise when its score reaches `minConfidence`.
 */
export function worthShowing(gate: GateFeatures | undefined, minConfidence: number, explicit: boolean): boolean {
  if (gate === undefined) return false;
  if (explicit || minConfidence <= 0) return true;
  if (minConfidence >= 1) return false;
  return gateScore(gate) >= minConfidence;
}

/** The score and what it was made of, for the log line of a withheld suggestion. */
export function describeGate(gate: GateFeatures): string {
  const what =
    gate.source === 'copy'
      ? `a copy of a ${gate.copyRun}-character run, ${gate.copyAgrees ? 'the model agrees' : 'the model writes otherwise'}`
      : 'a model row';
  return (
    `gate score ${gateScore(gate).toFixed(3)}: ${what}, ${gate.midLine ? 'inside a line' : 'at a line start'}, ` +
    `rows agree ${gate.agreement.toFixed(2)}, least first-line token probability ${gate.firstLineMin.toFixed(2)}`
  );
}
