/**
 * A small seeded pseudo-random generator (mulberry32) so that a generation is a pure function of its seed.
 * Math.random cannot be seeded, and a generation must replay exactly for tests, traces and bug reports.
 * Each batch row draws from its own stream (deriveSeed) so that adding candidates never changes row 0.
 */

export interface Rng {
  /** A float in [0, 1). */
  next(): number;
}

/** mulberry32: 32 bits of state, passes the usual statistical batteries well enough for sampling tokens. */
export class Mulberry32 implements Rng {
  private state: number;

  constructor(seed: number) {
    this.state = toUint32(seed);
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/**
 * The seed of stream `stream` of a generation seeded with `seed`, mixed with the splitmix32 finaliser so that
 * neighbouring streams (rows 0, 1, 2, ...) are uncorrelated.
 */
export function deriveSeed(seed: number, stream: number): number {
  let z = (toUint32(seed) + Math.imul(toUint32(stream) + 1, 0x9e3779b9)) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export function createRng(seed: number, stream = 0): Rng {
  return new Mulberry32(deriveSeed(seed, stream));
}

/** Any finite number becomes a uint32 seed (integers keep their low 32 bits, so 0..2^32-1 map to themselves). */
function toUint32(value: number): number {
  return Number.isFinite(value) ? Math.trunc(value) >>> 0 : 0;
}
