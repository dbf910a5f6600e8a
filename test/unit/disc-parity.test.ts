/**
 * Parity of the discriminator as the runtime runs it (disc.int8.onnx in the inference worker, server/runtime/
 * discriminator.ts) with PyTorch: disc_parity.json (written by models/recipe/scripts/export_disc.py) holds canvases and the
 * PyTorch fp32 scores. The int8 file must match them to a relative L2 error below the fixture's `int8_rel_l2` in every
 * case, and give the PyTorch sign to at least `int8_sign` of the scores whose magnitude is at least `sign_min` (the
 * sign of a near-zero logit is noise): the bounds export_disc.py checks at export, read from the fixture.
 *
 * disc_parity.json: {"format": 1, "tolerance": {"int8_rel_l2", "int8_sign", "sign_min", ...}, "cases": [{"name",
 *                    "input_ids" [B][T], "positions" [B][P], "t" [B], "scores" [B][P]}]}
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadModel } from '../../server/runtime/model';
import { REPO_ROOT, SHIPPED_MODEL_DIR, SMOKE_STUDENT_DIR } from '../fixtures/models';

interface DiscParityCase {
  name: string;
  input_ids: number[][];
  positions: number[][];
  t: number[];
  scores: number[][];
}

interface DiscParity {
  format?: number;
  tolerance?: { int8_rel_l2?: number; int8_sign?: number; sign_min?: number };
  cases?: DiscParityCase[];
}

const folders = [SHIPPED_MODEL_DIR, SMOKE_STUDENT_DIR].filter((dir) => fs.existsSync(path.join(dir, 'disc_parity.json')));

describe('discriminator ONNX parity with PyTorch', () => {
  if (folders.length === 0) {
    it(
      'has no model folder with disc_parity.json yet',
      { skip: 'no discriminator parity fixture: models/recipe/run_cpu.sh writes models/recipe/runs/smoke/student' },
      () => undefined,
    );
  }
  for (const dir of folders) {
    it(`${path.relative(REPO_ROOT, dir)}/disc.int8.onnx matches the PyTorch scores within the fixture's tolerance`, async (t) => {
      const parity = JSON.parse(fs.readFileSync(path.join(dir, 'disc_parity.json'), 'utf8')) as DiscParity;
      assert.equal(parity.format, 1, `disc_parity.json format ${parity.format} (this test reads format 1)`);
      const { int8_rel_l2: maxRelL2, int8_sign: minSign, sign_min: signMin } = parity.tolerance ?? {};
      assert.ok(maxRelL2 !== undefined && minSign !== undefined && signMin !== undefined, 'disc_parity.json lacks int8_rel_l2, int8_sign or sign_min');
      assert.ok(Array.isArray(parity.cases) && parity.cases.length > 0, 'disc_parity.json holds no cases');
      const logs: string[] = [];
      const model = await loadModel(dir, { device: 'cpu', threads: 1, log: (line) => logs.push(line) });
      try {
        const disc = model.discriminator;
        assert.ok(disc, `the discriminator was not loaded:\n${logs.join('\n')}`);
        // The runtime refuses canvases longer than max_seq_len; the fixture may hold longer ones.
        const fitting = parity.cases.filter((c) => c.input_ids[0].length <= model.facts.maxSeqLen);
        for (const c of parity.cases) {
          if (!fitting.includes(c)) t.diagnostic(`left out "${c.name}": T = ${c.input_ids[0].length} exceeds max_seq_len ${model.facts.maxSeqLen}`);
        }
        assert.ok(fitting.length > 0, `no case fits max_seq_len ${model.facts.maxSeqLen}`);
        let same = 0;
        let clear = 0;
        for (const c of fitting) {
          const batch = c.input_ids.length;
          const numPositions = c.positions[0].length;
          const scores = await disc.score({
            ids: Int32Array.from(c.input_ids.flat()),
            batch,
            seqLen: c.input_ids[0].length,
            positions: Int32Array.from(c.positions.flat()),
            numPositions,
            t: Float32Array.from(c.t),
          });
          const expected = c.scores.flat();
          assert.equal(scores.length, expected.length, `${c.name}: ${scores.length} scores, the fixture has ${expected.length}`);
          let diff = 0;
          let norm = 0;
          expected.forEach((e, i) => {
            diff += (scores[i] - e) ** 2;
            norm += e ** 2;
            if (Math.abs(e) >= signMin) {
              clear++;
              if (Math.sign(scores[i]) === Math.sign(e)) same++;
            }
          });
          const error = Math.sqrt(diff / Math.max(norm, 1e-24));
          t.diagnostic(`${c.name}: relative L2 ${error.toExponential(2)}`);
          assert.ok(error < maxRelL2, `${c.name}: relative L2 error ${error.toExponential(2)} (bound ${maxRelL2})`);
        }
        const agreement = clear > 0 ? same / clear : 1;
        t.diagnostic(`sign agreement ${(100 * agreement).toFixed(1)}% over ${clear} scores with |score| >= ${signMin}`);
        assert.ok(agreement >= minSign, `sign agreement ${(100 * agreement).toFixed(1)}% (bound ${100 * minSign}%)`);
      } finally {
        await model.dispose();
      }
    });
  }
});
