import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ADAPTIVE_MAX_MS, ADAPTIVE_MIN_MS, AdaptiveDebounce } from '../../client/debouncePolicy';

const MID_WORD = { charBefore: 'a', atLineEnd: false };
const AFTER_SYMBOL_AT_LINE_END = { charBefore: '(', atLineEnd: true };

/** A debounce that has seen `count` keystrokes `gap` ms apart. */
function typed(gap: number, count = 12): AdaptiveDebounce {
  const debounce = new AdaptiveDebounce();
  for (let i = 0; i < count; i++) debounce.keystroke(1000 + i * gap);
  return debounce;
}

describe('the adaptive debounce', () => {
  it('waits unmask.debounceMs until it has seen enough typing', () => {
    assert.equal(new AdaptiveDebounce().waitMs(MID_WORD, 150), 150);
    assert.equal(typed(150, 5).waitMs(MID_WORD, 150), 150);
  });

  it('waits three typing intervals mid-word and one and a half after a symbol at the end of a line', () => {
    const debounce = typed(150);
    assert.equal(debounce.typingIntervalMs(), 150);
    assert.equal(debounce.waitMs(MID_WORD, 0), 450);
    assert.equal(debounce.waitMs(AFTER_SYMBOL_AT_LINE_END, 0), 225);
    assert.equal(debounce.waitMs({ charBefore: 'a', atLineEnd: true }, 0), 338);
  });

  it('waits less for a fast typist than for a slow one', () => {
    assert.ok(typed(100).waitMs(MID_WORD, 0) < typed(300).waitMs(MID_WORD, 0));
  });

  it('does not count pauses as typing', () => {
    const debounce = typed(120);
    debounce.keystroke(60_000);
    debounce.keystroke(60_120);
    assert.equal(debounce.typingIntervalMs(), 120);
  });

  it('takes the time the server needs to answer off the wait, smoothed over requests', () => {
    const debounce = typed(150);
    debounce.answered(100);
    assert.equal(debounce.waitMs(AFTER_SYMBOL_AT_LINE_END, 0), 125);
    debounce.answered(200); // moving average: 0.3 x 200 + 0.7 x 100 = 130
    assert.equal(debounce.waitMs(AFTER_SYMBOL_AT_LINE_END, 0), 95);
    debounce.answered(Number.NaN);
    assert.equal(debounce.waitMs(AFTER_SYMBOL_AT_LINE_END, 0), 95, 'a nonsense latency is ignored');
  });

  it('stays within its bounds whatever the typing and the server do', () => {
    const slowServer = typed(100);
    slowServer.answered(5000);
    assert.equal(slowServer.waitMs(AFTER_SYMBOL_AT_LINE_END, 0), ADAPTIVE_MIN_MS);
    const slowTypist = typed(400);
    assert.equal(slowTypist.waitMs(MID_WORD, 0), ADAPTIVE_MAX_MS);
    // Keystrokes faster than any typist (key repeat) still make a typing interval of at least 100 ms.
    assert.equal(typed(10).typingIntervalMs(), 100);
  });
});
