/**
 * The optional reward model of a model folder (models/README.md, "Discriminator ONNX contract"): the discriminator
 * the manifest lists with role "discriminator-int8" (models/recipe/scripts/export_disc.py). This module checks its file and
 * metadata against the denoiser's facts, loads it as a second session in the inference worker (disc-session.ts) and
 * scores batches of canvases with it. A discriminator that is missing, broken or made for another vocabulary is
 * logged and left out: the model still completes, and candidates rank by likelihood and syntax alone.
 */
import * as path from 'node:path';
import type { ModelFacts } from '../engine/types';
import { type Manifest, verifyFile } from './manifest';
import { type IoContract, checkIo, checkManifestAgrees, factsFromMetadata } from './metadata';
import { readOnnxFileInfo } from './onnx-proto';
import type { DiscLoadedMessage, FromWorker, ScoresMessage, ToWorker } from './worker-messages';

/** The manifest role of the discriminator the runtime loads. */
export const DISCRIMINATOR_ROLE = 'discriminator-int8';

/** The contract's graph: input_ids [B,T] int64, positions [B,P] int64, t [B] float32 -> scores [B,P] float32. */
const DISCRIMINATOR_IO: IoContract = {
  inputs: [
    { name: 'input_ids', type: 'int64', dims: ['B', 'T'] },
    { name: 'positions', type: 'int64', dims: ['B', 'P'] },
    { name: 't', type: 'float32', dims: ['B'] },
  ],
  outputs: [{ name: 'scores', type: 'float32', dims: ['B', 'P'] }],
};

/** One batched discriminator pass: `ids` [batch, seqLen] row-major, `positions` [batch, numPositions], `t` [batch]. */
export interface DiscriminatorInput {
  readonly ids: Int32Array;
  readonly batch: number;
  readonly seqLen: number;
  readonly positions: Int32Array;
  readonly numPositions: number;
  /** Noise level of each row in [0, 1]: the share of its span positions still masked. */
  readonly t: Float32Array;
}

export interface LoadedDiscriminator {
  /** The ONNX file in use. */
  readonly file: string;
  /** The noise level of a fully revealed canvas (`unmask.disc` t_clean): the level finished candidates are scored at. */
  readonly tClean: number;
  /** The execution provider its session runs on. */
  readonly device: string;
  /** Discriminator passes and the time spent inside onnxruntime for them, since load. */
  readonly stats: Readonly<{ calls: number; onnxMs: number }>;
  /** Per-token scores [batch, numPositions] (log-odds teacher : student; higher looks more like the teacher). */
  score(input: DiscriminatorInput): Promise<Float32Array>;
}

/** The part of model.ts's inference worker the discriminator talks through (one worker; a new one after a crash). */
export interface WorkerChannel {
  /** Sends the message built for a fresh request id; resolves with the worker's answer of that id. */
  request(build: (id: number) => ToWorker, transfer: ArrayBuffer[], what: string): Promise<FromWorker>;
}

/** What a discriminator file was checked to be, before any session exists. */
export interface DiscriminatorSpec {
  readonly file: string;
  /** The file name, for logs and errors. */
  readonly where: string;
  readonly facts: ModelFacts;
  readonly tClean: number;
}

/** Throws naming the first fact on which the discriminator and the denoiser disagree. */
function checkFitsDenoiser(disc: ModelFacts, denoiser: ModelFacts, where: string, denoiserWhere: string): void {
  const languages = (facts: ModelFacts): string => JSON.stringify(Object.entries(facts.langIds).sort(([a], [b]) => a.localeCompare(b)));
  const pairs: [string, string | number, string | number][] = [
    ['unmask.vocab_size', disc.vocabSize, denoiser.vocabSize],
    ['unmask.mask_id', disc.maskId, denoiser.maskId],
    ['unmask.eos_id', disc.eosId, denoiser.eosId],
    ['unmask.pad_id', disc.padId, denoiser.padId],
    ['unmask.file_sep_id', disc.fileSepId, denoiser.fileSepId],
    ['unmask.lang_ids', languages(disc), languages(denoiser)],
  ];
  for (const [key, own, theirs] of pairs) {
    if (own !== theirs) throw new Error(`${where} does not fit the denoiser ${denoiserWhere}: "${key}" is ${own}, the denoiser's is ${theirs}`);
  }
  if (disc.maxSeqLen < denoiser.maxSeqLen) {
    throw new Error(`${where} does not fit the denoiser ${denoiserWhere}: "unmask.max_seq_len" is ${disc.maxSeqLen}, below the denoiser's ${denoiser.maxSeqLen}`);
  }
}

/** `t_clean` of the `unmask.disc` metadata: the noise level a finished canvas is scored at. */
function cleanLevel(meta: Readonly<Record<string, string>>, where: string): number {
  const raw = meta['unmask.disc'];
  if (raw === undefined) throw new Error(`${where} lacks metadata "unmask.disc"`);
  let tClean: unknown;
  try {
    tClean = (JSON.parse(raw) as { t_clean?: unknown } | null)?.t_clean;
  } catch {
    throw new Error(`${where} metadata "unmask.disc" is not JSON: ${raw.slice(0, 80)}`);
  }
  if (typeof tClean !== 'number' || !(tClean >= 0 && tClean <= 1)) {
    throw new Error(`${where} metadata "unmask.disc" needs a "t_clean" in [0, 1], got ${JSON.stringify(tClean)}`);
  }
  return tClean;
}

/**
 * Reads and checks the discriminator the manifest lists (role "discriminator-int8"): its size and hash, its metadata
 * (kind "disc", full attention, `unmask.disc` with t_clean), agreement with the manifest's "discriminator.facts", and
 * the vocabulary, special ids and language tags of the denoiser. Undefined when the manifest lists none; throws
 * naming the first problem otherwise.
 */
export function readDiscriminator(manifest: Manifest, denoiser: ModelFacts, denoiserWhere: string, verifyHashes: boolean): DiscriminatorSpec | undefined {
  const entry = manifest.files.find((f) => f.role === DISCRIMINATOR_ROLE);
  if (!entry) return undefined;
  verifyFile(manifest, entry, verifyHashes);
  const file = path.join(manifest.dir, entry.path);
  const where = entry.path;
  const meta = readOnnxFileInfo(file).metadata;
  const facts = factsFromMetadata(meta, where, 'disc');
  const attention = meta['unmask.attention'] ?? 'full';
  if (attention !== 'full') throw new Error(`${where} has unmask.attention "${attention}"; a discriminator attends over the full canvas ("full")`);
  checkManifestAgrees(meta, manifest.discriminatorFacts, where);
  checkFitsDenoiser(facts, denoiser, where, denoiserWhere);
  return { file, where, facts, tClean: cleanLevel(meta, where) };
}

function describeInput({ batch, seqLen, numPositions }: DiscriminatorInput): string {
  return `input_ids int64 [${batch}, ${seqLen}], positions int64 [${batch}, ${numPositions}], t float32 [${batch}]`;
}

/** Checks an input against the facts before it crosses to the worker; the error names the input and shape. */
function checkInput(input: DiscriminatorInput, facts: ModelFacts, where: string): void {
  const { batch, seqLen, numPositions } = input;
  const fail = (what: string): never => {
    throw new Error(`${where} input ${describeInput(input)}: ${what}`);
  };
  if (!(batch >= 1 && seqLen >= 1 && numPositions >= 1)) fail('every dimension must be at least 1');
  if (input.ids.length !== batch * seqLen) fail(`input_ids holds ${input.ids.length} values`);
  if (input.positions.length !== batch * numPositions) fail(`positions holds ${input.positions.length} values`);
  if (input.t.length !== batch) fail(`t holds ${input.t.length} values`);
  if (seqLen > facts.maxSeqLen) fail(`T = ${seqLen} exceeds the discriminator's max_seq_len ${facts.maxSeqLen}`);
  for (const p of input.positions) if (p < 0 || p >= seqLen) fail(`position ${p} is outside [0, ${seqLen})`);
  for (const id of input.ids) if (id < 0 || id >= facts.vocabSize) fail(`token id ${id} is outside the vocabulary (${facts.vocabSize})`);
  for (const t of input.t) if (!(t >= 0 && t <= 1)) fail(`noise level ${t} is outside [0, 1]`);
}

export interface DiscriminatorOptions {
  /** The inference worker to run in (model.ts's, restarted after a crash). */
  readonly worker: () => Promise<WorkerChannel>;
  /** The execution provider the denoiser runs on; the discriminator tries it first. */
  readonly device: string;
  readonly threads: number;
}

/**
 * Starts the discriminator's session in each worker it is asked to run in (the first, and a fresh one after a crash),
 * checks the session's inputs and outputs against the contract and runs one small pass, so that a graph that fails
 * at run time is refused at load.
 */
export async function loadDiscriminator(spec: DiscriminatorSpec, options: DiscriminatorOptions): Promise<LoadedDiscriminator> {
  const stats = { calls: 0, onnxMs: 0 };
  const providers = options.device === 'cpu' ? ['cpu'] : [options.device, 'cpu'];
  const sessions = new WeakMap<WorkerChannel, Promise<DiscLoadedMessage>>();

  const send = async (worker: WorkerChannel, input: DiscriminatorInput): Promise<Float32Array> => {
    checkInput(input, spec.facts, spec.where);
    // Copies, because the caller keeps its arrays and transferring would detach them.
    const ids = new Int32Array(input.ids);
    const positions = new Int32Array(input.positions);
    const t = new Float32Array(input.t);
    const { batch, seqLen, numPositions } = input;
    const answer = (await worker.request(
      (id) => ({ type: 'score', id, ids, batch, seqLen, positions, numPositions, t }),
      [ids.buffer, positions.buffer, t.buffer],
      `${spec.where} with ${describeInput(input)}`,
    )) as ScoresMessage;
    if (answer.scores.length !== batch * numPositions) {
      throw new Error(`${spec.where} returned ${answer.scores.length} scores for ${describeInput(input)}; expected [${batch}, ${numPositions}]`);
    }
    stats.calls += 1;
    stats.onnxMs += answer.ms;
    return answer.scores;
  };

  const start = async (worker: WorkerChannel): Promise<DiscLoadedMessage> => {
    const loaded = (await worker.request((id) => ({ type: 'loadDisc', id, file: spec.file, providers, threads: options.threads }), [], spec.where)) as DiscLoadedMessage;
    checkIo(loaded.inputs, loaded.outputs, DISCRIMINATOR_IO, spec.where);
    const seqLen = Math.min(16, spec.facts.maxSeqLen);
    const ids = new Int32Array(seqLen).fill(spec.facts.maskId);
    ids[0] = spec.facts.langIds.other;
    try {
      await send(worker, { ids, batch: 1, seqLen, positions: Int32Array.of(seqLen - 1), numPositions: 1, t: Float32Array.of(1) });
    } catch (err) {
      throw new Error(`${spec.where} loads but does not run: ${(err as Error).message}`);
    }
    return loaded;
  };

  /** The worker to run in, with the discriminator's session started in it. */
  const ready = async (): Promise<{ worker: WorkerChannel; loaded: DiscLoadedMessage }> => {
    const worker = await options.worker();
    let session = sessions.get(worker);
    if (!session) {
      session = start(worker);
      sessions.set(worker, session);
    }
    return { worker, loaded: await session };
  };

  const first = await ready();
  return {
    file: spec.file,
    tClean: spec.tClean,
    device: first.loaded.device,
    stats,
    async score(input) {
      return send((await ready()).worker, input);
    },
  };
}

/**
 * The model folder's discriminator, loaded, or undefined when the manifest lists none or it cannot be used; never
 * throws. Why it is not used goes to the log, so a broken reward model costs the ranking its reward term, not the
 * completions.
 */
export async function openDiscriminator(
  manifest: Manifest,
  denoiser: ModelFacts,
  denoiserWhere: string,
  options: DiscriminatorOptions & { readonly verifyHashes: boolean; readonly log: (line: string) => void },
): Promise<LoadedDiscriminator | undefined> {
  try {
    const spec = readDiscriminator(manifest, denoiser, denoiserWhere, options.verifyHashes);
    if (!spec) return undefined;
    const loaded = await loadDiscriminator(spec, options);
    options.log(`discriminator ${spec.where}: reranks candidates (scored at t = ${spec.tClean}) on ${loaded.device}`);
    return loaded;
  } catch (err) {
    options.log(`discriminator: not used, candidates rank by likelihood and syntax: ${(err as Error).message}`);
    return undefined;
  }
}
