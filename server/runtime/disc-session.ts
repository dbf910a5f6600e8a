/**
 * The discriminator's onnxruntime session, inside the inference worker (worker.ts hands it the `loadDisc` and `score`
 * messages): a second session next to the denoiser's, so that the one thread that owns onnxruntime runs both and a
 * scoring pass never blocks the language server's event loop. The main-thread side is discriminator.ts.
 */
import * as ort from 'onnxruntime-node';
import { shortError } from './providers';
import type { FromWorker, IoDescription, LoadDiscMessage, ScoreMessage } from './worker-messages';

let session: ort.InferenceSession | undefined;

type Post = (message: FromWorker, transfer?: ArrayBuffer[]) => void;

function describeIo(list: readonly ort.InferenceSession.ValueMetadata[]): IoDescription[] {
  return list.map((m) => (m.isTensor ? { name: m.name, isTensor: true, type: m.type, shape: [...m.shape] } : { name: m.name, isTensor: false }));
}

/** Creates the session on the denoiser's providers, then on the CPU alone if those fail. */
async function load(message: LoadDiscMessage, post: Post): Promise<void> {
  const started = performance.now();
  const attempts = message.providers.join() === 'cpu' ? [['cpu']] : [message.providers, ['cpu']];
  const notes: string[] = [];
  for (const providers of attempts) {
    try {
      const options: ort.InferenceSession.SessionOptions = {
        executionProviders: [...providers],
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        interOpNumThreads: 1,
        logSeverityLevel: 3,
      };
      if (message.threads > 0) options.intraOpNumThreads = message.threads;
      const created = await ort.InferenceSession.create(message.file, options);
      await session?.release();
      session = created;
      post({
        type: 'discLoaded',
        id: message.id,
        device: providers[0],
        notes,
        inputs: describeIo(created.inputMetadata),
        outputs: describeIo(created.outputMetadata),
        ms: performance.now() - started,
      });
      return;
    } catch (err) {
      notes.push(`${providers[0]} failed: ${shortError(err)}`);
    }
  }
  post({ type: 'runFailed', id: message.id, message: `onnxruntime could not load ${message.file}: ${notes.join('; ')}` });
}

function toInt64(values: Int32Array): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]);
  return out;
}

async function score(message: ScoreMessage, post: Post): Promise<void> {
  const { batch: B, seqLen: T, numPositions: P } = message;
  const shapes = `input_ids int64 [${B}, ${T}], positions int64 [${B}, ${P}], t float32 [${B}]`;
  if (!session) {
    post({ type: 'runFailed', id: message.id, message: `no discriminator loaded (${shapes})` });
    return;
  }
  try {
    const started = performance.now();
    const outputs = await session.run({
      input_ids: new ort.Tensor('int64', toInt64(message.ids), [B, T]),
      positions: new ort.Tensor('int64', toInt64(message.positions), [B, P]),
      t: new ort.Tensor('float32', message.t, [B]),
    });
    const output = outputs.scores;
    if (!output || output.type !== 'float32') throw new Error(`output "scores" is ${output ? output.type : 'missing'}, expected float32`);
    const data = output.data as Float32Array;
    const scores = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : new Float32Array(data);
    post({ type: 'scores', id: message.id, scores, ms: performance.now() - started }, [scores.buffer as ArrayBuffer]);
  } catch (err) {
    post({ type: 'runFailed', id: message.id, message: `the discriminator with ${shapes}: ${shortError(err)}` });
  }
}

/** Handles one discriminator message in the worker thread. */
export function handleDiscMessage(message: LoadDiscMessage | ScoreMessage, post: Post): Promise<void> {
  return message.type === 'loadDisc' ? load(message, post) : score(message, post);
}

/** Releases the discriminator's session, if one is loaded (the worker's dispose). */
export async function releaseDisc(): Promise<void> {
  const current = session;
  session = undefined;
  await current?.release();
}
