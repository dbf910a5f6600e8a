import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quietPeriod, type CancellationLike, type TimerApi } from '../../client/debounce';

/** A cancellation source like VS Code's, for tests. */
function cancellation(): CancellationLike & { cancel(): void; listeners: number } {
  const listeners = new Set<() => unknown>();
  const token = {
    isCancellationRequested: false,
    get listeners() {
      return listeners.size;
    },
    onCancellationRequested(listener: () => unknown) {
      listeners.add(listener);
      return { dispose: () => listeners.delete(listener) };
    },
    cancel() {
      token.isCancellationRequested = true;
      for (const listener of [...listeners]) listener();
    },
  };
  return token;
}

/** Timers that only fire when the test advances the clock. */
function fakeTimers(): TimerApi & { advance(ms: number): void; pending: number } {
  let now = 0;
  const timers = new Map<number, { at: number; callback: () => void }>();
  let next = 1;
  return {
    setTimeout: (callback, ms) => {
      timers.set(next, { at: now + ms, callback });
      return next++;
    },
    clearTimeout: (handle) => void timers.delete(handle as number),
    advance(ms: number) {
      now += ms;
      for (const [id, timer] of [...timers]) {
        if (timer.at <= now) {
          timers.delete(id);
          timer.callback();
        }
      }
    },
    get pending() {
      return timers.size;
    },
  };
}

describe('the debounce quiet period', () => {
  it('resolves true once the delay has passed without cancellation', async () => {
    const timers = fakeTimers();
    const token = cancellation();
    const waiting = quietPeriod(150, token, timers);
    timers.advance(149);
    let settled = false;
    void waiting.then(() => (settled = true));
    await Promise.resolve();
    assert.equal(settled, false);
    timers.advance(1);
    assert.equal(await waiting, true);
    assert.equal(token.listeners, 0, 'the cancellation listener is disposed');
  });

  it('resolves false as soon as the token is cancelled, and clears its timer', async () => {
    const timers = fakeTimers();
    const token = cancellation();
    const waiting = quietPeriod(150, token, timers);
    token.cancel();
    assert.equal(await waiting, false);
    assert.equal(timers.pending, 0);
    assert.equal(token.listeners, 0);
  });

  it('resolves false at once for a token that is already cancelled', async () => {
    const token = cancellation();
    token.cancel();
    assert.equal(await quietPeriod(150, token, fakeTimers()), false);
    assert.equal(await quietPeriod(0, token, fakeTimers()), false);
  });

  it('resolves true at once for a zero delay', async () => {
    const timers = fakeTimers();
    assert.equal(await quietPeriod(0, cancellation(), timers), true);
    assert.equal(timers.pending, 0);
  });

  it('lets only the last of a burst of keystrokes through', async () => {
    const timers = fakeTimers();
    const results: Promise<boolean>[] = [];
    let previous: ReturnType<typeof cancellation> | undefined;
    for (let key = 0; key < 20; key++) {
      previous?.cancel(); // VS Code cancels the previous request on each keystroke.
      previous = cancellation();
      results.push(quietPeriod(150, previous, timers));
      timers.advance(50);
    }
    timers.advance(150);
    const outcomes = await Promise.all(results);
    assert.deepEqual(outcomes.filter(Boolean).length, 1);
    assert.equal(outcomes.at(-1), true);
  });
});
