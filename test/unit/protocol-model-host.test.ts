import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoadedModel } from '../../server/runtime/model';
import { defaultConfig } from '../../server/protocol/config';
import { ModelHost } from '../../server/protocol/model-host';
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
