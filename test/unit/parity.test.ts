/**
 * Parity of the ONNX model run by onnxruntime-node with PyTorch: models/<id>/parity.json holds infill canvases and
 * what the PyTorch fp32 checkpoint computed on them (written by models/recipe/scripts/export_onnx.py). The runtime answers with the
 * graph's K-best head (models/README.md), so that is what is compared: the fp32 ONNX file must list the same K best
 * tokens as the stored logits, with their logits and log_z to a relative L2 error below 1e-4; the int8 file must
 * pick the same top-1 token at >= 97% of the masked positions.
 *
 * parity.json: {"format": 1, "cases": [{"name", "input_ids" [B][T], "positions" [B][P], "holes" [[start, length]]
 *               (the span layout; older fixtures lack it), "top1" [B][P], "logits_at" [K] (indices into each row of
 *               positions), "logits" [B][K][V]}]}
 *
 * A cached-context model (context and step graphs, models/README.md) is checked the same way: its logits come from
 * the context graph run once per case and the step graph over the holes, against the checkpoint's full forward.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, describe, it } from 'node:test';
import type { KBest } from '../../server/engine/types';
import { type Precision, denoiserGraphs, loadManifest } from '../../server/runtime/manifest';
import { type LoadedModel, loadModel } from '../../server/runtime/model';
import { readOnnxFileInfo } from '../../server/runtime/onnx-proto';
import { kbestDiff, kbestFromLogits } from '../fixtures/kbest';
import { REPO_ROOT, SHIPPED_MODEL_DIR, SMOKE_CACHED_MODEL_DIR, SMOKE_MODEL_DIR } from '../fixtures/models';

const FP32_MAX_REL_L2 = 1e-4;
const INT8_MIN_TOP1 = 0.97;

interface ParityCase {
  name: string;
  input_ids: number[][];
  positions: number[][];
  holes?: [number, number][];
  top1: number[][];
  logits_at: number[];
  logits: number[][][];
}

/** The graph files of `dir` at one precision ("model.onnx", "context.onnx + step.onnx"), or undefined if not shipped. */
function graphNames(dir: string, precision: Exclude<Precision, 'auto'>): string | undefined {
  try {
    const graphs = denoiserGraphs(loadManifest(dir), precision);
    return graphs.kind === 'cached' ? `${path.basename(graphs.context)} + ${path.basename(graphs.step)}` : path.basename(graphs.model);
  } catch {
    return undefined;
  }
}

/**
 * The cases of a parity file that fit the model: the runtime refuses canvases longer than max_seq_len (the contract
 * in models/README.md), so longer ones are reported and left out, and at least one case must remain.
 */
function readCases(file: string, maxSeqLen: number, t: TestContext): ParityCase[] {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { format?: number; cases?: ParityCase[] };
  assert.equal(raw.format, 1, `${file}: parity format ${raw.format} (this test reads format 1)`);
  assert.ok(Array.isArray(raw.cases) && raw.cases.length > 0, `${file} holds no cases`);
  const fitting = raw.cases.filter((c) => c.input_ids[0].length <= maxSeqLen);
  for (const c of raw.cases) {
    if (!fitting.includes(c)) t.diagnostic(`left out "${c.name}": T = ${c.input_ids[0].length} exceeds max_seq_len ${maxSeqLen}`);
  }
  assert.ok(fitting.length > 0, `no case of ${file} fits max_seq_len ${maxSeqLen}`);
  return fitting;
}

/** Runs one case: the K-best lists [B, P, K] of its positions. */
async function runCase(model: LoadedModel, c: ParityCase): Promise<{ kbest: KBest; batch: number; numPositions: number; vocab: number }> {
  const batch = c.input_ids.length;
  const numPositions = c.positions[0].length;
  const kbest = await model.run({
    ids: Int32Array.from(c.input_ids.flat()),
    batch,
    seqLen: c.input_ids[0].length,
    positions: Int32Array.from(c.positions.flat()),
    numPositions,
    holes: (c.holes ?? []).map(([start, length]) => ({ start, length })),
  });
  return { kbest, batch, numPositions, vocab: model.facts.vocabSize };
}

/** The ids the graph's K-best head leaves out (its metadata): the expected lists must leave out the same. */
function headBannedIds(model: LoadedModel): number[] {
  return JSON.parse(readOnnxFileInfo(model.modelFile).metadata['unmask.banned_ids']) as number[];
}

const folders = [SHIPPED_MODEL_DIR, SMOKE_MODEL_DIR, SMOKE_CACHED_MODEL_DIR].filter((dir) => fs.existsSync(path.join(dir, 'parity.json')));

describe('ONNX parity with PyTorch', () => {
  if (folders.length === 0) {
    it('has no model folder with parity.json yet (models/unmask-coder-base or the recipe smoke run)', { skip: 'no parity fixture' }, () => undefined);
  }
  for (const dir of folders) {
    const label = path.relative(REPO_ROOT, dir);
    const cases = (model: LoadedModel, t: TestContext): ParityCase[] => readCases(path.join(dir, 'parity.json'), model.facts.maxSeqLen, t);

    const fp32 = graphNames(dir, 'fp32');
    it(
      `${label}/${fp32 ?? 'model.onnx'} matches the PyTorch fp32 logits (relative L2 < ${FP32_MAX_REL_L2})`,
      { skip: fp32 ? false : 'no fp32 graph is shipped in this folder, so only the int8 check runs' },
      async (t) => {
        const model = await loadModel(dir, { device: 'cpu', precision: 'fp32', threads: 1 });
        try {
          for (const c of cases(model, t)) {
            const { kbest, batch, numPositions, vocab } = await runCase(model, c);
            const { k } = kbest;
            let diff = 0;
            let norm = 0;
            for (let b = 0; b < batch; b++) {
              c.logits_at.forEach((p, i) => {
                const stored = c.logits[b][i];
                assert.equal(stored.length, vocab, `${c.name}: stored logits have ${stored.length} entries, the model ${vocab}`);
                const expected = kbestFromLogits(Float32Array.from(stored), vocab, k, headBannedIds(model));
                const slot = b * numPositions + p;
                const actual: KBest = {
                  k,
                  logits: kbest.logits.subarray(slot * k, (slot + 1) * k),
                  ids: kbest.ids.subarray(slot * k, (slot + 1) * k),
                  logZ: kbest.logZ.subarray(slot, slot + 1),
                  allowed: kbest.allowed,
                };
                assert.ok(Number.isFinite(kbestDiff(actual, expected, 1e-3)), `${c.name}: row ${b}, position ${p} lists other tokens than PyTorch's top ${k}`);
                for (let j = 0; j < k; j++) {
                  if (expected.logits[j] === -Infinity) continue;
                  diff += (actual.logits[j] - expected.logits[j]) ** 2;
                  norm += expected.logits[j] ** 2;
                }
                diff += (actual.logZ[0] - expected.logZ[0]) ** 2;
                norm += expected.logZ[0] ** 2;
              });
            }
            const error = Math.sqrt(diff / norm);
            t.diagnostic(`${c.name}: relative L2 ${error.toExponential(2)}`);
            assert.ok(error < FP32_MAX_REL_L2, `${c.name}: relative L2 error ${error.toExponential(2)}`);
          }
        } finally {
          await model.dispose();
        }
      },
    );

    const int8 = graphNames(dir, 'int8');
    it(
      `${label}/${int8 ?? 'model.int8.onnx'} picks PyTorch's top-1 token at >= ${INT8_MIN_TOP1 * 100}% of positions`,
      { skip: int8 ? false : 'no int8 graph in this folder' },
      async (t) => {
        const model = await loadModel(dir, { device: 'cpu', precision: 'int8', threads: 1 });
        let agree = 0;
        let total = 0;
        try {
          for (const c of cases(model, t)) {
            const { kbest, batch, numPositions } = await runCase(model, c);
            const banned = new Set(headBannedIds(model));
            for (let b = 0; b < batch; b++) {
              for (let p = 0; p < numPositions; p++) {
                // The head never lists a banned id; a position whose PyTorch top-1 is one is not comparable.
                if (banned.has(c.top1[b][p])) continue;
                if (kbest.ids[(b * numPositions + p) * kbest.k] === c.top1[b][p]) agree++;
                total++;
              }
            }
          }
        } finally {
          await model.dispose();
        }
        t.diagnostic(`top-1 agreement ${((100 * agree) / total).toFixed(1)}% over ${total} positions`);
        assert.ok(agree / total >= INT8_MIN_TOP1, `top-1 agreement ${((100 * agree) / total).toFixed(1)}% over ${total} positions`);
      },
    );
  }
});
