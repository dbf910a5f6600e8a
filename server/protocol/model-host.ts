/**
 * Owns the loaded model for the language server: loads it for the current settings, reloads when the model path,
 * device or thread count changes, and keeps the status the client shows (loading, ready, busy, error, device, last
 * latency). A model that fails to load leaves the server running, in the error state, with the reason.
 *
 * Idle unload: after unmask.idleUnloadMinutes without work (0: never) the model is disposed (its worker thread and
 * memory go) and the state becomes "unloaded"; the next request that asks for the model (`current()`) loads it again
 * with the same settings and waits for it.
 */
import * as path from 'node:path';
import type { ModelFacts } from '../engine/types';
import { type LoadedModel, type LoadOptions, loadModel, type WorkerRestart } from '../runtime/model';
import type { ServerConfig } from './config';
import type { ServerState, StatusParams } from './messages';

/** Where the extension ships its default model, relative to the extension root. */
export const DEFAULT_MODEL_DIR = path.join('models', 'unmask-coder-base');

export type Log = (line: string) => void;

/**
 * One line for the log when a model loads and snippets of other files are asked for (unmask.relatedContextTokens,
 * `tokens` > 0): how many canvas tokens they may take, or that the model, trained without them, does not get them.
 * Undefined when none are asked for. Said once per load, not per request.
 */
export function relatedContextNote(id: string, facts: ModelFacts | undefined, tokens: number): string | undefined {
  if (!(tokens > 0)) return undefined;
  const layout = facts?.relatedContext;
  if (!layout) return `model ${id} was not trained with snippets of other files (no unmask.related_context): unmask.relatedContextTokens is not used`;
  return `model ${id} reads snippets of other files (unmask.related_context, up to ${layout.maxTokens} tokens): up to ${Math.min(tokens, layout.maxTokens)} canvas tokens of them per request`;
}

/** What loads a model folder; runtime/model.ts's loadModel, or a stand-in in tests. */
export type ModelLoader = (dir: string, options: LoadOptions) => Promise<LoadedModel>;

export class ModelHost {
  private model?: LoadedModel;
  private loading?: Promise<LoadedModel | undefined>;
  private generation = 0;
  private busy = 0;
  private status: StatusParams = { state: 'loading' };
  /** The settings of the last load, which an idle-unloaded model is loaded again with. */
  private config?: ServerConfig;
  private idleTimer?: ReturnType<typeof setTimeout>;

  constructor(
    private readonly extensionRoot: string,
    private readonly log: Log,
    private readonly publish: (status: StatusParams) => void,
    private readonly loader: ModelLoader = loadModel,
  ) {}

  /** The folder a config points at: its modelPath, or the shipped default model. */
  modelDir(config: ServerConfig): string {
    return config.modelPath.trim() ? path.resolve(this.extensionRoot, config.modelPath.trim()) : path.join(this.extensionRoot, DEFAULT_MODEL_DIR);
  }

  /** Loads the model for `config`, replacing any loaded one; resolves once loaded or failed (never rejects). */
  load(config: ServerConfig): Promise<LoadedModel | undefined> {
    const generation = ++this.generation;
    this.config = config;
    this.clearIdleTimer();
    const previous = this.model;
    this.model = undefined;
    const dir = this.modelDir(config);
    this.setStatus({ state: 'loading' });
    this.log(`loading model from ${dir} (device ${config.device}, threads ${config.threads || 'auto'})`);
    const loading = (async () => {
      await previous?.dispose();
      try {
        const onRestart = (restart: WorkerRestart): void => this.workerRestarted(generation, restart);
        const model = await this.loader(dir, { device: config.device, threads: config.threads, log: this.log, onRestart });
        if (generation !== this.generation) {
          await model.dispose(); // A newer load started meanwhile; this one is stale.
          return undefined;
        }
        this.model = model;
        this.log(`model ${model.manifest.id} ready on ${model.device} in ${model.loadMs.toFixed(0)} ms`);
        const related = relatedContextNote(model.manifest.id, model.facts, config.relatedContextTokens);
        if (related) this.log(related);
        this.setStatus({
          state: 'ready',
          modelId: model.manifest.id,
          device: model.device,
          ...(model.deviceNote ? { deviceNote: model.deviceNote } : {}),
        });
        this.armIdleTimer();
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

  /**
   * The loaded model, waiting for a load in progress; undefined when none could be loaded. A model unloaded while
   * idle is loaded again here (on demand), with the settings of its last load.
   */
  async current(): Promise<LoadedModel | undefined> {
    if (this.model) return this.model;
    if (this.status.state === 'unloaded' && this.config) {
      this.log('model unloaded while idle; loading it again for a request');
      return this.load(this.config);
    }
    return this.loading ? this.loading : undefined;
  }

  /** The model loaded now, without loading or waiting for one (undefined while loading, unloaded or failed). */
  get loaded(): LoadedModel | undefined {
    return this.model;
  }

  /** Takes settings that need no reload (unmask.idleUnloadMinutes): restarts the idle countdown under them. */
  configure(config: ServerConfig): void {
    this.config = config;
    if (this.model && this.busy === 0) this.armIdleTimer();
  }

  /** Whether the model is unloaded after an idle period (and loads again on the next request). */
  get unloaded(): boolean {
    return this.status.state === 'unloaded';
  }

  /** Marks a generation as running (state busy) until the returned function is called with its outcome. */
  beginWork(): (outcome: { latencyMs?: number; error?: string }) => void {
    this.busy += 1;
    this.clearIdleTimer();
    if (this.busy === 1 && this.model) this.setStatus({ state: 'busy' });
    let ended = false;
    return ({ latencyMs, error }) => {
      if (ended) return;
      ended = true;
      this.busy -= 1;
      if (!this.model) return;
      if (this.busy === 0) this.armIdleTimer();
      const state: ServerState = error ? 'error' : this.busy > 0 ? 'busy' : 'ready';
      this.setStatus({
        state,
        ...(latencyMs !== undefined ? { lastLatencyMs: Math.round(latencyMs) } : {}),
        ...(error ? { message: error } : { message: undefined }),
      });
    };
  }

  /**
   * A fresh inference worker replaced one that crashed or was abandoned past its deadline. The work that failed has
   * already put its error in the status; without this the status stayed on that error while the model worked again.
   * A restart that failed is an error of its own (the next request tries again).
   */
  private workerRestarted(generation: number, { reason, ms, error }: WorkerRestart): void {
    if (generation !== this.generation || !this.model) return; // A restart of a model since replaced or unloaded.
    const after = reason ? ` after: ${reason}` : '';
    if (error !== undefined) {
      this.log(`error: the inference worker did not restart${after}: ${error}`);
      this.setStatus({ state: 'error', message: `The inference worker did not restart: ${error}` });
      return;
    }
    this.setStatus({
      state: this.busy > 0 ? 'busy' : 'ready',
      lastRestart: `a fresh inference worker started in ${Math.round(ms)} ms${after}`,
      workerRestarts: (this.status.workerRestarts ?? 0) + 1,
    });
  }

  /**
   * Records what became of the last suggestion made as you type (StatusParams.lastSuggestion). Not published on its
   * own: the generation's end, which follows, publishes the status once with it.
   */
  noteSuggestion(outcome: string): void {
    this.status = { ...this.status, lastSuggestion: outcome };
  }

  get lastStatus(): StatusParams {
    return this.status;
  }

  private clearIdleTimer(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** (Re)starts the idle countdown; at its end a loaded, unused model is unloaded. */
  private armIdleTimer(): void {
    this.clearIdleTimer();
    const minutes = this.config?.idleUnloadMinutes ?? 0;
    if (!(minutes > 0) || !this.model) return;
    this.idleTimer = setTimeout(() => void this.unloadIdle(minutes), minutes * 60_000);
    this.idleTimer.unref?.(); // An idle countdown never keeps the process alive.
  }

  private async unloadIdle(minutes: number): Promise<void> {
    this.idleTimer = undefined;
    const model = this.model;
    if (!model || this.busy > 0) return;
    this.generation += 1; // A load that started before this is stale.
    this.model = undefined;
    this.loading = undefined;
    this.log(`model ${model.manifest.id} unloaded after ${minutes} idle minute(s); the next request loads it again`);
    this.setStatus({ state: 'unloaded' });
    try {
      await model.dispose();
    } catch (err) {
      this.log(`unloading the model failed: ${(err as Error).message}`);
    }
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
    this.clearIdleTimer();
    const model = this.model;
    this.model = undefined;
    await model?.dispose();
  }
}
