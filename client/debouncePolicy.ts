/**
 * How long an automatic inline request waits before it asks the model, in unmask.debounceMode "adaptive". After
 * Tabby's adaptive debounce (tabby-agent's CompletionDebouncer): the wait is a multiple of the user's own pauses
 * between keystrokes, shorter where a suggestion is likely wanted (the end of a line, after a symbol), minus the time
 * the server has been taking to answer, so that a suggestion appears about when the user would have typed the next
 * key and a burst of typing does not start a generation per keystroke. Pure: the caller passes the time.
 */

export interface DebounceContext {
  /** The character before the cursor ("" at the start of a line). */
  readonly charBefore: string;
  /** Only whitespace follows the cursor on its line. */
  readonly atLineEnd: boolean;
}

/** The adaptive wait never leaves this range, whatever the typing and the server do. */
export const ADAPTIVE_MIN_MS = 50;
export const ADAPTIVE_MAX_MS = 600;
/** A gap longer than this is a pause, not typing: it does not count towards the typing interval. */
const LONGEST_TYPING_GAP_MS = 400;
/** The typing interval is the mean of the last this many gaps, once at least MIN_GAPS of them were seen. */
const GAP_WINDOW = 40;
const MIN_GAPS = 8;
/** The typing interval is taken within this range (Tabby's bounds), so one odd burst cannot make the wait absurd. */
const INTERVAL_MIN_MS = 100;
const INTERVAL_MAX_MS = 400;
/** Wait this many typing intervals: the most mid-word, the fewest after a symbol at the end of a line (Tabby's rates). */
const RATE_MAX = 3;
const RATE_MIN = 1.5;
/** Weight of the newest latency in its moving average: the server's speed changes with load, not per request. */
const LATENCY_WEIGHT = 0.3;

const clamp = (low: number, high: number, value: number): number => Math.min(high, Math.max(low, value));

export class AdaptiveDebounce {
  private readonly gaps: number[] = [];
  private lastKeystroke: number | undefined;
  private latencyMs: number | undefined;

  /** An automatic request arrived at `now` (ms): VS Code sends one per keystroke. */
  keystroke(now: number): void {
    if (this.lastKeystroke !== undefined) {
      const gap = now - this.lastKeystroke;
      if (gap >= 0 && gap <= LONGEST_TYPING_GAP_MS) {
        this.gaps.push(gap);
        if (this.gaps.length > GAP_WINDOW) this.gaps.shift();
      }
    }
    this.lastKeystroke = now;
  }

  /** The server answered a request after `ms` (cancelled requests say nothing about its speed). */
  answered(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    this.latencyMs = this.latencyMs === undefined ? ms : LATENCY_WEIGHT * ms + (1 - LATENCY_WEIGHT) * this.latencyMs;
  }

  /** The mean gap between keystrokes, or undefined while too few have been seen. */
  typingIntervalMs(): number | undefined {
    if (this.gaps.length < MIN_GAPS) return undefined;
    return clamp(INTERVAL_MIN_MS, INTERVAL_MAX_MS, this.gaps.reduce((sum, gap) => sum + gap, 0) / this.gaps.length);
  }

  /** The wait for a request at `context`; `fallbackMs` (unmask.debounceMs) until the typing speed is known. */
  waitMs(context: DebounceContext, fallbackMs: number): number {
    const interval = this.typingIntervalMs();
    if (interval === undefined) return fallbackMs;
    // Tabby's context score without its end-of-document term: half for a symbol or space before the cursor, half
    // for the end of the line, where a suggestion is most often wanted.
    const score = (/^[\w]$/u.test(context.charBefore) ? 0 : 0.5) + (context.atLineEnd ? 0.5 : 0);
    const rate = RATE_MAX - (RATE_MAX - RATE_MIN) * score;
    return Math.round(clamp(ADAPTIVE_MIN_MS, ADAPTIVE_MAX_MS, rate * interval - (this.latencyMs ?? 0)));
  }
}
