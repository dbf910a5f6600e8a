import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GateFeatures } from '../../server/engine/gate-features';
import { describeGate, GATE_WEIGHTS, gateScore, worthShowing } from '../../server/protocol/gate';

/** A model row nobody agrees with, at the start of a line: the least likely suggestion. */
const unsure: GateFeatures = { source: 'model', copyRun: 0, copyAgrees: false, firstLineMean: 0.9, firstLineMin: 0.1, agreement: 0, midLine: false };
/** A copy of a long run that the model's rows write too, inside a line. */
const sure: GateFeatures = { source: 'copy', copyRun: 64, copyAgrees: true, firstLineMean: 0.8, firstLineMin: 0.7, agreement: 1, midLine: true };

describe('the gate score', () => {
  it('is the logistic model of gate.ts on the features (the recipe mirrors it: eval_calibrate.py score)', () => {
    const w = GATE_WEIGHTS;
    const z = w.bias + w.copy + w.copyRunLog2 * 6 + w.copyAgrees + w.midLine + w.agreement + w.firstLineMin * 0.7;
    assert.ok(Math.abs(gateScore(sure) - 1 / (1 + Math.exp(-z))) < 1e-12);
    const weights = { bias: 0, copy: 0, copyRunLog2: 1, copyAgrees: 0, midLine: 0, agreement: 0, firstLineMin: 0 };
    assert.ok(Math.abs(gateScore({ ...sure, copyRun: 8 }, weights) - 1 / (1 + Math.exp(-3))) < 1e-12, 'log2 of the run');
    assert.equal(gateScore({ ...unsure, copyRun: 8 }, weights), 0.5, 'a model row has no copy run');
  });

  it('gives the number the recipe\'s mirror gives for the same features and weights (tests/test_calibrate.py)', () => {
    const weights = { bias: -1, copy: 0.5, copyRunLog2: 0.25, copyAgrees: 0.75, midLine: 1, agreement: 2, firstLineMin: -0.5 };
    const example: GateFeatures = { source: 'copy', copyRun: 12, copyAgrees: false, firstLineMean: 0.5, firstLineMin: 0.25, agreement: 0.5, midLine: true };
    assert.ok(Math.abs(gateScore(example, weights) - 0.9064670266732868) < 1e-12);
  });

  it('rises with each sign of a right first line', () => {
    const base: GateFeatures = { source: 'copy', copyRun: 8, copyAgrees: false, firstLineMean: 0.5, firstLineMin: 0.3, agreement: 0, midLine: false };
    for (const better of [{ copyRun: 32 }, { copyAgrees: true }, { midLine: true }, { agreement: 1 }, { firstLineMin: 0.9 }]) {
      assert.ok(gateScore({ ...base, ...better }) > gateScore(base), JSON.stringify(better));
    }
    assert.ok(gateScore(sure) > 0.5 && gateScore(unsure) < 0.05, `${gateScore(sure)} ${gateScore(unsure)}`);
  });
});

describe('the gate on suggestions made as you type', () => {
  it('hides a suggestion whose score is below the threshold and shows one at or above it', () => {
    const s = gateScore(sure);
    assert.equal(worthShowing(sure, s, false), true);
    assert.equal(worthShowing(sure, s + 1e-6, false), false);
    assert.equal(worthShowing(unsure, 0.14, false), false);
    assert.equal(worthShowing(sure, 0.14, false), true);
  });

  it('gates copies too: a short repeated run the model does not write is withheld', () => {
    const short: GateFeatures = { source: 'copy', copyRun: 4, copyAgrees: false, firstLineMean: 0.5, firstLineMin: 0.2, agreement: 0, midLine: false };
    assert.equal(worthShowing(short, 0.14, false), false);
  });

  it('shows everything asked for explicitly and everything at threshold 0; nothing made as you type at 1', () => {
    assert.equal(worthShowing(unsure, 0.5, true), true);
    assert.equal(worthShowing(unsure, 0, false), true);
    assert.equal(worthShowing(sure, 1, false), false);
    assert.equal(worthShowing(sure, 1, true), true);
  });

  it('shows nothing when there is no suggestion', () => {
    assert.equal(worthShowing(undefined, 0, true), false);
  });

  it('says in the log line what the score was made of', () => {
    assert.match(describeGate(sure), /^gate score 0\.\d{3}: a copy of a 64-character run, the model agrees, inside a line, rows agree 1\.00/);
    assert.match(describeGate(unsure), /a model row, at a line start, rows agree 0\.00, least first-line token probability 0\.10$/);
  });
});
