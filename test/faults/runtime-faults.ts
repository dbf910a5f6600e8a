/**
 * The fault suite's inputs to the runtime: generations on a worker that crashes and on one that hangs (each must fail
 * with a message and be followed by a working worker), and model folders with hostile metadata or manifests (each
 * must load or be refused by name, never take the process down or run it out of memory).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../server/runtime/model';
import { tempDir } from '../fixtures/models';
import { greedySamplerConfig, writeTinyModel } from '../fixtures/tiny-model';
import { Gen, junk } from './inputs';
import type { Tally } from './tally';

const FIXTURES = path.join(__dirname, '..', 'fixtures');
/** Short, so that a hang costs little; the test checks the worker is back within 2 s of it. */
const GENERATION_DEADLINE_MS = 400;

const config = greedySamplerConfig;

/** Generations of 1-8 rows on a worker that crashes at 7 rows and on one that hangs at 5 rows. */
async function brokenWorkers(tally: Tally, g: Gen, scale: number): Promise<void> {
  const group = 'worker crashes and hangs';
  const fixture = writeTinyModel(tempDir('faults-worker'));
  const canvas = { ids: Int32Array.from({ length: 12 }, (_, t) => (t >= 4 && t < 8 ? 1 : 20 + t)), holes: [{ start: 4, length: 4 }] };
  for (const worker of ['crashing-worker.ts', 'hanging-worker.ts']) {
    const logs: string[] = [];
    const model = await loadModel(fixture.dir, { device: 'cpu', threads: 1, workerPath: path.join(FIXTURES, worker), deadlineMs: GENERATION_DEADLINE_MS, log: (l) => logs.push(l) });
    try {
      for (let i = 0; i < Math.round(80 * scale); i++) {
        const rows = g.int(1, 8);
        // A hang is abandoned at the deadline and a fresh worker answers within 2 s after it.
        await tally.check(group, `${worker}: ${rows} rows`, GENERATION_DEADLINE_MS + 2000, async () => {
          await model.sample(canvas, config(fixture, rows));
          return 'answer';
        });
      }
    } finally {
      await model.dispose();
    }
    tally.group(group).restarts += logs.filter((l) => l === 'runtime: restarting the inference worker').length;
  }
}

/** Hostile values for each metadata key: past the limits, of the wrong type, or garbage. */
function hostileValue(g: Gen): string {
  return g.pick([
    '100000000',
    String(2 ** 53),
    '1e308',
    '-1',
    '0',
    '1.5',
    'NaN',
    '',
    ' 7 ',
    '[8, 16, 5000000]',
    JSON.stringify(Array.from({ length: 10_000 }, (_, i) => i + 1)),
    '[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]',
    '{"other": 1e9}',
    '{"__proto__": {"other": 5}}',
    'x'.repeat(100_000),
    JSON.stringify(junk(g)) ?? 'null',
  ]);
}

const KEYS = [
  'unmask.format',
  'unmask.kind',
  'unmask.vocab_size',
  'unmask.max_seq_len',
  'unmask.mask_id',
  'unmask.eos_id',
  'unmask.pad_id',
  'unmask.file_sep_id',
  'unmask.lang_ids',
  'unmask.span_buckets',
  'unmask.attention',
  'unmask.top_k',
  'unmask.banned_ids',
  'unmask.special_ids',
];

/** Model folders whose metadata or manifest is hostile: each loads, or is refused with a message naming the problem. */
async function hostileModels(tally: Tally, g: Gen, scale: number): Promise<void> {
  const group = 'hostile models';
  const root = tempDir('faults-models');
  for (let i = 0; i < Math.round(250 * scale); i++) {
    const dir = path.join(root, String(i));
    const key = g.pick(KEYS);
    const value = hostileValue(g);
    const manifestJunk = g.chance(0.15);
    await tally.check(group, `${manifestJunk ? 'manifest.json junk' : `${key} = ${value.slice(0, 60)}`}`, 60_000, async () => {
      writeTinyModel(dir, { metadata: { [key]: value }, manifestMetadata: null });
      if (manifestJunk) fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(junk(g)) ?? '');
      const model = await loadModel(dir, { device: 'cpu', threads: 1 });
      await model.dispose();
      return 'answer';
    });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function runtimeFaults(tally: Tally, seed: number, scale: number): Promise<void> {
  const g = new Gen(seed + 1);
  await brokenWorkers(tally, g, scale);
  await hostileModels(tally, g, scale);
}
