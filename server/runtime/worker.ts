/**
 * The inference worker thread: owns the onnxruntime InferenceSession so that `session.run()`, a synchronous native
 * call that blocks its thread for the whole forward pass, never blocks the language server's event loop.
 * Bundled as dist/worker.js; model.ts starts it and speaks the messages in worker-messages.ts.
 */
import * as path from 'node:path';
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { defaultLibraryProbe, planProviders, shortError } from './providers';
import type { FromWorker, IoDescription, LoadMessage, RunMessage, ToWorker } from './worker-messages';

if (!parentPort) throw new Error('worker.ts must run as a worker thread (started by server/runtime/model.ts)');
const port = parentPort;
let session: ort.InferenceSession | undefined;

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
      session = await ort.InferenceSession.create(message.modelFile, options);
      post({
        type: 'loaded',
        device: attempt.device,
        skipped: [...plan.skipped],
        notes,
        inputs: describeIo(session.inputMetadata),
        outputs: describeIo(session.outputMetadata),
        ms: performance.now() - started,
      });
      return;
    } catch (err) {
      notes.push(`${attempt.device} failed: ${shortError(err)}`);
    }
  }
  post({ type: 'loadFailed', message: `onnxruntime could not load ${message.modelFile}: ${[...plan.skipped, ...notes].join('; ')}` });
}

function toInt64(values: Int32Array): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]);
  return out;
}

async function run(message: RunMessage): Promise<void> {
  const shapes = `input_ids int64 [${message.batch}, ${message.seqLen}], positions int64 [${message.batch}, ${message.numPositions}]`;
  if (!session) {
    post({ type: 'runFailed', id: message.id, message: `no model loaded (${shapes})` });
    return;
  }
  try {
    const started = performance.now();
    const feeds = {
      input_ids: new ort.Tensor('int64', toInt64(message.ids), [message.batch, message.seqLen]),
      positions: new ort.Tensor('int64', toInt64(message.positions), [message.batch, message.numPositions]),
    };
    const output = (await session.run(feeds)).logits;
    if (!output || output.type !== 'float32') throw new Error(`output "logits" is ${output ? output.type : 'missing'}, expected float32`);
    // onnxruntime-node hands back a plain ArrayBuffer per output: transfer it whole (no copy of B x P x V floats);
    // copy only if the view ever covers part of a larger buffer.
    const data = output.data as Float32Array;
    const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
    const logits = whole ? data : new Float32Array(data);
    post({ type: 'result', id: message.id, logits, ms: performance.now() - started }, [logits.buffer as ArrayBuffer]);
  } catch (err) {
    post({ type: 'runFailed', id: message.id, message: `${shapes}: ${shortError(err)}` });
  }
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'load') void load(message);
  else if (message.type === 'run') void run(message);
  else if (message.type === 'dispose') {
    const current = session;
    session = undefined;
    void (current ? current.release() : Promise.resolve()).finally(() => post({ type: 'disposed' }));
  }
});
