/**
 * AR-ness@k of a decoding order (DiffuCoder, methods.md section 3): how left-to-right a generation was.
 * The order p_1..p_T lists positions in the order they were committed. When a step commits several tokens they are
 * ordered left to right within the step (decodingOrder below), which is the most autoregressive reading of a
 * parallel step: a step that commits a consecutive run counts as that run written left to right.
 *
 *   local AR-ness@k  = share of the steps t > k for which p_t - i == p_{t-i} for every i = 1..k, i.e. the new position
 *                      continues a consecutive increasing run of the k previous commits. Steps t <= k have no k
 *                      predecessors and are not counted, so pure left-to-right decoding scores exactly 1.
 *                      Undefined (NaN) when T <= k.
 *   global AR-ness@k = share of all T steps for which p_t is among the k left-most positions still masked just before
 *                      step t (the positions p_t..p_T). Undefined (NaN) when T = 0.
 *
 * "Still masked" is relative to the positions in the order, so leaving positions out (for example end-of-span fill,
 * which is not a decision of the model) removes them from the universe. The Python evaluation implements the same
 * definitions; test/fixtures/arness-cases.json holds the cases both sides check.
 */

/** AR-ness is reported for k = 1..ARNESS_MAX_K. */
export const ARNESS_MAX_K = 8;

export interface ArnessProfile {
  /** local[k - 1] = local AR-ness@k. */
  readonly local: number[];
  /** global[k - 1] = global AR-ness@k. */
  readonly global: number[];
}

function checkOrder(order: readonly number[]): void {
  if (new Set(order).size !== order.length) throw new RangeError('A decoding order must not list a position twice.');
}

export function localArness(order: readonly number[], k: number): number {
  checkOrder(order);
  const counted = order.length - k;
  if (counted <= 0) return NaN;
  let hits = 0;
  for (let t = k; t < order.length; t++) {
    let run = true;
    for (let i = 1; i <= k && run; i++) run = order[t] - i === order[t - i];
    if (run) hits++;
  }
  return hits / counted;
}

/** For each step, how many positions committed later lie to the left of the one committed then. */
function leftRanks(order: readonly number[]): Int32Array {
  const ranks = new Int32Array(order.length);
  for (let t = 0; t < order.length; t++) {
    let left = 0;
    for (let s = t + 1; s < order.length; s++) if (order[s] < order[t]) left++;
    ranks[t] = left;
  }
  return ranks;
}

export function globalArness(order: readonly number[], k: number): number {
  checkOrder(order);
  if (order.length === 0) return NaN;
  return leftRanks(order).filter((rank) => rank < k).length / order.length;
}

/** local and global AR-ness@k for k = 1..maxK. */
export function arnessProfile(order: readonly number[], maxK = ARNESS_MAX_K): ArnessProfile {
  checkOrder(order);
  const ranks = leftRanks(order);
  const local: number[] = [];
  const global: number[] = [];
  for (let k = 1; k <= maxK; k++) {
    local.push(localArness(order, k));
    global.push(order.length === 0 ? NaN : ranks.filter((rank) => rank < k).length / order.length);
  }
  return { local, global };
}

/**
 * The decoding order of commits given as (position, step): by step, and left to right within a step.
 * Commits that are not model decisions (end-of-span fill) should be left out by the caller.
 */
export function decodingOrder(commits: readonly { readonly position: number; readonly step: number }[]): number[] {
  return [...commits].sort((a, b) => a.step - b.step || a.position - b.position).map((c) => c.position);
}
