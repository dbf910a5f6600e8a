/**
 * Owns the loaded model for the language server: loads it for the current settings, reloads when the model path,
 * device or thread count changes, and keeps the status the client shows (loading, ready, busy, error, device, last
 * latency). A model that fails to load leaves the server running, in the error state, with the reason.
 */
import * as path from 'node:path';
import { type LoadedModel, loadModel } from '../runtime/model';
import type { ServerConfig } from './config';
import type { ServerState, StatusParams } from './messages';

/** Where the extension ships its default model, relative to the extension root. */
export const DEFAULT_MODEL_DIR = path.join('models', 'unmask-coder-base');

export type Log = (line: string) => void;

export class ModelHost {
  private model?: LoadedModel;
  private loading?: Promise<LoadedModel | undefined>;
  private generation = 0;
  private busy = 0;
  private status: StatusParams = { state: 'loading' };

  constructor(
    private readonly extensionRoot: string,
    private readonly log: Log,
    private readonly publish: (status: StatusParams) => void,
  ) {}

  /** The folder a config points at: its modelPath, or the shipped default model. */
  modelDir(config: ServerConfig): string {
    return config.modelPath.trim() ? path.resolve(this.extensionRoot, config.modelPath.trim()) : path.join(this.extensionRoot, DEFAULT_MODEL_DIR);
  }

  /** Loads the model for `config`, replacing any loaded one; resolves once loaded or failed (never rejects). */
  load(config: ServerConfig): Promise<LoadedModel | undefined> {
    const generation = ++this.generation;
    const previous = this.model;
    this.model = undefined;
    const dir = this.modelDir(config);
    this.setStatus({ state: 'loading' });
    this.log(`loading model from ${dir} (device ${config.device}, threads ${config.threads || 'auto'})`);
    const loading = (async () => {
      await previous?.dispose();
      try {
        const model = await loadModel(dir, { device: config.device, threads: config.threads, log: this.log });
        if (generation !== this.generation) {
          await model.dispose(); // A newer load started meanwhile; this one is stale.
          return undefined;
        }
        this.model = model;
        this.log(`model ${model.manifest.id} ready on ${model.device} in ${model.loadMs.toFixed(0)} ms`);
        this.setStatus({
          state: 'ready',
          modelId: model.manifest.id,
          device: model.device,
          ...(model.deviceNote ? { deviceNote: model.deviceNote } : {}),
        });
        return model;
      } catch (err) {
        if (generation === this.generation) {
          const message = (err as Error).message;
          this.log(`error: model not loaded: ${message}`);
          this.setStatus({ state: 'error', message: `Model not loaded: ${message}` });
        }
        return undefined;
      }
    })();
    this.loading = loading;
    return loading;
  }

  /** The loaded model, waiting for a load in progress; undefined when none could be loaded. */
  async current(): Promise<LoadedModel | undefined> {
    if (this.model) return this.model;
    return this.loading ? this.loading : undefined;
  }

  /** Marks a generation as running (state busy) until the returned function is called with its outcome. */
  beginWork(): (outcome: { latencyMs?: number; error?: string }) => void {
    this.busy += 1;
    if (this.busy === 1 && this.model) this.setStatus({ state: 'busy' });
    let ended = false;
    return ({ latencyMs, error }) => {
      if (ended) return;
      ended = true;
      this.busy -= 1;
      if (!this.model) return;
      const state: ServerState = error ? 'error' : this.busy > 0 ? 'busy' : 'ready';
      this.setStatus({
        state,
        ...(latencyMs !== undefined ? { lastLatencyMs: Math.round(latencyMs) } : {}),
        ...(error ? { message: error } : { message: undefined }),
      });
    };
  }

  get lastStatus(): StatusParams {
    return this.status;
  }

  private setStatus(change: Partial<StatusParams> & { state: ServerState }): void {
    const keepModel = change.state !== 'loading';
    const next: StatusParams = keepModel ? { ...this.status, ...change } : { state: 'loading' };
    if (next.state !== 'error') delete next.message;
    if (!keepModel && this.status.lastLatencyMs !== undefined) next.lastLatencyMs = this.status.lastLatencyMs;
    for (const key of Object.keys(next) as (keyof StatusParams)[]) if (next[key] === undefined) delete next[key];
    this.status = next;
    this.publish(next);
  }

  async dispose(): Promise<void> {
    this.generation += 1;
    const model = this.model;
    this.model = undefined;
    await model?.dispose();
  }
}
