/**
 * The inference worker thread: owns the onnxruntime InferenceSession so that `session.run()`, a synchronous native
 * call that blocks its thread for the whole forward pass, never blocks the language server's event loop.
 * Bundled as dist/worker.js; model.ts starts it and speaks the messages in worker-messages.ts.
 *
 * A cached-context model has two sessions: the context graph, run when a step's context differs from the cached
 * one, and the step graph, run every step with the cached keys and values (cached-context.ts). A model folder with a
 * discriminator adds its session here too (disc-session.ts). Whole generations run here too (`sample`): the engine's
 * sampler calls the session without a message round trip per step.
 */
import * as path from 'node:path';
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { type CachedRunInputs, ContextCache, describeCachedRun, splitForCache } from './cached-context';
import { wallClockMs } from './clock';
import { AbortError } from '../engine/errors';
import { sampleCanvas, type SamplerProgress } from '../engine/sampler';
import type { KBest, ModelFn } from '../engine/types';
import { handleDiscMessage, releaseDisc } from './disc-session';
import { defaultLibraryProbe, planProviders, shortError } from './providers';
import type { FromWorker, IoDescription, LoadMessage, SampleMessage, ToWorker } from './worker-messages';

if (!parentPort) throw new Error('worker.ts must run as a worker thread (started by server/runtime/model.ts)');
const port = parentPort;
let session: ort.InferenceSession | undefined;
let contextSession: ort.InferenceSession | undefined;

/** What the context graph computed for one context: the step graph's cache inputs. */
interface CachedContext {
  readonly pastKey: ort.Tensor;
  readonly pastValue: ort.Tensor;
  readonly contextMask: ort.Tensor;
}
const cache = new ContextCache<CachedContext>();

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function describeIo(list: readonly ort.InferenceSession.ValueMetadata[]): IoDescription[] {
  return list.map((m) => (m.isTensor ? { name: m.name, isTensor: true, type: m.type, shape: [...m.shape] } : { name: m.name, isTensor: false }));
}

/** Where the native binding (and any provider libraries installed next to it) lives. */
function bindingDir(): string | undefined {
  try {
    const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
    return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

async function load(message: LoadMessage): Promise<void> {
  const started = performance.now();
  const plan = planProviders(message.device, ort.listSupportedBackends(), defaultLibraryProbe(bindingDir()));
  const notes: string[] = [];
  for (const attempt of plan.attempts) {
    try {
      const options: ort.InferenceSession.SessionOptions = {
        executionProviders: [...attempt.providers],
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        interOpNumThreads: 1,
        // Errors only: provider probing logs warnings (for example a missing Vulkan loader) that are not ours to show.
        logSeverityLevel: 3,
      };
      if (message.threads > 0) options.intraOpNumThreads = message.threads;
      const context = message.contextFile ? await ort.InferenceSession.create(message.contextFile, options) : undefined;
      session = await ort.InferenceSession.create(message.modelFile, options);
      contextSession = context;
      cache.clear();
      post({
        type: 'loaded',
        device: attempt.device,
        skipped: [...plan.skipped],
        notes,
        inputs: describeIo(session.inputMetadata),
        outputs: describeIo(session.outputMetadata),
        ...(context ? { context: { inputs: describeIo(context.inputMetadata), outputs: describeIo(context.outputMetadata) } } : {}),
        ms: performance.now() - started,
      });
      return;
    } catch (err) {
      notes.push(`${attempt.device} failed: ${shortError(err)}`);
    }
  }
  const files = message.contextFile ? `${message.contextFile} and ${message.modelFile}` : message.modelFile;
  post({ type: 'loadFailed', message: `onnxruntime could not load ${files}: ${[...plan.skipped, ...notes].join('; ')}` });
}

function toInt64(values: Int32Array): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]);
  return out;
}

/** `row` repeated `rows` times, as one row-major array. */
function tile<T extends Int32Array | Uint8Array>(row: T, rows: number): T {
  const out = new (row.constructor as new (n: number) => T)(row.length * rows);
  for (let r = 0; r < rows; r++) out.set(row, r * row.length);
  return out;
}

/**
 * The outputs a denoising step fetches: the K-best head (models/README.md). The `logits` output is left in the
 * graph, so onnxruntime never copies B x P x V floats out of it.
 */
const HEAD_OUTPUTS = ['top_logits', 'top_ids', 'log_z'];

/** One output as a typed array that can be transferred whole (copied only if it views part of a buffer). */
function output<T extends Float32Array | Int32Array>(outputs: ort.InferenceSession.OnnxValueMapType, name: string, type: 'float32' | 'int32'): T {
  const value = outputs[name];
  if (!value || value.type !== type) throw new Error(`output "${name}" is ${value ? value.type : 'missing'}, expected ${type}`);
  // onnxruntime-node hands back a plain ArrayBuffer per output: transfer it whole.
  const data = value.data as T;
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : (data.slice() as T);
}

/** The head's outputs as the engine's K-best lists (model.ts adds how many ids they rank), and the buffers to transfer. */
function kbestOf(outputs: ort.InferenceSession.OnnxValueMapType): { kbest: Omit<KBest, 'allowed'>; buffers: ArrayBuffer[] } {
  const logits = output<Float32Array>(outputs, 'top_logits', 'float32');
  const ids = output<Int32Array>(outputs, 'top_ids', 'int32');
  const logZ = output<Float32Array>(outputs, 'log_z', 'float32');
  const dims = outputs.top_logits.dims;
  const kbest = { k: dims[dims.length - 1], logits, ids, logZ };
  return { kbest, buffers: [logits.buffer, ids.buffer, logZ.buffer] as ArrayBuffer[] };
}

/** Runs the context graph once for the run's context rows (batch 1 when the rows share it). */
async function encodeContext(context: ort.InferenceSession, run: CachedRunInputs): Promise<CachedContext> {
  const { contextRows: rows, seqLen: T } = run;
  const outputs = await context.run({
    input_ids: new ort.Tensor('int64', toInt64(run.contextIds), [rows, T]),
    span_mask: new ort.Tensor('bool', tile(run.spanMask, rows), [rows, T]),
  });
  const { past_key: pastKey, past_value: pastValue } = outputs;
  for (const [name, t] of [['past_key', pastKey], ['past_value', pastValue]] as const) {
    if (!t || t.type !== 'float32') throw new Error(`output "${name}" is ${t ? t.type : 'missing'}, expected float32`);
  }
  const contextMask = tile(run.spanMask.map((m) => 1 - m), rows);
  return { pastKey, pastValue, contextMask: new ort.Tensor('bool', contextMask, [rows, T]) };
}

/** One step's K-best answer, with the time spent inside onnxruntime and whether the context graph ran. */
interface StepAnswer {
  readonly kbest: Omit<KBest, 'allowed'>;
  readonly buffers: ArrayBuffer[];
  readonly ms: number;
  readonly contextRan: boolean;
}

/** One step of a cached-context model; errors name the graph and its inputs' shapes. */
async function stepCached(run: CachedRunInputs): Promise<StepAnswer> {
  const shapes = describeCachedRun(run);
  if (!session || !contextSession) throw new Error(`no cached-context model loaded (${shapes.step})`);
  const started = performance.now();
  let cached = cache.get(run);
  const contextRan = cached === undefined;
  if (!cached) {
    try {
      cached = await encodeContext(contextSession, run);
    } catch (err) {
      throw new Error(`the context graph with ${shapes.context}: ${shortError(err)}`);
    }
    cache.set(run, cached);
  }
  try {
    const { batch: B, numPositions: P } = run;
    const S = run.spanPos.length;
    const feeds = {
      span_ids: new ort.Tensor('int64', toInt64(run.spanIds), [B, S]),
      span_pos: new ort.Tensor('int64', toInt64(tile(run.spanPos, B)), [B, S]),
      past_key: cached.pastKey,
      past_value: cached.pastValue,
      context_mask: cached.contextMask,
      out_idx: new ort.Tensor('int64', toInt64(run.outIdx), [B, P]),
    };
    const { kbest, buffers } = kbestOf(await session.run(feeds, HEAD_OUTPUTS));
    return { kbest, buffers, ms: performance.now() - started, contextRan };
  } catch (err) {
    throw new Error(`the step graph with ${shapes.step}: ${shortError(err)}`);
  }
}

/** One step of a single-graph model; errors name its inputs' shapes. */
async function stepFull(ids: Int32Array, batch: number, seqLen: number, positions: Int32Array, numPositions: number): Promise<StepAnswer> {
  const shapes = `input_ids int64 [${batch}, ${seqLen}], positions int64 [${batch}, ${numPositions}]`;
  if (!session) throw new Error(`no model loaded (${shapes})`);
  try {
    const started = performance.now();
    const feeds = {
      input_ids: new ort.Tensor('int64', toInt64(ids), [batch, seqLen]),
      positions: new ort.Tensor('int64', toInt64(positions), [batch, numPositions]),
    };
    const { kbest, buffers } = kbestOf(await session.run(feeds, HEAD_OUTPUTS));
    return { kbest, buffers, ms: performance.now() - started, contextRan: false };
  } catch (err) {
    throw new Error(`${shapes}: ${shortError(err)}`);
  }
}

/** Answers one step asked for by the main thread (a `run` or `runCached` message). */
async function answer(id: number, step: Promise<StepAnswer>): Promise<void> {
  try {
    const { kbest, buffers, ms, contextRan } = await step;
    post({ type: 'result', id, kbest, ms, contextRan }, buffers);
  } catch (err) {
    post({ type: 'runFailed', id, message: (err as Error).message });
  }
}

/** The generations running in this worker, to abort between their steps. */
const generations = new Map<number, AbortController>();

/**
 * Runs a whole generation here, next to the session: the engine's sampler with a model function that calls the
 * session directly, so no step waits for a message between threads (on a small model that wait is a tenth of a step).
 */
async function sample(message: SampleMessage): Promise<void> {
  const controller = new AbortController();
  generations.set(message.id, controller);
  let onnxMs = 0;
  let contextCalls = 0;
  const model: ModelFn = async (input) => {
    // A turn of the event loop before each step, so that an abortSample message sent meanwhile is seen in time.
    await new Promise((resolve) => setImmediate(resolve));
    let step: StepAnswer;
    try {
      step = contextSession ? await stepCached(splitForCache(input)) : await stepFull(input.ids, input.batch, input.seqLen, input.positions, input.numPositions);
    } catch (err) {
      throw new Error(`Model run failed for ${(err as Error).message}`);
    }
    onnxMs += step.ms;
    if (step.contextRan) contextCalls++;
    return { ...step.kbest, allowed: message.allowed };
  };
  const reported: number[] = [];
  const onStep = (progress: SamplerProgress): void => {
    const commits = progress.commits.map((row, r) => row.slice(reported[r] ?? 0));
    progress.commits.forEach((row, r) => (reported[r] = row.length));
    post({ type: 'progress', id: message.id, step: progress.step, commits });
  };
  try {
    const result = await sampleCanvas(model, message.canvas, message.config, {
      signal: controller.signal,
      // A deadline in the config is on the wall clock, which reads the same here as on the main thread.
      now: wallClockMs,
      ...(message.progress ? { onStep } : {}),
    });
    post({ type: 'sampled', id: message.id, result, onnxMs, contextCalls }, result.rows.map((row) => row.buffer as ArrayBuffer));
  } catch (err) {
    const error = err as Error;
    post({ type: 'sampleFailed', id: message.id, name: error.name, message: error.message, aborted: err instanceof AbortError });
  } finally {
    generations.delete(message.id);
  }
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'load') void load(message);
  else if (message.type === 'run') void answer(message.id, stepFull(message.ids, message.batch, message.seqLen, message.positions, message.numPositions));
  else if (message.type === 'runCached') void answer(message.id, stepCached(message.run));
  else if (message.type === 'sample') void sample(message);
  else if (message.type === 'abortSample') generations.get(message.id)?.abort();
  else if (message.type === 'loadDisc' || message.type === 'score') void handleDiscMessage(message, post);
  else if (message.type === 'dispose') {
    const current = [session, contextSession];
    session = contextSession = undefined;
    cache.clear();
    void Promise.all([...current.map((s) => s?.release()), releaseDisc()]).finally(() => post({ type: 'disposed' }));
  }
});
