/**
 * Whether inline completions may be shown right now: the global switch (setting `unmask.enable`, flipped by
 * "Unmask: Toggle"), a temporary snooze, and the per-language map. Pure: the clock is passed in.
 */
import { languageEnabled, type UnmaskConfig } from './config';

/** Why completions are off, or undefined when they are on. */
export type OffReason = 'disabled' | 'snoozed' | 'language';

export class Enablement {
  private snoozedUntilMs: number | undefined;

  /** Snoozes for `minutes` from `nowMs`; a later snooze replaces an earlier one. */
  snooze(minutes: number, nowMs: number): void {
    this.snoozedUntilMs = nowMs + Math.max(0, minutes) * 60_000;
  }

  resume(): void {
    this.snoozedUntilMs = undefined;
  }

  /** Milliseconds of snooze left, 0 when not snoozed. */
  snoozeLeftMs(nowMs: number): number {
    if (this.snoozedUntilMs === undefined) return 0;
    const left = this.snoozedUntilMs - nowMs;
    if (left <= 0) this.snoozedUntilMs = undefined;
    return Math.max(0, left);
  }

  /** Why inline completions are off for this language now, or undefined when they are on. */
  offReason(config: UnmaskConfig, languageId: string | undefined, nowMs: number): OffReason | undefined {
    if (!config.enable) return 'disabled';
    if (this.snoozeLeftMs(nowMs) > 0) return 'snoozed';
    if (languageId !== undefined && !languageEnabled(config, languageId)) return 'language';
    return undefined;
  }
}
