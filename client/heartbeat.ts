/**
 * Notices a language server whose main thread is stuck. A crashed server closes its connection and the client
 * restarts it; a server stuck in a loop (issue 15's hang was one) keeps the connection open and never answers, so
 * every completion waits forever. The heartbeat pings the server (PingRequest) every `intervalMs`; a ping unanswered
 * after `timeoutMs` is a miss, and `misses` misses in a row call `onStuck`, once, after which the heartbeat stops
 * (the caller restarts the server and starts it again).
 *
 * An error answer counts as an answer: the connection itself is the close handler's business. A ping whose timer
 * fired far later than asked is not a miss: the client's own event loop was blocked or the machine slept, which says
 * nothing about the server. Pure: the clock, the timers and the ping are passed in.
 */

export interface HeartbeatOptions {
  /** Between the answer (or miss) of one ping and the next ping. */
  readonly intervalMs: number;
  /** A ping unanswered this long is a miss. */
  readonly timeoutMs: number;
  /** Misses in a row that mean the server is stuck. */
  readonly misses: number;
}

/** Generous: the server's main thread only parses and tokenizes (the model runs in its worker), never for seconds. */
export const DEFAULT_HEARTBEAT: HeartbeatOptions = { intervalMs: 15_000, timeoutMs: 10_000, misses: 2 };

export interface HeartbeatDeps {
  /** Sends one ping; resolves (or rejects) when the server answers. */
  ping(): Promise<unknown>;
  /** Whether the server should be pinged now (false while it starts or stops). */
  running(): boolean;
  /** Called once when `misses` pings in a row went unanswered, with how long the server has been silent. */
  onStuck(silentMs: number): void;
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export class Heartbeat {
  private timer: unknown;
  private missed = 0;
  private lastAnswer = 0;
  private active = false;

  constructor(
    private readonly deps: HeartbeatDeps,
    private readonly options: HeartbeatOptions = DEFAULT_HEARTBEAT,
  ) {}

  start(): void {
    this.stop();
    this.active = true;
    this.missed = 0;
    this.lastAnswer = this.deps.now();
    this.schedule();
  }

  stop(): void {
    this.active = false;
    if (this.timer !== undefined) this.deps.clearTimer(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = this.deps.setTimer(() => void this.beat(), this.options.intervalMs);
  }

  private async beat(): Promise<void> {
    this.timer = undefined;
    if (!this.active) return;
    if (!this.deps.running()) {
      this.lastAnswer = this.deps.now();
      this.schedule();
      return;
    }
    const sent = this.deps.now();
    let timeout: unknown;
    const answered = await Promise.race([
      this.deps.ping().then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((resolve) => (timeout = this.deps.setTimer(() => resolve(false), this.options.timeoutMs))),
    ]);
    this.deps.clearTimer(timeout);
    if (!this.active) return;
    const waited = this.deps.now() - sent;
    if (answered) {
      this.missed = 0;
      this.lastAnswer = this.deps.now();
    } else if (waited > 2 * this.options.timeoutMs) {
      // The timeout fired long after it was due: our own loop was blocked or the machine slept. Not the server's fault.
      this.lastAnswer = this.deps.now();
    } else if (++this.missed >= this.options.misses) {
      this.active = false;
      this.deps.onStuck(this.deps.now() - this.lastAnswer);
      return;
    }
    this.schedule();
  }
}
