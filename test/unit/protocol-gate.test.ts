import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { worthShowing } from '../../server/protocol/gate';

describe('the gate on suggestions made as you type', () => {
  it('hides a row the model was less confident in than the threshold', () => {
    assert.equal(worthShowing({ meanConfidence: 0.3 }, 0.5, false), false);
    assert.equal(worthShowing({ meanConfidence: 0.5 }, 0.5, false), true);
  });
  it('shows everything asked for explicitly, every copy candidate, and everything at threshold 0', () => {
    assert.equal(worthShowing({ meanConfidence: 0.1 }, 0.5, true), true);
    assert.equal(worthShowing({ meanConfidence: 0.1, source: 'copy' }, 0.5, false), true);
    assert.equal(worthShowing({ meanConfidence: 0 }, 0, false), true);
  });
  it('shows nothing when there is no row', () => {
    assert.equal(worthShowing(undefined, 0, true), false);
  });
});
