/**
 * Every custom message between the Unmask client and server, declared once. Each says who sends it.
 * Standard LSP messages (textDocument/inlineCompletion, workspace/configuration, ...) are not repeated here.
 * This file imports nothing but types so that the client can share it without pulling in server code.
 */

/** A position or range in a document, as LSP sends them (0-based line, UTF-16 character). */
export interface Pos {
  line: number;
  character: number;
}
export interface Span {
  start: Pos;
  end: Pos;
}

/**
 * The server's lifecycle and last measurement, shown in the status bar. "unloaded": the model was unloaded after
 * unmask.idleUnloadMinutes without a request and loads again on the next one.
 */
export type ServerState = 'loading' | 'ready' | 'busy' | 'error' | 'disabled' | 'unloaded';
export interface StatusParams {
  state: ServerState;
  /** Model id from the manifest, once loaded. */
  modelId?: string;
  /** Execution provider in use ("cpu", "cuda", ...), once loaded. */
  device?: string;
  /** Why the device is not the one asked for (for example a GPU provider that failed to load). */
  deviceNote?: string;
  /** Wall time of the last completed generation, in milliseconds. */
  lastLatencyMs?: number;
  /** Human-readable error when state is "error". */
  message?: string;
  /**
   * Set once the inference worker has been replaced (it crashed, or a generation passed its deadline and it was
   * abandoned): how long the fresh one took and why the one before it ended. Kept until the model is loaded again.
   */
  lastRestart?: string;
  /** How many times the inference worker was replaced since the model loaded; absent before the first time. */
  workerRestarts?: number;
  /**
   * What became of the last suggestion made as you type: shown, or withheld by the gate (unmask.minConfidence), with
   * its score, so that a user who sees no ghost text can tell a withheld suggestion from a server that did nothing.
   */
  lastSuggestion?: string;
}
/** Sent by the server whenever its state changes. */
export const StatusNotification = 'unmask/status';

export interface FillRangeParams {
  textDocument: { uri: string };
  /** The region to replace with generated code (usually the selection). */
  range: Span;
  /** Upper bound on generated tokens; the server rounds up to a span bucket the model knows. */
  maxTokens?: number;
}
export interface FillRangeResult {
  /** The generated text for the range; empty when nothing could be generated. */
  text: string;
  latencyMs: number;
  /** Why the result is empty, when it is. */
  error?: string;
}
/** Sent by the client ("Unmask: Fill Selection"); the client previews the result and edits only on accept. */
export const FillRangeRequest = 'unmask/fillRange';

/** One committed token in a generation trace. */
export interface TraceToken {
  /** Index of the token within its hole. */
  index: number;
  hole: number;
  /** 0-based step that committed it. */
  step: number;
  /** The token's text ("" for end-of-span). */
  text: string;
  /** Probability of the token when it was committed. */
  confidence: number;
  /** End-of-span: the completion ends at the first one in a hole. */
  eos: boolean;
  /** Committed by end-of-span fill rather than by the model (left out of the AR-ness). */
  filled: boolean;
}
export interface TraceParams {
  /** Document the generation was for ("" for the CLI). */
  uri: string;
  /** Which request produced it: an inline completion, a range fill, a joint hole fill or a candidates run. */
  kind: 'inline' | 'fillRange' | 'fillHoles' | 'candidates';
  /** Steps done so far (model calls). */
  steps: number;
  /** Steps asked for; a generation may end earlier when every mask is resolved. */
  plannedSteps: number;
  /** True when unmask.latencyBudgetMs cut the steps: the last one committed every remaining mask at once. */
  cutByDeadline: boolean;
  /** Number of masks in each hole. */
  holeLengths: number[];
  /**
   * Canvas tokens taken by snippets of other files before the document's text ([FILE] tokens included), when the
   * model reads them (unmask.relatedContextTokens); absent when there were none. Context only: `tokens` are
   * hole-relative.
   */
  relatedTokens?: number;
  /** Committed tokens in commit order. */
  tokens: TraceToken[];
  /** AR-ness@k for k = 1..8 of this decoding order (methods.md section 3); null where undefined. */
  localArness: (number | null)[];
  globalArness: (number | null)[];
  /** True while the generation is still running (live updates), false for the final trace. */
  partial: boolean;
  /** Wall time of the whole generation in milliseconds (final traces only). */
  latencyMs?: number;
}
/** Sent by the client to fetch the trace of the last generation (the visualizer's initial state); null if none yet. */
export const LastTraceRequest = 'unmask/lastTrace';
/**
 * Sent by the client every few seconds (client/heartbeat.ts); the server answers at once with an empty object. A
 * server whose main thread is stuck answers nothing, and the client restarts it.
 */
export const PingRequest = 'unmask/ping';
/** Sent by the server after each denoising step and at the end of each generation, for live visualisation. */
export const TraceNotification = 'unmask/trace';

export interface FillHolesParams {
  textDocument: { uri: string };
  /** The hole markers' ranges in document order; each is replaced by its generated text. */
  holes: { range: Span; maxTokens?: number }[];
}
export interface FillHolesResult {
  /**
   * Generated text per hole, in the order of `holes` ("" for a hole the model left empty); an empty array when
   * nothing could be generated (then `error` says why).
   */
  texts: string[];
  latencyMs: number;
  error?: string;
}
/**
 * Sent by the client ("Unmask: Fill All Holes"): every hole is filled in one joint denoising run, so holes see each
 * other's tokens as they are committed. The client previews and applies the result as one undoable edit.
 */
export const FillHolesRequest = 'unmask/fillHoles';

export interface CandidatesParams {
  textDocument: { uri: string };
  position: Pos;
  /** How many alternatives to generate as one batch (1..16; default: the unmask.candidates setting). */
  count?: number;
  /** Upper bound on generated tokens (default: the unmask.maxSpanTokens setting). */
  maxTokens?: number;
}
export interface CandidateItem {
  /** Text to insert at the position (already trimmed against the text after it). */
  text: string;
  /** Sum of the model's natural log-probabilities of the tokens it chose. */
  logProb: number;
  /** How many tokens logProb sums over (logProb / tokens is the mean log-probability the ranking uses). */
  tokens: number;
  /** Mean probability of the committed tokens when they were committed. */
  meanConfidence: number;
  /** Syntax errors (tree-sitter) in the file with this text inserted; absent when the language has no parser. */
  syntaxErrors?: number;
  /**
   * The discriminator's mean per-token score over the span (log-odds "looks right", or for a distilled model's
   * discriminator "looks like the teacher"); absent when the model folder ships no discriminator or it could not score.
   */
  reward?: number;
  /** The ranking score of server/engine/rerank.ts (likelihood, syntax, reward); higher is better. */
  score: number;
  /**
   * "copy" when the text is the copy candidate (protocol/copy-candidate.ts: what followed the same run of text
   * elsewhere in the document), put first with the best model row's score; absent for the model's rows.
   */
  source?: 'copy';
}
export interface CandidatesResult {
  /** Distinct alternatives, best first, near-duplicates merged; empty when nothing could be generated. */
  candidates: CandidateItem[];
  /** Rows of the one batched generation (the count asked for); 0 when nothing ran. */
  batch: number;
  /** Model calls of that generation (one per denoising step, for all rows at once); 0 when nothing ran. */
  modelCalls: number;
  latencyMs: number;
  error?: string;
}
/**
 * Sent by the client ("Unmask: Regenerate with N Candidates"): N alternatives from one batched generation, ranked by
 * syntax validity, likelihood and, when the model folder ships a discriminator, its reward. The client shows them in a panel and inserts one only when the user accepts it.
 */
export const CandidatesRequest = 'unmask/candidates';
