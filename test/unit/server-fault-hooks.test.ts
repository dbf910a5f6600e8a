import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { faultHooks } from '../../server/fault-hooks';
import { HANGING_WORKER } from '../fixtures/broken-workers';

describe("the fault suite's hooks into the server", () => {
  it('are off unless their environment variables are set', () => {
    assert.deepEqual(faultHooks({}), {});
    assert.deepEqual(faultHooks({ UNMASK_FAULT_WORKER: '', UNMASK_FAULT_DEADLINE_MS: '' }), {});
  });

  it('swap in a worker script and shorten the deadline', () => {
    assert.deepEqual(faultHooks({ UNMASK_FAULT_WORKER: HANGING_WORKER, UNMASK_FAULT_DEADLINE_MS: '400' }), { workerPath: HANGING_WORKER, deadlineMs: 400 });
  });

  it('refuse unusable values by name instead of running with them', () => {
    assert.throws(() => faultHooks({ UNMASK_FAULT_WORKER: 'hanging-worker.ts' }), /UNMASK_FAULT_WORKER must be the absolute path of a worker script/);
    assert.throws(() => faultHooks({ UNMASK_FAULT_WORKER: '/nowhere/worker.js' }), /UNMASK_FAULT_WORKER/);
    for (const bad of ['0', '-5', '1.5', 'soon', '600001']) {
      assert.throws(() => faultHooks({ UNMASK_FAULT_DEADLINE_MS: bad }), /UNMASK_FAULT_DEADLINE_MS must be a whole number/, bad);
    }
  });
});
