/**
 * The clock of latency budgets (InfillHooks.now, SamplerHooks.now): milliseconds since the epoch at sub-millisecond
 * resolution. performance.now() alone counts from each thread's own start, so a deadline set on the main thread would
 * mean another time in the inference worker; the time origin added makes both threads read the same clock.
 */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}
