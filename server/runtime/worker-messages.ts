/**
 * Messages between the main thread (model.ts) and the inference worker (worker.ts). Typed arrays travel as
 * transferables, so a step moves its ids in and its K-best lists out without copying.
 */
import type { Commit, SamplerCanvas, SamplerConfig, SamplerResult } from '../engine/sampler';
import type { KBest } from '../engine/types';
import type { CachedRunInputs } from './cached-context';
import type { DeviceSetting } from './providers';

/**
 * Main thread -> worker: create the session, planning providers for `device` and trying each in turn. With
 * `contextFile` the model is a cached-context denoiser: `modelFile` is its step graph and both sessions are created
 * on the same provider.
 */
export interface LoadMessage {
  type: 'load';
  modelFile: string;
  contextFile?: string;
  device: DeviceSetting;
  /** Intra-op threads; 0 lets onnxruntime choose. */
  threads: number;
}
/** The canvases of one forward pass: `ids` is [batch, seqLen], `positions` is [batch, numPositions]. */
export interface ForwardInputs {
  ids: Int32Array;
  batch: number;
  seqLen: number;
  positions: Int32Array;
  numPositions: number;
}
/** Main thread -> worker: one forward pass of the denoiser. */
export interface RunMessage extends ForwardInputs {
  type: 'run';
  id: number;
}
/**
 * Main thread -> worker: one step of a cached-context model, already split into the two graphs' inputs; the worker
 * runs the context graph only when its cache holds another context.
 */
export interface RunCachedMessage {
  type: 'runCached';
  id: number;
  run: CachedRunInputs;
}
/**
 * Main thread -> worker (discriminator.ts): create the discriminator's session, a second session next to the
 * denoiser's, trying `providers` (the denoiser's) and then the CPU. Answered by `discLoaded` or `runFailed` with `id`.
 */
export interface LoadDiscMessage {
  type: 'loadDisc';
  id: number;
  file: string;
  providers: string[];
  /** Intra-op threads; 0 lets onnxruntime choose. */
  threads: number;
}
/**
 * Main thread -> worker (discriminator.ts): one batched discriminator pass; `ids` is [batch, seqLen], `positions`
 * [batch, numPositions], `t` [batch]. Answered by `scores` or `runFailed` with `id`.
 */
export interface ScoreMessage extends ForwardInputs {
  type: 'score';
  id: number;
  t: Float32Array;
}
/**
 * Main thread -> worker: run a whole denoising generation (the engine's sampleCanvas) next to the session, calling
 * the model once per step without leaving the worker. `allowed` completes the K-best lists (the head's metadata);
 * with `progress` each step is reported by a `progress` message. Answered by `sampled` or `sampleFailed` with `id`.
 */
export interface SampleMessage {
  type: 'sample';
  id: number;
  canvas: SamplerCanvas;
  config: SamplerConfig;
  allowed: number;
  progress: boolean;
}
/** Main thread -> worker: stop generation `id` before its next step (it answers `sampleFailed` with `aborted`). */
export interface AbortSampleMessage {
  type: 'abortSample';
  id: number;
}
/** Main thread -> worker: release the sessions; the worker answers `disposed` and the main thread ends it. */
export interface DisposeMessage {
  type: 'dispose';
}
export type ToWorker =
  | LoadMessage
  | RunMessage
  | RunCachedMessage
  | SampleMessage
  | AbortSampleMessage
  | LoadDiscMessage
  | ScoreMessage
  | DisposeMessage;

export interface IoDescription {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: (number | string)[];
}

/**
 * Worker -> main thread: the session is ready on `device`; `skipped` lists providers not tried and why, `notes` why
 * tried ones failed.
 */
export interface LoadedMessage {
  type: 'loaded';
  device: string;
  skipped: string[];
  notes: string[];
  inputs: IoDescription[];
  outputs: IoDescription[];
  /** The context graph's inputs and outputs, for a cached-context model. */
  context?: { inputs: IoDescription[]; outputs: IoDescription[] };
  ms: number;
}
export interface LoadFailedMessage {
  type: 'loadFailed';
  message: string;
}
/**
 * Worker -> main thread: the K-best lists of run `id` (the graph's head outputs top_logits, top_ids [batch,
 * numPositions, k] and log_z [batch, numPositions]), the time spent inside onnxruntime, and whether the run included
 * a pass of the context graph (a cached-context model whose cache missed).
 */
export interface ResultMessage {
  type: 'result';
  id: number;
  kbest: Omit<KBest, 'allowed'>;
  ms: number;
  contextRan: boolean;
}
/** Worker -> main thread: generation `id` finished `step`; `commits` holds each row's commits of that step only. */
export interface ProgressMessage {
  type: 'progress';
  id: number;
  step: number;
  commits: Commit[][];
}
/**
 * Worker -> main thread: generation `id` finished, with the time its steps spent inside onnxruntime and how many of
 * them ran the context graph (for the runtime's statistics).
 */
export interface SampledMessage {
  type: 'sampled';
  id: number;
  result: SamplerResult;
  onnxMs: number;
  contextCalls: number;
}
/** Worker -> main thread: generation `id` failed (`name` is the error's class name) or was aborted. */
export interface SampleFailedMessage {
  type: 'sampleFailed';
  id: number;
  name: string;
  message: string;
  aborted: boolean;
}
export interface RunFailedMessage {
  type: 'runFailed';
  id: number;
  message: string;
}
export interface DisposedMessage {
  type: 'disposed';
}
/** Worker -> main thread: the discriminator's session of request `id` is ready on `device`. */
export interface DiscLoadedMessage {
  type: 'discLoaded';
  id: number;
  device: string;
  /** Why earlier providers failed; empty when the first worked. */
  notes: string[];
  inputs: IoDescription[];
  outputs: IoDescription[];
  ms: number;
}
/** Worker -> main thread: the discriminator's scores [batch, numPositions] of request `id`, and the time it took. */
export interface ScoresMessage {
  type: 'scores';
  id: number;
  scores: Float32Array;
  ms: number;
}
export type FromWorker =
  | LoadedMessage
  | LoadFailedMessage
  | ResultMessage
  | ProgressMessage
  | SampledMessage
  | SampleFailedMessage
  | RunFailedMessage
  | DisposedMessage
  | DiscLoadedMessage
  | ScoresMessage;
