/**
 * One generation running in the inference worker (worker.ts `sample`), seen from the main thread: it rebuilds the
 * sampler's progress from the per-step messages for the caller's onStep hook, turns the caller's abort signal into an
 * `abortSample` message, and settles the caller's promise with the result, an AbortError, or the worker's error.
 */
import { AbortError } from '../engine/errors';
import type { Commit, SamplerHooks, SamplerResult } from '../engine/sampler';
import type { ProgressMessage, SampledMessage, SampleFailedMessage } from './worker-messages';

export class RemoteGeneration {
  /** Per row, every commit so far (the worker sends each step's new ones). */
  private readonly commits: Commit[][];
  /** The caller hears of the abort at once; the worker stops before its next step and its answer is dropped. */
  private readonly onAbort = (): void => {
    this.cancel();
    this.settle(() => this.reject(new AbortError()));
  };
  private settled = false;

  constructor(
    batch: number,
    private readonly hooks: SamplerHooks,
    private readonly resolve: (result: SamplerResult) => void,
    private readonly reject: (err: Error) => void,
    /** Asks the worker to stop before its next step. */
    private readonly cancel: () => void,
  ) {
    this.commits = Array.from({ length: batch }, () => []);
    hooks.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  progress(m: ProgressMessage): void {
    m.commits.forEach((row, r) => this.commits[r].push(...row));
    this.hooks.onStep?.({ step: m.step, commits: this.commits });
  }

  finish(m: SampledMessage): void {
    this.settle(() => this.resolve(m.result));
  }

  failed(m: SampleFailedMessage): void {
    this.settle(() => this.reject(m.aborted ? new AbortError() : Object.assign(new Error(m.message), { name: m.name })));
  }

  /** The worker ended before answering. */
  lost(reason: string): void {
    this.settle(() => this.reject(new Error(`Generation aborted: ${reason}`)));
  }

  private settle(how: () => void): void {
    if (this.settled) return;
    this.settled = true;
    this.hooks.signal?.removeEventListener('abort', this.onAbort);
    how();
  }
}
