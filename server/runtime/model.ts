/**
 * The main-thread side of the runtime: `loadModel(dir)` reads and validates a model folder (manifest, ONNX metadata,
 * tokenizer), starts the inference worker with the chosen execution providers, checks the session's inputs and
 * outputs against the contract, and returns the engine's ModelFn. A crashed worker rejects its in-flight runs with an
 * error that says so and is started again on the next run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ModelFacts, ModelFn, ModelInput, TextCodec } from '../engine/types';
import { type Manifest, type Precision, denoiserFile, loadManifest, requireFile, verifyFiles } from './manifest';
import { checkDenoiserIo, checkManifestAgrees, factsFromMetadata } from './metadata';
import { readOnnxFileInfo } from './onnx-proto';
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
}

/** Time spent inside onnxruntime, for the engine-overhead measurement. */
export interface RunStats {
  calls: number;
  onnxMs: number;
}

export interface LoadedModel {
  readonly facts: ModelFacts;
  readonly codec: TextCodec;
  readonly run: ModelFn;
  readonly manifest: Manifest;
  /** The ONNX file in use. */
  readonly modelFile: string;
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
  dispose(): Promise<void>;
}

function defaultWorkerPath(): string {
  const bundled = path.join(__dirname, 'worker.js');
  if (fs.existsSync(bundled)) return bundled;
  return path.join(__dirname, 'worker.ts');
}

interface Pending {
  resolve(logits: Float32Array): void;
  reject(err: Error): void;
  shapes: string;
}

/** One inference worker: a session on a device, with its in-flight runs. */
class InferenceWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private loaded?: (m: LoadedMessage) => void;
  private loadFailed?: (err: Error) => void;
  private disposed?: () => void;
  exited = false;

  constructor(
    workerPath: string,
    private readonly stats: RunStats,
    private readonly onExit: (reason: string) => void,
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

  private receive(m: FromWorker): void {
    if (m.type === 'loaded') this.loaded?.(m);
    else if (m.type === 'loadFailed') this.loadFailed?.(new Error(m.message));
    else if (m.type === 'disposed') this.disposed?.();
    else {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.type === 'result') {
        this.stats.calls += 1;
        this.stats.onnxMs += m.ms;
        p.resolve(m.logits);
      } else {
        p.reject(new Error(`Model run failed for ${m.message}`));
      }
    }
  }

  private fail(reason: string): void {
    if (this.exited) return;
    this.exited = true;
    this.loadFailed?.(new Error(reason));
    this.disposed?.();
    for (const p of this.pending.values()) p.reject(new Error(`Model run aborted (${p.shapes}): ${reason}; it restarts on the next request`));
    this.pending.clear();
    this.onExit(reason);
  }

  private send(message: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  load(modelFile: string, device: DeviceSetting, threads: number): Promise<LoadedMessage> {
    return new Promise((resolve, reject) => {
      this.loaded = resolve;
      this.loadFailed = reject;
      this.send({ type: 'load', modelFile, device, threads });
    });
  }

  run(input: ModelInput): Promise<Float32Array> {
    const shapes = `input_ids [${input.batch}, ${input.seqLen}], positions [${input.batch}, ${input.numPositions}]`;
    if (this.exited) return Promise.reject(new Error(`Model run aborted (${shapes}): the inference worker is not running`));
    const id = this.nextId++;
    // Copies, because the caller keeps its canvas and transferring would detach it.
    const ids = new Int32Array(input.ids);
    const positions = new Int32Array(input.positions);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, shapes });
      this.send({ type: 'run', id, ids, batch: input.batch, seqLen: input.seqLen, positions, numPositions: input.numPositions }, [
        ids.buffer,
        positions.buffer,
      ]);
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
    for (const p of this.pending.values()) p.reject(new Error(`Model run aborted (${p.shapes}): the model was unloaded`));
    this.pending.clear();
    await this.worker.terminate();
  }
}

/** Checks a model input against the facts before it crosses to the worker; the error names the input and shape. */
function checkInput(input: ModelInput, facts: ModelFacts): void {
  const { batch, seqLen, numPositions } = input;
  const where = `input_ids int64 [${batch}, ${seqLen}], positions int64 [${batch}, ${numPositions}]`;
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
async function warmUp(worker: InferenceWorker, facts: ModelFacts, where: string): Promise<void> {
  const seqLen = Math.min(64, facts.maxSeqLen);
  const numPositions = Math.min(16, seqLen);
  const ids = new Int32Array(seqLen).fill(facts.maskId);
  ids[0] = facts.langIds.other;
  const positions = Int32Array.from({ length: numPositions }, (_, i) => seqLen - numPositions + i);
  let logits: Float32Array;
  try {
    logits = await worker.run({ ids, batch: 1, seqLen, positions, numPositions });
  } catch (err) {
    throw new Error(`${where} loads but does not run: ${(err as Error).message}`);
  }
  if (logits.length !== numPositions * facts.vocabSize) {
    throw new Error(`${where} returned ${logits.length} logits for positions [1, ${numPositions}]; expected [1, ${numPositions}, ${facts.vocabSize}]`);
  }
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
  const modelFile = denoiserFile(manifest, options.precision ?? 'auto');
  const where = path.basename(modelFile);
  const info = readOnnxFileInfo(modelFile);
  const facts = factsFromMetadata(info.metadata, where);
  checkManifestAgrees(info.metadata, manifest.metadata, where);

  const device = options.device ?? 'auto';
  const workerPath = options.workerPath ?? defaultWorkerPath();
  const threads = options.threads ?? 0;
  const stats: RunStats = { calls: 0, onnxMs: 0 };

  let current: InferenceWorker | undefined;
  let starting: Promise<InferenceWorker> | undefined;
  const start = async (): Promise<{ worker: InferenceWorker; loaded: LoadedMessage }> => {
    const worker = new InferenceWorker(workerPath, stats, (reason) => log(`runtime: ${reason}`));
    try {
      const loaded = await worker.load(modelFile, device, threads);
      checkDenoiserIo(loaded.inputs, loaded.outputs, facts, where);
      await warmUp(worker, facts, where);
      return { worker, loaded };
    } catch (err) {
      await worker.dispose();
      throw err;
    }
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
  log(`model ${manifest.id}: ${where} on ${loadedOn} (session ${first.loaded.ms.toFixed(0)} ms)`);

  /** Starts a fresh worker after a crash; concurrent callers share one restart. */
  const alive = async (): Promise<InferenceWorker> => {
    if (current && !current.exited) return current;
    if (!starting) {
      log('runtime: restarting the inference worker');
      starting = start()
        .then(({ worker }) => (current = worker))
        .finally(() => (starting = undefined));
    }
    return starting;
  };

  let disposed = false;
  const run: ModelFn = async (input) => {
    if (disposed) throw new Error('Model run refused: the model was unloaded');
    checkInput(input, facts);
    return (await alive()).run(input);
  };

  return {
    facts,
    codec: tokenizer.codec,
    run,
    manifest,
    modelFile,
    device: loadedOn,
    deviceNote,
    loadMs: performance.now() - started,
    tokenText: tokenizer.tokenText,
    stats,
    async dispose() {
      disposed = true;
      await current?.dispose();
      current = undefined;
    },
  };
}
