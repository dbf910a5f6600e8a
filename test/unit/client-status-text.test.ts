import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeStatus, formatLatency } from '../../client/statusText';

describe('the status bar text', () => {
  it('says the server is starting before the first status arrives', () => {
    const view = describeStatus(undefined);
    assert.match(view.text, /loading~spin/);
    assert.match(view.tooltip, /Starting/);
  });

  it('shows the state, model, device and last latency when ready', () => {
    const view = describeStatus({ state: 'ready', modelId: 'unmask-tiny', device: 'cpu', lastLatencyMs: 84.4 });
    assert.equal(view.text, '$(sparkle) Unmask 84 ms');
    assert.match(view.tooltip, /Model: unmask-tiny/);
    assert.match(view.tooltip, /Device: cpu/);
    assert.equal(view.error, false);
  });

  it('explains why the device is not the one asked for', () => {
    const view = describeStatus({ state: 'ready', device: 'cpu', deviceNote: 'CUDA provider not installed' });
    assert.match(view.tooltip, /Device: cpu \(CUDA provider not installed\)/);
  });

  it('says the inference worker was replaced, and why, once the server reports it', () => {
    const lastRestart = 'a fresh inference worker started in 312 ms after: A generation (2 rows, 8 steps) passed its 30 s deadline';
    const view = describeStatus({ state: 'ready', device: 'cpu', lastRestart, workerRestarts: 2 });
    assert.match(view.tooltip, /Inference worker restarts: 2 \(last: a fresh inference worker started in 312 ms after: A generation .* passed its 30 s deadline\)/);
    assert.equal(view.error, false);
    assert.doesNotMatch(describeStatus({ state: 'ready', device: 'cpu' }).tooltip, /Inference worker/);
  });

  it('says what became of the last suggestion made as you type, and from which score they are shown', () => {
    const lastSuggestion = 'withheld, confidence 0.05 < 0.14 (unmask.minConfidence)';
    const view = describeStatus({ state: 'ready', lastSuggestion }, { triggerMode: 'automatic', minConfidence: 0.14 });
    assert.match(view.tooltip, /Last suggestion as you type: withheld, confidence 0\.05 < 0\.14/);
    assert.match(view.tooltip, /suggestions as you type, shown at confidence >= 0\.14 \(unmask\.minConfidence\)/);
    const ungated = describeStatus({ state: 'ready' }, { triggerMode: 'automatic', minConfidence: 0 }).tooltip;
    assert.doesNotMatch(ungated, /confidence|Last suggestion/);
  });

  it('spins while generating', () => {
    assert.match(describeStatus({ state: 'busy' }).text, /sync~spin/);
  });

  it('shows server errors with their message and the error colour', () => {
    const view = describeStatus({ state: 'error', message: 'model.int8.onnx not found' });
    assert.match(view.text, /\$\(error\)/);
    assert.match(view.tooltip, /model.int8.onnx not found/);
    assert.equal(view.error, true);
  });

  it('shows a client that lost its server as an error', () => {
    const view = describeStatus({ state: 'ready' }, { clientError: 'crashed repeatedly' });
    assert.equal(view.error, true);
    assert.match(view.tooltip, /crashed repeatedly/);
  });

  it('says when completions are off, snoozed, or off for the language', () => {
    const ready = { state: 'ready' as const };
    assert.equal(describeStatus(ready, { off: 'disabled' }).text, '$(circle-slash) Unmask off');
    assert.equal(describeStatus(ready, { off: 'snoozed', snoozeMinutesLeft: 4 }).text, '$(circle-slash) Unmask snoozed 4 min');
    const language = describeStatus(ready, { off: 'language', languageId: 'markdown' });
    assert.match(language.tooltip, /off for markdown/);
    assert.equal(language.warning, false);
  });

  it('formats latencies in milliseconds below a second and seconds above', () => {
    assert.equal(formatLatency(99.6), '100 ms');
    assert.equal(formatLatency(1530), '1.5 s');
  });
});
