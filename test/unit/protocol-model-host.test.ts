import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoadedModel, LoadOptions, WorkerRestart } from '../../server/runtime/model';
import { defaultConfig } from '../../server/protocol/config';
import { ModelHost, relatedContextNote } from '../../server/protocol/model-host';
import type { StatusParams } from '../../server/protocol/messages';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A stand-in loader: counts loads and disposals; each model is an object with a manifest id and a dispose. */
function fakeLoader() {
  const counts = { loads: 0, disposed: 0 };
  const loader = async (): Promise<LoadedModel> => {
    counts.loads += 1;
    const id = `m${counts.loads}`;
    return {
      manifest: { id },
      device: 'cpu',
      deviceNote: '',
      loadMs: 1,
      dispose: async () => {
        counts.disposed += 1;
      },
    } as unknown as LoadedModel;
  };
  return { counts, loader };
}

function host(idleUnloadMinutes: number) {
  const statuses: StatusParams[] = [];
  const { counts, loader } = fakeLoader();
  const modelHost = new ModelHost('/nowhere', () => undefined, (status) => statuses.push(status), loader);
  const config = { ...defaultConfig(), idleUnloadMinutes };
  return { modelHost, counts, statuses, config };
}

describe('the model host', () => {
  it('unloads a model unused for unmask.idleUnloadMinutes and loads it again on the next request', async () => {
    const { modelHost, counts, statuses, config } = host(0.05 / 60); // 50 ms
    const first = await modelHost.load(config);
    assert.equal(first?.manifest.id, 'm1');
    await sleep(150);
    assert.equal(counts.disposed, 1, 'the idle model was disposed');
    assert.equal(modelHost.lastStatus.state, 'unloaded');
    assert.equal(modelHost.lastStatus.modelId, 'm1', 'the status still names the model');
    const again = await modelHost.current();
    assert.equal(again?.manifest.id, 'm2', 'a request loads it again');
    assert.equal(counts.loads, 2);
    assert.deepEqual(
      statuses.map((s) => s.state),
      ['loading', 'ready', 'unloaded', 'loading', 'ready'],
    );
    await modelHost.dispose();
  });

  it('never unloads while a generation runs, and counts idle time from its end', async () => {
    const { modelHost, counts, config } = host(0.08 / 60); // 80 ms
    await modelHost.load(config);
    const end = modelHost.beginWork();
    await sleep(200);
    assert.equal(counts.disposed, 0, 'busy: still loaded');
    end({ latencyMs: 5 });
    await sleep(40);
    assert.equal(counts.disposed, 0, 'the countdown restarted at the end of the work');
    await sleep(150);
    assert.equal(counts.disposed, 1);
    assert.equal(modelHost.unloaded, true);
    await modelHost.dispose();
  });

  it('keeps the model with unmask.idleUnloadMinutes 0, and takes a new value without a reload', async () => {
    const { modelHost, counts, config } = host(0);
    await modelHost.load(config);
    await sleep(100);
    assert.equal(counts.disposed, 0);
    modelHost.configure({ ...config, idleUnloadMinutes: 0.03 / 60 });
    await sleep(120);
    assert.equal(counts.disposed, 1);
    assert.equal(counts.loads, 1, 'configure does not reload');
    await modelHost.dispose();
  });

  it('says so in the status when a fresh inference worker replaces a stuck one, instead of staying on the error (issue 15)', async () => {
    const statuses: StatusParams[] = [];
    const restarts: ((restart: WorkerRestart) => void)[] = [];
    const { loader } = fakeLoader();
    const modelHost = new ModelHost('/nowhere', () => undefined, (status) => statuses.push(status), (_dir: string, options: LoadOptions) => {
      if (options.onRestart) restarts.push(options.onRestart);
      return loader();
    });
    await modelHost.load(defaultConfig());
    assert.equal(restarts.length, 1, 'the host listens for restarts of the model it loads');
    const reason = 'A generation (5 rows, 2 steps) passed its 0.4 s deadline, so the inference worker was abandoned';
    modelHost.beginWork()({ error: `Generation aborted: ${reason}; a fresh one is starting` });
    assert.equal(modelHost.lastStatus.state, 'error');
    restarts[0]({ reason, ms: 312.4 });
    assert.deepEqual(modelHost.lastStatus, {
      state: 'ready',
      modelId: 'm1',
      device: 'cpu',
      lastRestart: `a fresh inference worker started in 312 ms after: ${reason}`,
      workerRestarts: 1,
    });

    // During other work the state stays busy; the note is there all the same.
    const end = modelHost.beginWork();
    restarts[0]({ reason: 'the inference worker exited with code 3', ms: 90 });
    assert.equal(modelHost.lastStatus.state, 'busy');
    assert.match(modelHost.lastStatus.lastRestart ?? '', /started in 90 ms after: the inference worker exited with code 3/);
    assert.equal(modelHost.lastStatus.workerRestarts, 2);
    end({ latencyMs: 10 });
    assert.equal(modelHost.lastStatus.state, 'ready');

    // A restart that failed is an error of its own.
    restarts[0]({ reason, ms: 50, error: 'onnxruntime could not load model.onnx' });
    assert.deepEqual([modelHost.lastStatus.state, modelHost.lastStatus.message], ['error', 'The inference worker did not restart: onnxruntime could not load model.onnx']);

    // A model that was replaced since says nothing about the current one, whose count starts afresh.
    await modelHost.load(defaultConfig());
    const count = statuses.length;
    restarts[0]({ reason, ms: 1 });
    assert.equal(statuses.length, count);
    assert.equal(modelHost.lastStatus.workerRestarts, undefined);
    restarts[1]({ reason, ms: 1 });
    assert.equal(modelHost.lastStatus.workerRestarts, 1);
    await modelHost.dispose();
  });

  it('answers concurrent requests after an unload with one load', async () => {
    const { modelHost, counts, config } = host(0.03 / 60);
    await modelHost.load(config);
    await sleep(100);
    const [a, b] = await Promise.all([modelHost.current(), modelHost.current()]);
    assert.equal(a, b);
    assert.equal(counts.loads, 2);
    await modelHost.dispose();
  });
});

describe('the note on snippets of other files', () => {
  const reads = { relatedContext: { layout: 'file_sep' as const, maxTokens: 128 } } as unknown as LoadedModel['facts'];
  it('says what a model trained with them gets, that one trained without them does not, and nothing when off', () => {
    assert.equal(relatedContextNote('m', reads, 64), 'model m reads snippets of other files (unmask.related_context, up to 128 tokens): up to 64 canvas tokens of them per request');
    assert.match(relatedContextNote('m', reads, 500)!, /up to 128 canvas tokens/);
    assert.match(relatedContextNote('m', {} as LoadedModel['facts'], 64)!, /^model m was not trained with snippets of other files \(no unmask\.related_context\): unmask\.relatedContextTokens is not used$/);
    assert.equal(relatedContextNote('m', reads, 0), undefined);
  });

  it('is logged once per load', async () => {
    const lines: string[] = [];
    const modelHost = new ModelHost('/nowhere', (line) => lines.push(line), () => undefined, fakeLoader().loader);
    await modelHost.load(defaultConfig());
    await modelHost.load({ ...defaultConfig(), relatedContextTokens: 0 });
    assert.equal(lines.filter((l) => l.includes('unmask.relatedContextTokens is not used')).length, 1);
    await modelHost.dispose();
  });
});
