/**
 * What the gate on suggestions made as you type reads (issue 14, item 1; the decision is protocol/gate.ts): numbers
 * about the suggestion that would be shown, each computed here from the engine's own output. The held-out metric is
 * the first line, so the model's numbers are about the first line: the probability of each token that wrote it, and
 * whether the batch's other rows wrote the same line (free self-consistency). A copy candidate is judged by its
 * repeated run and whether the model's best row says the same. Pure: no I/O.
 */

/** One token of a row's span in order: its text alone (undefined for the end-of-span) and its commit's numbers. */
export interface SpanToken {
  readonly text: string | undefined;
  /** Probability under the sampling distribution when it was committed (Commit.confidence). */
  readonly confidence: number;
  /** Natural log-probability under the model's untempered distribution (Commit.logProb). */
  readonly logProb: number;
}

export interface FirstLineStats {
  /** Tokens that wrote the first line: up to and including the one that ends it (a newline or the end-of-span). */
  readonly tokens: number;
  /** Mean probability of those tokens (0 without any). */
  readonly meanConfidence: number;
  /** The least probable of them (0 without any). */
  readonly minConfidence: number;
}

/**
 * The first line's numbers from a span's tokens in order. The line ends at the first token whose text holds a newline
 * or at the end-of-span, whichever comes first; that token decided where the line ends and counts.
 */
export function firstLineStats(tokens: readonly SpanToken[]): FirstLineStats {
  let count = 0;
  let sum = 0;
  let min = Infinity;
  for (const token of tokens) {
    count++;
    sum += token.confidence;
    min = Math.min(min, token.confidence);
    if (token.text === undefined || token.text.includes('\n')) break;
  }
  return count === 0 ? { tokens: 0, meanConfidence: 0, minConfidence: 0 } : { tokens: count, meanConfidence: sum / count, minConfidence: min };
}

/**
 * The least probability of the tokens that wrote each line, in order: a token that holds a line break ends its line
 * (as firstLineStats counts it), and each further break in it ends an empty line at the same probability. The last
 * entry is the unfinished line after the last break, when a token wrote one.
 */
export function lineMinConfidences(tokens: readonly SpanToken[]): number[] {
  const mins: number[] = [];
  let min = Infinity;
  for (const token of tokens) {
    if (token.text === undefined) break;
    min = Math.min(min, token.confidence);
    const breaks = token.text.split('\n').length - 1;
    for (let b = 0; b < breaks; b++) {
      mins.push(min);
      min = b + 1 < breaks ? token.confidence : Infinity;
    }
  }
  if (min !== Infinity) mins.push(min);
  return mins;
}

/** The first line of a completion, without the whitespace around it: what two rows are compared on. */
export function firstLineKey(text: string): string {
  const newline = text.indexOf('\n');
  return (newline === -1 ? text : text.slice(0, newline)).trim();
}

/**
 * The share of the other rows of a batch whose first line is this one's (0..1; 0 with no other row). Blank rows
 * (`undefined`: dropped as whitespace) never agree.
 */
export function firstLineAgreement(own: string, others: readonly (string | undefined)[]): number {
  if (others.length === 0) return 0;
  const key = firstLineKey(own);
  return others.filter((text) => text !== undefined && firstLineKey(text) === key).length / others.length;
}

/** The numbers of the suggestion that would be shown, as the gate reads them. */
export interface GateFeatures {
  /** "copy" when the copy candidate is shown (the model's row that says the same counts as a copy too), else "model". */
  readonly source: 'copy' | 'model';
  /** The copy's repeated run in characters (engine/copy-lookup.ts matchLength); 0 when no copy is offered. */
  readonly copyRun: number;
  /** Whether the model's best row has the copy's first line (the model and the file agree). */
  readonly copyAgrees: boolean;
  /** The shown model row's first-line mean token probability (of the best model row for a copy; 0 without one). */
  readonly firstLineMean: number;
  /** ... and its least probable first-line token. */
  readonly firstLineMin: number;
  /** The share of the batch's other rows with the same first line (firstLineAgreement). */
  readonly agreement: number;
  /**
   * Whether the cursor's line holds text before the cursor (typing inside a line, not at its start after Enter): the
   * rest of a started line is easier to get right than a whole new one.
   */
  readonly midLine: boolean;
}

/** A model row as the gate sees it: its text and the engine's numbers for it. */
export interface GateRow {
  readonly text: string;
  readonly firstLine: FirstLineStats;
  readonly agreement: number;
}

/** Whether the text before the cursor on its line holds more than whitespace. */
export function cursorMidLine(before: string): boolean {
  return /\S/u.test(before.slice(before.lastIndexOf('\n') + 1));
}

/**
 * The gate's numbers for a request: `best` is the model's top-ranked row (undefined when every row came out blank),
 * `copy` the copy candidate when it goes first (undefined when none does: protocol/copy-candidate.ts leadingCopy),
 * `before` the document's text before the cursor. A copy that the best row repeats (near-duplicates) is shown as that
 * row (withCopyRow); either way the copy is what is judged, with whether the best row has its first line.
 */
export function gateFeatures(
  best: GateRow | undefined,
  copy: { readonly text: string; readonly matchLength: number } | undefined,
  before: string,
): GateFeatures {
  const model = {
    firstLineMean: best?.firstLine.meanConfidence ?? 0,
    firstLineMin: best?.firstLine.minConfidence ?? 0,
    agreement: best?.agreement ?? 0,
    midLine: cursorMidLine(before),
  };
  if (copy === undefined) return { source: 'model', copyRun: 0, copyAgrees: false, ...model };
  const copyAgrees = best !== undefined && firstLineKey(best.text) === firstLineKey(copy.text);
  return { source: 'copy', copyRun: copy.matchLength, copyAgrees, ...model };
}
