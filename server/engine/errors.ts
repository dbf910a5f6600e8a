/**
 * The engine's error types. Each names what was wrong so that the protocol layer can turn it into a status and a
 * log line without guessing; none of them leaves partial state behind.
 */

/** A generation was cancelled through its AbortSignal; thrown between denoising steps. */
export class AbortError extends Error {
  override readonly name = 'AbortError';
  constructor(message = 'The generation was cancelled.') {
    super(message);
  }
}

/** Sampler options or an infill request that cannot be honoured; the message lists every problem found. */
export class OptionsError extends Error {
  override readonly name = 'OptionsError';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid generation options: ${problems.join('; ')}`);
  }
}

/** The holes of a request do not fit the model (too long for its maximum sequence length, no usable language tag). */
export class CanvasError extends Error {
  override readonly name = 'CanvasError';
}

/** The model function broke its contract (wrong output size, no finite logits at a position). */
export class ModelOutputError extends Error {
  override readonly name = 'ModelOutputError';
}

/** True for the error thrown when a generation is cancelled, whichever layer threw it. */
export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}
