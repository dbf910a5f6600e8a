/**
 * Whether a suggestion made as you type is worth showing (issue 14, item 1). A small local model is often wrong, and
 * a wrong ghost text costs the reader attention, so the best row is shown only when the model was confident in it:
 * its mean probability per committed token (the engine's `meanConfidence`) reaches `unmask.minConfidence`. The
 * default is calibrated on the recipe's held-out eval (the model card's gating table: the share of requests shown
 * against the first-line exact match of those shown). A copy candidate (copy-candidate.ts) has its own gate, the
 * length of the repeated run, and is always shown; so is everything asked for explicitly. No LSP types here.
 */

export interface GateInput {
  /** Mean probability of the committed tokens of the row that would be shown (0..1). */
  readonly meanConfidence: number;
  /** "copy" for the copy candidate. */
  readonly source?: 'copy';
}

export function worthShowing(top: GateInput | undefined, minConfidence: number, explicit: boolean): boolean {
  if (top === undefined) return false;
  if (explicit || top.source === 'copy' || minConfidence <= 0) return true;
  return top.meanConfidence >= minConfidence;
}
