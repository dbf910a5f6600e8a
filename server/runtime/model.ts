/**
 * The main-thread side of the runtime: `loadModel(dir)` reads and validates a model folder (manifest, ONNX metadata,
 * tokenizer), starts the inference worker with the chosen execution providers, checks the session's inputs and
 * outputs against the contract, and returns the engine's ModelFn. A crashed worker rejects its in-flight runs with an
 * error that says so and is started again on the next run.
 *
 * Two kinds of denoiser folders load: a single full-attention graph (input_ids, positions -> logits), and a
 * cached-context model whose manifest names a context graph and a step graph (models/README.md). For the latter each
 * call is split by the hole layout (cached-context.ts): the worker runs the context graph only when the context
 * changes, and the step graph over the span tokens every step.
 *
 * A folder whose manifest lists a discriminator also gets the reward model's session in the same worker
 * (discriminator.ts); a discriminator that cannot be used is logged and left out, and the model loads without it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { AbortError } from '../engine/errors';
import type { SampleFn, SamplerCanvas, SamplerConfig, SamplerHooks, SamplerResult } from '../engine/sampler';
import type { KBest, ModelFacts, ModelFn, ModelInput, TextCodec } from '../engine/types';
import { type CachedRunInputs, splitForCache } from './cached-context';
import { type LoadedDiscriminator, openDiscriminator } from './discriminator';
import { type DenoiserGraphs, type Manifest, type Precision, denoiserGraphs, loadManifest, requireFile, verifyFiles } from './manifest';
import {
  type CacheShape,
  cacheFromMetadata,
  checkAttention,
  checkCachedIo,
  checkDenoiserIo,
  checkGraphsAgree,
  checkManifestAgrees,
  factsFromMetadata,
  headFromMetadata,
} from './metadata';
import { readOnnxFileInfo } from './onnx-proto';
import { RemoteGeneration } from './remote-generation';
import type { DeviceSetting } from './providers';
import { loadTokenizer } from './tokenizer';
import type { FromWorker, LoadedMessage, ToWorker } from './worker-messages';

export interface LoadOptions {
  readonly device?: DeviceSetting;
  /** Intra-op CPU threads; 0 or absent lets onnxruntime choose. */
  readonly threads?: number;
  /** Which denoiser file to load (int8 by default). */
  readonly precision?: Precision;
  /** Check every file's sha256 against the manifest (sizes are always checked). */
  readonly verifyHashes?: boolean;
  readonly log?: (line: string) => void;
  /** Worker script; defaults to worker.js next to this bundle (or worker.ts when running from source). */
  readonly workerPath?: string;
  /** How long one model call or generation may take before the worker is abandoned (DEFAULT_DEADLINE_MS). */
  readonly deadlineMs?: number;
  /**
   * Told when a fresh worker has replaced one that crashed or was abandoned (or failed to), so that whoever shows
   * the model's state can say the model works again: the failed work alone only ever reported the failure.
   */
  readonly onRestart?: (restart: WorkerRestart) => void;
}

/** A replacement of the inference worker, as `LoadOptions.onRestart` hears of it. */
export interface WorkerRestart {
  /** Why the worker before it ended (a crash, or a call or generation past its deadline). */
  readonly reason: string;
  /** Wall time from the restart's start to the fresh worker's first answer (load and warm-up), in milliseconds. */
  readonly ms: number;
  /** Why the fresh worker did not start; absent when it did. */
  readonly error?: string;
}

/**
 * A model call or whole generation still unanswered after this long is stuck (a native call that never returns):
 * the worker is abandoned and a fresh one started. Far above any real generation (16 rows x 128 steps of the shipped
 * model take about 5 s on 2 CPU cores), so only a stuck one reaches it.
 */
export const DEFAULT_DEADLINE_MS = 30_000;

/** Session creation may read a large file and compile kernels: a longer deadline than one call's. */
const LOAD_DEADLINE_MS = 120_000;

/** Time spent inside onnxruntime, for the engine-overhead measurement. */
export interface RunStats {
  calls: number;
  onnxMs: number;
  /** Runs of a cached-context model's context graph (cache misses); 0 for a single-graph model. */
  contextCalls: number;
}

export interface LoadedModel {
  readonly facts: ModelFacts;
  readonly codec: TextCodec;
  /** One model call (a denoising step) in the worker. */
  readonly run: ModelFn;
  /** A whole generation in the worker: the engine's sampler with no message round trip per step (what infill uses). */
  readonly sample: SampleFn;
  readonly manifest: Manifest;
  /** The ONNX file in use (a cached-context model's step graph). */
  readonly modelFile: string;
  /** A cached-context model's context graph; absent for a single-graph model. */
  readonly contextFile?: string;
  /** The execution provider the session runs on ("cpu", "cuda", ...). */
  readonly device: string;
  /** Why the device differs from the one asked for; empty when it does not. */
  readonly deviceNote: string;
  /** Wall time of loadModel, in milliseconds. */
  readonly loadMs: number;
  /** Token string of an id (for traces). */
  tokenText(id: number): string | undefined;
  /** Cumulative onnxruntime time and calls since load (the worker measures around session.run). */
  readonly stats: Readonly<RunStats>;
  /** The folder's reward model (discriminator.ts), a second session in the same worker; absent when none is usable. */
  readonly discriminator?: LoadedDiscriminator;
  dispose(): Promise<void>;
}

function defaultWorkerPath(): string {
  const bundled = path.join(__dirname, 'worker.js');
  if (fs.existsSync(bundled)) return bundled;
  return path.join(__dirname, 'worker.ts');
}

/** What the worker answers: the K-best lists without the count of ids they rank, which the metadata gives. */
type WorkerKBest = Omit<KBest, 'allowed'>;

interface Pending {
  resolve(kbest: WorkerKBest): void;
  reject(err: Error): void;
  shapes: string;
}

/** A request of another runtime module (the discriminator), answered by the worker message with its id. */
interface PendingRequest {
  resolve(answer: FromWorker): void;
  reject(err: Error): void;
  what: string;
}

/** One inference worker: a session on a device, with its in-flight runs. */
class InferenceWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private readonly requests = new Map<number, PendingRequest>();
  private readonly generations = new Map<number, RemoteGeneration>();
  private nextId = 1;
  private loaded?: (m: LoadedMessage) => void;
  private loadFailed?: (err: Error) => void;
  private disposed?: () => void;
  /** The watchdog of each message awaiting an answer, by id (the load's under 0). */
  private readonly deadlines = new Map<number, NodeJS.Timeout>();
  exited = false;

  constructor(
    workerPath: string,
    private readonly stats: RunStats,
    private readonly deadlineMs: number,
    /** Told why the worker ended, and whether it was abandoned (stuck) rather than crashed. */
    private readonly onExit: (reason: string, abandoned: boolean) => void,
  ) {
    // Running from TypeScript sources (tests through tsx): the worker thread registers tsx itself, because loader
    // hooks of the main thread do not reach workers.
    this.worker = workerPath.endsWith('.ts')
      ? new Worker(`require('tsx/cjs'); require(${JSON.stringify(workerPath)});`, { eval: true })
      : new Worker(workerPath);
    this.worker.on('message', (m: FromWorker) => this.receive(m));
    this.worker.on('error', (err) => this.fail(`the inference worker crashed: ${err.message}`));
    this.worker.on('exit', (code) => this.fail(`the inference worker exited with code ${code}`));
  }

  /**
   * Starts the watchdog of message `id`: unanswered after `ms`, the worker is stuck, so everything in flight fails
   * at once and the thread is terminated (V8 ends it when its native call returns; unref'd so it never holds the
   * process). The caller starts a fresh worker.
   */
  private watch(id: number, what: string, ms = this.deadlineMs): void {
    const timer = setTimeout(() => {
      this.fail(`${what} passed its ${(ms / 1000).toFixed(ms < 1000 ? 1 : 0)} s deadline, so the inference worker was abandoned`, true);
      this.worker.unref();
      void this.worker.terminate();
    }, ms);
    timer.unref();
    this.deadlines.set(id, timer);
  }

  private answered(id: number): void {
    clearTimeout(this.deadlines.get(id));
    this.deadlines.delete(id);
  }

  private receive(m: FromWorker): void {
    if (m.type !== 'progress' && m.type !== 'disposed') this.answered(m.type === 'loaded' || m.type === 'loadFailed' ? 0 : m.id);
    if (m.type === 'progress' || m.type === 'sampled' || m.type === 'sampleFailed') {
      const generation = this.generations.get(m.id);
      if (m.type === 'progress') generation?.progress(m);
      else {
        this.generations.delete(m.id);
        if (m.type === 'sampled') {
          this.stats.calls += m.result.modelCalls;
          this.stats.onnxMs += m.onnxMs;
          this.stats.contextCalls += m.contextCalls;
          generation?.finish(m);
        } else generation?.failed(m);
      }
    } else if (m.type === 'discLoaded' || m.type === 'scores' || (m.type === 'runFailed' && this.requests.has(m.id))) {
      const request = this.requests.get(m.id);
      this.requests.delete(m.id);
      if (m.type === 'runFailed') request?.reject(new Error(m.message));
      else request?.resolve(m);
    } else if (m.type === 'loaded') this.loaded?.(m);
    else if (m.type === 'loadFailed') this.loadFailed?.(new Error(m.message));
    else if (m.type === 'disposed') this.disposed?.();
    else {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.type === 'result') {
        this.stats.calls += 1;
        this.stats.onnxMs += m.ms;
        if (m.contextRan) this.stats.contextCalls += 1;
        p.resolve(m.kbest);
      } else {
        p.reject(new Error(`Model run failed for ${m.message}`));
      }
    }
  }

  private fail(reason: string, abandoned = false): void {
    if (this.exited) return;
    this.exited = true;
    for (const timer of this.deadlines.values()) clearTimeout(timer);
    this.deadlines.clear();
    this.loadFailed?.(new Error(reason));
    this.disposed?.();
    // An abandoned worker is replaced at once (loadModel); a crashed one on the next request.
    const next = abandoned ? 'a fresh one is starting' : 'it restarts on the next request';
    for (const p of this.pending.values()) p.reject(new Error(`Model run aborted (${p.shapes}): ${reason}; ${next}`));
    this.pending.clear();
    for (const r of this.requests.values()) r.reject(new Error(`${r.what} aborted: ${reason}; ${next}`));
    this.requests.clear();
    for (const g of this.generations.values()) g.lost(`${reason}; ${next}`);
    this.generations.clear();
    this.onExit(reason, abandoned);
  }

  private send(message: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  /** Whether the loaded model is a cached-context one (runs go out split by the hole layout). */
  private cached = false;

  load(graphs: DenoiserGraphs, device: DeviceSetting, threads: number): Promise<LoadedMessage> {
    this.cached = graphs.kind === 'cached';
    const files = graphs.kind === 'cached' ? { modelFile: graphs.step, contextFile: graphs.context } : { modelFile: graphs.model };
    return new Promise((resolve, reject) => {
      this.loaded = resolve;
      this.loadFailed = reject;
      this.watch(0, 'Loading the model', Math.max(LOAD_DEADLINE_MS, this.deadlineMs));
      this.send({ type: 'load', ...files, device, threads });
    });
  }

  run(input: ModelInput): Promise<WorkerKBest> {
    const shapes = `input_ids [${input.batch}, ${input.seqLen}], positions [${input.batch}, ${input.numPositions}]`;
    if (this.exited) return Promise.reject(new Error(`Model run aborted (${shapes}): the inference worker is not running`));
    const id = this.nextId++;
    if (this.cached) {
      // splitForCache builds fresh arrays, so they can be transferred; the caller keeps its canvas.
      let run: CachedRunInputs;
      try {
        run = splitForCache(input);
      } catch (err) {
        return Promise.reject(new Error(`Model input ${describeInput(input)}: ${(err as Error).message}`));
      }
      const buffers = [run.contextIds, run.spanMask, run.spanPos, run.spanIds, run.outIdx].map((a) => a.buffer as ArrayBuffer);
      return new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject, shapes });
        this.watch(id, `A model call (${shapes})`);
        this.send({ type: 'runCached', id, run }, buffers);
      });
    }
    // Copies, because the caller keeps its canvas and transferring would detach it.
    const ids = new Int32Array(input.ids);
    const positions = new Int32Array(input.positions);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, shapes });
      this.watch(id, `A model call (${shapes})`);
      this.send({ type: 'run', id, ids, batch: input.batch, seqLen: input.seqLen, positions, numPositions: input.numPositions }, [
        ids.buffer,
        positions.buffer,
      ]);
    });
  }

  /**
   * Runs a whole generation in the worker (worker.ts `sample`): the engine's sampler next to the session. `allowed`
   * completes the K-best lists the worker's model function returns. A deadline in `config` is read on the worker's
   * wall clock (clock.ts), whatever `hooks.now` is: callers set it on that clock.
   */
  sample(canvas: SamplerCanvas, config: SamplerConfig, allowed: number, hooks: SamplerHooks): Promise<SamplerResult> {
    if (this.exited) return Promise.reject(new Error('Generation refused: the inference worker is not running'));
    if (hooks.signal?.aborted) return Promise.reject(new AbortError());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const cancel = (): void => this.send({ type: 'abortSample', id });
      this.generations.set(id, new RemoteGeneration(config.temperatures.length, hooks, resolve, reject, cancel));
      // Watched until the worker answers, even when the caller aborted: a worker that does not stop is stuck too.
      this.watch(id, `A generation (${config.temperatures.length} rows, ${config.steps} steps)`);
      // A copy of the canvas ids: the caller keeps its canvas, and the copy's buffer can be transferred.
      const ids = canvas.ids.slice();
      this.send({ type: 'sample', id, canvas: { ids, holes: canvas.holes }, config, allowed, progress: hooks.onStep !== undefined }, [
        ids.buffer,
      ]);
    });
  }

  /**
   * Sends the message `build` makes for a fresh request id (discriminator.ts speaks these); resolves with the
   * worker's answer of that id, and rejects on a `runFailed` answer or when the worker ends first.
   */
  request(build: (id: number) => ToWorker, transfer: ArrayBuffer[], what: string): Promise<FromWorker> {
    if (this.exited) return Promise.reject(new Error(`${what}: the inference worker is not running`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.requests.set(id, { resolve, reject, what });
      this.watch(id, what);
      this.send(build(id), transfer);
    });
  }

  async dispose(): Promise<void> {
    if (!this.exited) {
      await new Promise<void>((resolve) => {
        this.disposed = resolve;
        this.send({ type: 'dispose' });
        setTimeout(resolve, 2000).unref();
      });
    }
    this.exited = true;
    for (const timer of this.deadlines.values()) clearTimeout(timer);
    this.deadlines.clear();
    for (const p of this.pending.values()) p.reject(new Error(`Model run aborted (${p.shapes}): the model was unloaded`));
    this.pending.clear();
    for (const r of this.requests.values()) r.reject(new Error(`${r.what} aborted: the model was unloaded`));
    this.requests.clear();
    for (const g of this.generations.values()) g.lost('the model was unloaded');
    this.generations.clear();
    await this.worker.terminate();
  }
}

/** The model input's tensors with their dtypes and shapes, for error messages. */
function describeInput({ batch, seqLen, numPositions }: ModelInput): string {
  return `input_ids int64 [${batch}, ${seqLen}], positions int64 [${batch}, ${numPositions}]`;
}

/**
 * Checks a model input against the facts before it crosses to the worker; the error names the input and shape. (A
 * cached-context model's hole layout is checked when the input is split for the worker.)
 */
function checkInput(input: ModelInput, facts: ModelFacts): void {
  const { batch, seqLen, numPositions } = input;
  const where = describeInput(input);
  if (!(batch >= 1 && seqLen >= 1 && numPositions >= 1)) throw new Error(`Model input ${where}: every dimension must be at least 1`);
  if (input.ids.length !== batch * seqLen) throw new Error(`Model input ${where}: input_ids holds ${input.ids.length} values`);
  if (input.positions.length !== batch * numPositions) throw new Error(`Model input ${where}: positions holds ${input.positions.length} values`);
  if (seqLen > facts.maxSeqLen) throw new Error(`Model input ${where}: T = ${seqLen} exceeds the model's max_seq_len ${facts.maxSeqLen}`);
  for (const p of input.positions) {
    if (p < 0 || p >= seqLen) throw new Error(`Model input ${where}: position ${p} is outside [0, ${seqLen})`);
  }
  for (const id of input.ids) {
    if (id < 0 || id >= facts.vocabSize) throw new Error(`Model input ${where}: token id ${id} is outside the vocabulary (${facts.vocabSize})`);
  }
}

/**
 * One small forward pass right after loading: onnxruntime allocates and plans on the first run, so the user's first
 * completion does not pay for it, and a model whose graph fails at run time is refused at load with a clear error.
 */
async function warmUp(worker: InferenceWorker, facts: ModelFacts, topK: number, where: string): Promise<void> {
  const seqLen = Math.min(64, facts.maxSeqLen);
  const numPositions = Math.min(16, seqLen);
  const ids = new Int32Array(seqLen).fill(facts.maskId);
  ids[0] = facts.langIds.other;
  const positions = Int32Array.from({ length: numPositions }, (_, i) => seqLen - numPositions + i);
  const holes = [{ start: seqLen - numPositions, length: numPositions }];
  let kbest: WorkerKBest;
  try {
    kbest = await worker.run({ ids, batch: 1, seqLen, positions, numPositions, holes });
  } catch (err) {
    throw new Error(`${where} loads but does not run: ${(err as Error).message}`);
  }
  const { k, logits, ids: topIds, logZ } = kbest;
  if (k !== topK || logits.length !== numPositions * topK || topIds.length !== numPositions * topK || logZ.length !== numPositions) {
    throw new Error(
      `${where} returned top_logits ${logits.length}, top_ids ${topIds.length}, log_z ${logZ.length} values (K ${k}) for positions ` +
        `[1, ${numPositions}]; expected [1, ${numPositions}, ${topK}] and [1, ${numPositions}]`,
    );
  }
}

/**
 * Reads and checks the context graph of a cached-context model against its step graph (`stepMeta`) and the manifest:
 * both context_only, each the graph it is named as, the same facts and the same cache shape.
 */
function readCachedGraphs(
  graphs: Extract<DenoiserGraphs, { kind: 'cached' }>,
  stepMeta: Readonly<Record<string, string>>,
  manifest: Manifest,
): { where: string; cache: CacheShape } {
  const where = path.basename(graphs.context);
  const whereStep = path.basename(graphs.step);
  const contextMeta = readOnnxFileInfo(graphs.context).metadata;
  checkAttention(stepMeta, 'context_only', whereStep);
  checkAttention(contextMeta, 'context_only', where);
  checkManifestAgrees(contextMeta, manifest.metadata, where);
  const cache = cacheFromMetadata(contextMeta, 'context', where);
  cacheFromMetadata(stepMeta, 'step', whereStep);
  checkGraphsAgree(contextMeta, stepMeta, where, whereStep);
  return { where, cache };
}

/**
 * Loads the model folder `dir`. Missing, corrupt or incompatible models reject with an Error naming the file and
 * the first mismatch. The returned model's `run` is the engine's ModelFn.
 */
export async function loadModel(dir: string, options: LoadOptions = {}): Promise<LoadedModel> {
  const started = performance.now();
  const log = options.log ?? (() => undefined);
  const manifest = loadManifest(path.resolve(dir));
  if (manifest.kind !== 'mdm') throw new Error(`Model ${manifest.id} is a "${manifest.kind}" model; inline completion needs a denoiser ("mdm")`);
  verifyFiles(manifest, options.verifyHashes ?? false);
  const graphs = denoiserGraphs(manifest, options.precision ?? 'auto');
  const modelFile = graphs.kind === 'cached' ? graphs.step : graphs.model;
  const where = path.basename(modelFile);
  const info = readOnnxFileInfo(modelFile);
  const facts = factsFromMetadata(info.metadata, where);
  const head = headFromMetadata(info.metadata, facts, where);
  const { topK } = head;
  checkManifestAgrees(info.metadata, manifest.metadata, where);
  const cached = graphs.kind === 'cached' ? readCachedGraphs(graphs, info.metadata, manifest) : undefined;
  if (!cached) checkAttention(info.metadata, 'full', where);

  const device = options.device ?? 'auto';
  const workerPath = options.workerPath ?? defaultWorkerPath();
  const threads = options.threads ?? 0;
  const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const stats: RunStats = { calls: 0, onnxMs: 0, contextCalls: 0 };

  let current: InferenceWorker | undefined;
  let starting: Promise<InferenceWorker> | undefined;
  let disposed = false;
  /** Why the last worker ended, for the restart that replaces it. */
  let lastExit = '';
  const start = async (): Promise<{ worker: InferenceWorker; loaded: LoadedMessage }> => {
    const worker = new InferenceWorker(workerPath, stats, deadlineMs, (reason, abandoned) => {
      lastExit = reason;
      log(`runtime: ${reason}`);
      // A stuck worker is replaced now, not on the next request, so that the next completion does not wait for it.
      if (abandoned && current && !disposed) alive().catch((err: Error) => log(`runtime: the inference worker did not restart: ${err.message}`));
    });
    try {
      const loaded = await worker.load(graphs, device, threads);
      if (cached) {
        if (!loaded.context) throw new Error(`${cached.where} was not loaded by the inference worker`);
        checkCachedIo(loaded.context, loaded, facts, topK, cached.cache, cached.where, where);
      } else {
        checkDenoiserIo(loaded.inputs, loaded.outputs, facts, topK, where);
      }
      await warmUp(worker, facts, topK, where);
      return { worker, loaded };
    } catch (err) {
      await worker.dispose();
      throw err;
    }
  };
  /** Starts a fresh worker after a crash; concurrent callers share one restart. */
  const alive = async (): Promise<InferenceWorker> => {
    if (current && !current.exited) return current;
    if (!starting) {
      log('runtime: restarting the inference worker');
      const began = performance.now();
      const reason = lastExit;
      const restarted = (error?: string): void => options.onRestart?.({ reason, ms: performance.now() - began, ...(error !== undefined ? { error } : {}) });
      starting = start()
        .then(
          async ({ worker }) => {
            // Unloaded while it started: the fresh worker must not outlive the model (its thread holds the process).
            if (disposed) {
              await worker.dispose();
              throw new Error('the model was unloaded');
            }
            current = worker;
            log(`runtime: the inference worker restarted in ${(performance.now() - began).toFixed(0)} ms`);
            restarted();
            return worker;
          },
          (err: Error) => {
            restarted(err.message);
            throw err;
          },
        )
        .finally(() => (starting = undefined));
    }
    return starting;
  };

  // The worker creates the session in its thread while this one builds the tokenizer.
  const firstStart = start();
  let tokenizer: ReturnType<typeof loadTokenizer>;
  try {
    tokenizer = loadTokenizer(requireFile(manifest, 'tokenizer.json'), facts, manifest.specialTokens);
  } catch (err) {
    await firstStart.then(({ worker }) => worker.dispose(), () => undefined);
    throw err;
  }
  const first = await firstStart;
  current = first.worker;
  const loadedOn = first.loaded.device;
  for (const reason of first.loaded.skipped) log(`device: skipped ${reason}`);
  for (const note of first.loaded.notes) log(`device: ${note}`);
  const reasons = [...first.loaded.skipped, ...first.loaded.notes];
  const deviceNote = device !== 'cpu' && loadedOn === 'cpu' && reasons.length ? `using the CPU: ${reasons.join('; ')}` : '';
  if (!tokenizer.lineCache) log('tokenizer: line-by-line encoding disagreed with whole-text encoding; encoding whole texts (slower)');
  const graphNames = cached ? `${cached.where} + ${where} (cached context)` : where;
  log(`model ${manifest.id}: ${graphNames} on ${loadedOn} (session ${first.loaded.ms.toFixed(0)} ms)`);

  const run: ModelFn = async (input) => {
    if (disposed) throw new Error('Model run refused: the model was unloaded');
    checkInput(input, facts);
    return { ...(await (await alive()).run(input)), allowed: head.allowed };
  };

  const sample: SampleFn = async (canvas, config, hooks = {}) => {
    if (disposed) throw new Error('Generation refused: the model was unloaded');
    // The checks a model call gets, on the canvas the worker's steps will read (its requested positions are the holes').
    const positions = Int32Array.from(canvas.holes.flatMap(({ start, length }) => Array.from({ length }, (_, i) => start + i)));
    checkInput({ ids: canvas.ids, batch: 1, seqLen: canvas.ids.length, positions, numPositions: positions.length, holes: canvas.holes }, facts);
    return (await alive()).sample(canvas, config, head.allowed, hooks);
  };

  const discriminator = await openDiscriminator(manifest, facts, where, {
    worker: () => (disposed ? Promise.reject(new Error('Discriminator run refused: the model was unloaded')) : alive()),
    device: loadedOn,
    threads,
    verifyHashes: options.verifyHashes ?? false,
    log,
  });

  return {
    facts,
    codec: tokenizer.codec,
    run,
    sample,
    manifest,
    modelFile,
    ...(graphs.kind === 'cached' ? { contextFile: graphs.context } : {}),
    device: loadedOn,
    deviceNote,
    loadMs: performance.now() - started,
    tokenText: tokenizer.tokenText,
    stats,
    ...(discriminator ? { discriminator } : {}),
    async dispose() {
      disposed = true;
      await current?.dispose();
      current = undefined;
    },
  };
}
