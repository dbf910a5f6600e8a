/**
 * Messages between the main thread (model.ts) and the inference worker (worker.ts). Typed arrays travel as
 * transferables, so a step moves its ids in and its logits out without copying.
 */
import type { DeviceSetting } from './providers';

/** Main thread -> worker: create the session, planning providers for `device` and trying each in turn. */
export interface LoadMessage {
  type: 'load';
  modelFile: string;
  device: DeviceSetting;
  /** Intra-op threads; 0 lets onnxruntime choose. */
  threads: number;
}
/** Main thread -> worker: one forward pass. `ids` is [batch, seqLen], `positions` is [batch, numPositions]. */
export interface RunMessage {
  type: 'run';
  id: number;
  ids: Int32Array;
  batch: number;
  seqLen: number;
  positions: Int32Array;
  numPositions: number;
}
/** Main thread -> worker: release the session; the worker answers `disposed` and the main thread ends it. */
export interface DisposeMessage {
  type: 'dispose';
}
export type ToWorker = LoadMessage | RunMessage | DisposeMessage;

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
  ms: number;
}
export interface LoadFailedMessage {
  type: 'loadFailed';
  message: string;
}
/** Worker -> main thread: logits [batch, numPositions, vocab] of run `id`, and the time spent inside onnxruntime. */
export interface ResultMessage {
  type: 'result';
  id: number;
  logits: Float32Array;
  ms: number;
}
export interface RunFailedMessage {
  type: 'runFailed';
  id: number;
  message: string;
}
export interface DisposedMessage {
  type: 'disposed';
}
export type FromWorker = LoadedMessage | LoadFailedMessage | ResultMessage | RunFailedMessage | DisposedMessage;
