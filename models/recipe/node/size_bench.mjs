// The model calls of one 32-token, 8-step fill, timed on several exported cached-context models in interleaved rounds,
// so that a machine loaded by other work (training) slows every candidate alike and the ratios stay fair.
// eval_size_bench.py runs it after exporting the candidates; by hand:
//     node models/recipe/node/size_bench.mjs --rounds 15 DIR1 DIR2 ...
// One fill = the context graph on a 256-token canvas with a 32-token hole, then 8 step-graph calls over the 32 span
// tokens asking for the still-masked positions (32, 28, ..., 4), fetching only the K-best head, as the engine does;
// with --rows 2 the step runs two rows on one shared context cache (the editor's two inline rows). Session options
// are the runtime's (server/runtime/worker.ts): graph optimisation 'all', sequential execution, onnxruntime's threads.
// Prints one JSON line: per model, the median fill in ms for each row count over the rounds.
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(resolve(here, '../../../package.json'));
const ort = require('onnxruntime-node');

const argv = process.argv.slice(2);
let rounds = 15;
let rowsList = [1, 2];
let threads = 0;
const dirs = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--rounds') rounds = Number(argv[++i]);
  else if (argv[i] === '--rows') rowsList = argv[++i].split(',').map(Number);
  else if (argv[i] === '--threads') threads = Number(argv[++i]);
  else dirs.push(argv[i]);
}
const T = 256, S = 32, HOLE = 200, STEPS = 8;

async function open(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const pair = manifest.cached_context.int8;
  const options = { graphOptimizationLevel: 'all', executionMode: 'sequential' };
  if (threads > 0) options.intraOpNumThreads = threads;
  return {
    dir,
    vocab: manifest.facts?.vocab_size ?? 8192,
    context: await ort.InferenceSession.create(join(dir, pair.context), options),
    step: await ort.InferenceSession.create(join(dir, pair.step), options),
  };
}

const i64 = (values, dims) => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);
const bool = (values, dims) => new ort.Tensor('bool', Uint8Array.from(values), dims);

async function fill(m, rows) {
  const ids = Array.from({ length: T }, (_, i) => 16 + ((i * 7919) % (m.vocab - 16)));
  const span = Array.from({ length: T }, (_, i) => (i >= HOLE && i < HOLE + S ? 1 : 0));
  const t0 = performance.now();
  const ctx = await m.context.run({ input_ids: i64(ids, [1, T]), span_mask: bool(span, [1, T]) });
  const spanPos = Array.from({ length: S }, (_, i) => HOLE + i);
  for (let s = 0; s < STEPS; s++) {
    const p = S - (S / STEPS) * s;
    const spanIds = Array.from({ length: rows * S }, (_, i) => (i % S < S - p ? 17 : 1));
    const outIdx = Array.from({ length: rows * p }, (_, i) => S - p + (i % p));
    await m.step.run({
      span_ids: i64(spanIds, [rows, S]),
      span_pos: i64(Array.from({ length: rows * S }, (_, i) => spanPos[i % S]), [rows, S]),
      past_key: ctx.past_key,
      past_value: ctx.past_value,
      context_mask: bool(span.map((x) => 1 - x), [1, T]),
      out_idx: i64(outIdx, [rows, p]),
    }, ['top_logits', 'top_ids', 'log_z']);
  }
  return performance.now() - t0;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const models = [];
for (const d of dirs) models.push(await open(d));
for (const m of models) for (const r of rowsList) { await fill(m, r); await fill(m, r); } // warm-up
const times = models.map(() => Object.fromEntries(rowsList.map((r) => [r, []])));
for (let k = 0; k < rounds; k++) {
  for (let j = 0; j < models.length; j++) {
    const i = (j + k) % models.length; // rotate the order every round
    for (const r of rowsList) times[i][r].push(await fill(models[i], r));
  }
}
const out = models.map((m, i) => ({
  dir: m.dir,
  median_ms: Object.fromEntries(rowsList.map((r) => [r, Math.round(median(times[i][r]) * 10) / 10])),
}));
console.log(JSON.stringify({ rounds, threads, results: out }));
