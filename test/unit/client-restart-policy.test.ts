import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RestartPolicy } from '../../client/restartPolicy';

describe('restarting a crashed server', () => {
  it('restarts up to the limit within the window, then stops', () => {
    const policy = new RestartPolicy({ maxRestarts: 3, windowMs: 60_000 });
    assert.deepEqual([0, 1000, 2000, 3000].map((t) => policy.shouldRestart(t)), [true, true, true, false]);
  });

  it('forgets crashes older than the window', () => {
    const policy = new RestartPolicy({ maxRestarts: 2, windowMs: 60_000 });
    policy.shouldRestart(0);
    policy.shouldRestart(1000);
    assert.equal(policy.shouldRestart(70_000), true);
  });

  it('starts counting afresh after a reset', () => {
    const policy = new RestartPolicy({ maxRestarts: 1, windowMs: 60_000 });
    policy.shouldRestart(0);
    assert.equal(policy.shouldRestart(1), false);
    policy.reset();
    assert.equal(policy.shouldRestart(2), true);
  });
});
