/**
 * How many masked positions a row commits in a step. Time runs t = linspace(1, 0, N + 1); step k (0-based) goes
 * from t = 1 - k/N to s = 1 - (k+1)/N and commits masked * (1 - s/t) positions (Dream / DiffuCoder). Since
 * 1 - s/t = 1 / (N - k), that is masked / (remaining steps); it is computed in integers so that rounding can never
 * leave a mask behind. Rounded down like Dream's int(), at least one per step, and everything at the last step:
 * a row with at least N masks therefore resolves in exactly N steps, committing at least one token in each.
 */
export function tokensToCommit(masked: number, step: number, steps: number): number {
  if (masked <= 0) return 0;
  const remainingSteps = steps - step;
  if (remainingSteps <= 1) return masked;
  return Math.max(1, Math.floor(masked / remainingSteps));
}

/**
 * The number of model calls a generation of `masked` positions makes in `steps` steps when nothing commits extra
 * tokens (no confidence threshold and no end-of-span fill): steps, or fewer when there are fewer masks than steps,
 * because every step commits at least one.
 */
export function plannedModelCalls(masked: number, steps: number): number {
  return Math.max(0, Math.min(steps, masked));
}
