/**
 * Cancel-aware debounce for inline completion requests. VS Code asks again on every keystroke and cancels the
 * previous request's token, so "debounce" here is: wait a little, and give up early the moment the token is
 * cancelled. Only the request that survives the quiet period reaches the model. It does not import `vscode`.
 */

/** The part of vscode.CancellationToken this module needs. */
export interface CancellationLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => unknown): { dispose(): unknown };
}

/** Timers, injected so that tests can use node:test's mock timers or a fake clock. */
export interface TimerApi {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: TimerApi = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Resolves `true` after `ms` milliseconds, or `false` as soon as the token is cancelled (also when it already is).
 * A delay of 0 or less resolves on the spot, still honouring a cancelled token.
 */
export function quietPeriod(ms: number, token: CancellationLike, timers: TimerApi = realTimers): Promise<boolean> {
  if (token.isCancellationRequested) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const subscription = token.onCancellationRequested(() => {
      timers.clearTimeout(handle);
      subscription.dispose();
      resolve(false);
    });
    const handle = timers.setTimeout(() => {
      subscription.dispose();
      resolve(!token.isCancellationRequested);
    }, ms);
  });
}
