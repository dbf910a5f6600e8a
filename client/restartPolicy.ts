/**
 * Decides whether a crashed language server is restarted: yes, unless it crashed `maxRestarts` times within
 * `windowMs` (then it is likely to crash again at once, and the user is asked instead). Pure: the clock is passed in.
 */
export interface RestartPolicyOptions {
  readonly maxRestarts: number;
  readonly windowMs: number;
}

export class RestartPolicy {
  private crashes: number[] = [];

  constructor(private readonly options: RestartPolicyOptions = { maxRestarts: 4, windowMs: 3 * 60_000 }) {}

  /** Records a crash at `nowMs` and says whether to restart the server. */
  shouldRestart(nowMs: number): boolean {
    this.crashes = this.crashes.filter((t) => nowMs - t < this.options.windowMs);
    this.crashes.push(nowMs);
    return this.crashes.length <= this.options.maxRestarts;
  }

  /** Forgets past crashes (after the user restarts the server by hand). */
  reset(): void {
    this.crashes = [];
  }
}
