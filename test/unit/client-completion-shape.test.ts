import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  extendSelection,
  fitToRestOfLine,
  isUseful,
  lineWithSelection,
  toCompletion,
  toCompletionWithSelection,
  toShownItem,
} from '../../client/completionShape';

const at = (line: number, character: number) => ({ line, character });
const range = (line: number, start: number, end: number) => ({ start: at(line, start), end: at(line, end) });

describe('turning server items into completions at the cursor', () => {
  it('takes an item without a range as an insertion at the cursor', () => {
    assert.deepEqual(toCompletion({ insertText: 'a + b' }, at(3, 11), '    return '), { text: 'a + b', replaceAfter: 0 });
  });

  it('strips the part of a whole-line item that is already before the cursor', () => {
    const item = { insertText: '    return a + b', range: range(3, 0, 11) };
    assert.deepEqual(toCompletion(item, at(3, 11), '    return '), { text: 'a + b', replaceAfter: 0 });
  });

  it('keeps how much of the line after the cursor an item replaces', () => {
    const item = { insertText: 'x, y)', range: range(0, 6, 7) };
    assert.deepEqual(toCompletion(item, at(0, 6), 'print()'), { text: 'x, y)', replaceAfter: 1 });
  });

  const unusable = [
    { why: 'its range is on another line', item: { insertText: 'x', range: range(2, 0, 1) } },
    { why: 'its range starts after the cursor', item: { insertText: 'x', range: range(3, 5, 6) } },
    { why: 'its range ends before the cursor', item: { insertText: 'x', range: range(3, 0, 2) } },
    { why: 'its text does not repeat the line before the cursor', item: { insertText: 'foo', range: range(3, 0, 4) } },
  ];
  for (const c of unusable) {
    it(`refuses an item when ${c.why}`, () => {
      assert.equal(toCompletion(c.item, at(3, 4), 'abcd'), undefined);
    });
  }
});

describe('fitting a completion to the rest of the line', () => {
  const cases = [
    { text: 'x, y)', rest: ')', replaceAfter: 1, why: 'replaces a closing bracket it repeats' },
    { text: 'range(10)):', rest: '):  ', replaceAfter: 4, why: 'replaces several closing characters and trailing blanks' },
    { text: 'x, y', rest: ')', replaceAfter: 0, why: 'leaves the rest alone when it does not repeat it' },
    { text: 'foo', rest: '', replaceAfter: 0, why: 'has nothing to do at the end of a line' },
    { text: '\n    return x\n)', rest: ')', replaceAfter: 1, why: 'checks the end of a multi-line completion' },
  ];
  for (const c of cases) {
    it(c.why, () => {
      assert.equal(fitToRestOfLine({ text: c.text, replaceAfter: 0 }, c.rest).replaceAfter, c.replaceAfter);
    });
  }
});

describe('showing a completion', () => {
  it('replaces the whole line up to what the completion replaces, repeating the text before the cursor', () => {
    assert.deepEqual(toShownItem({ text: 'x, y)', replaceAfter: 1 }, '    print(', 10), {
      startCharacter: 0,
      endCharacter: 11,
      insertText: '    print(x, y)',
    });
  });

  it('calls a completion of blanks or nothing useless', () => {
    assert.equal(isUseful({ text: '  \n ', replaceAfter: 0 }), false);
    assert.equal(isUseful({ text: '', replaceAfter: 0 }), false);
    assert.equal(isUseful({ text: 'x', replaceAfter: 0 }), true);
  });
});

describe('respecting the IntelliSense selection', () => {
  // The document line is "console.lo|" and the suggest widget has "log" selected for the range of "lo".
  const line = 'console.lo';
  const cursor = at(0, 10);
  const selected = { range: range(0, 8, 10), text: 'log' };

  it('reads the line as if the selected item had been accepted', () => {
    const view = lineWithSelection(line + ');', cursor, selected);
    assert.equal(view?.lineText, 'console.log);');
    assert.deepEqual(view?.cursor, at(0, 11));
    assert.deepEqual([0, 8, 9, 10, 12].map((c) => view?.toLine(c)), [0, 8, undefined, 11, 13]);
  });

  it('reads a server item made for the selected item against that line', () => {
    // The server saw "console.log" and returns a whole-line item over the real range [0, cursor).
    const item = { insertText: 'console.log("hi")', range: range(0, 0, 10) };
    assert.deepEqual(toCompletionWithSelection(item, cursor, line, selected), { text: '("hi")', replaceAfter: 0 });
  });

  it('also works when the selected item does not start with what was typed', () => {
    const fuzzy = { range: range(0, 8, 10), text: 'toLowerCase' };
    const item = { insertText: 'console.toLowerCase()', range: range(0, 0, 10) };
    assert.deepEqual(toCompletionWithSelection(item, cursor, line, fuzzy), { text: '()', replaceAfter: 0 });
  });

  it('shows the completion over the selected item\'s range, starting with the item', () => {
    assert.deepEqual(extendSelection({ text: '("hi")', replaceAfter: 0 }, selected), {
      startCharacter: 8,
      endCharacter: 10,
      insertText: 'log("hi")',
    });
  });

  it('shows nothing when the completion adds nothing to the selected item', () => {
    assert.equal(extendSelection({ text: '', replaceAfter: 0 }, selected), undefined);
  });

  it('ignores a selection on another line', () => {
    assert.equal(lineWithSelection(line, cursor, { range: range(1, 0, 2), text: 'x' }), undefined);
  });
});
