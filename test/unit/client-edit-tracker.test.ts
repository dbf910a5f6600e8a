import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EditTracker } from '../../client/editTracker';

describe('the edit tracker', () => {
  const cases = [
    { name: 'a backspace', changes: [{ rangeLength: 1, text: '' }], deletion: true },
    { name: 'deleting a selection', changes: [{ rangeLength: 12, text: '' }], deletion: true },
    { name: 'a multi-cursor backspace', changes: [{ rangeLength: 1, text: '' }, { rangeLength: 1, text: '' }], deletion: true },
    { name: 'typing a character', changes: [{ rangeLength: 0, text: 'a' }], deletion: false },
    { name: 'replacing a selection', changes: [{ rangeLength: 3, text: 'x' }], deletion: false },
    { name: 'a paste', changes: [{ rangeLength: 0, text: 'foo()\n' }], deletion: false },
  ];
  for (const c of cases) {
    it(`calls ${c.name} ${c.deletion ? 'a' : 'not a'} deletion`, () => {
      const tracker = new EditTracker();
      tracker.record('file:///a.py', 2, c.changes);
      assert.equal(tracker.lastEditWasDeletion('file:///a.py', 2), c.deletion);
    });
  }

  it('only answers for the document version right after the deletion', () => {
    const tracker = new EditTracker();
    tracker.record('file:///a.py', 5, [{ rangeLength: 1, text: '' }]);
    assert.equal(tracker.lastEditWasDeletion('file:///a.py', 6), false);
    assert.equal(tracker.lastEditWasDeletion('file:///b.py', 5), false);
  });

  it('ignores change events without text changes, and forgets closed documents', () => {
    const tracker = new EditTracker();
    tracker.record('file:///a.py', 5, [{ rangeLength: 1, text: '' }]);
    tracker.record('file:///a.py', 5, []);
    assert.equal(tracker.lastEditWasDeletion('file:///a.py', 5), true);
    tracker.forget('file:///a.py');
    assert.equal(tracker.lastEditWasDeletion('file:///a.py', 5), false);
  });
});
