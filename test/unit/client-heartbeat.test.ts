import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Heartbeat, type HeartbeatDeps } from '../../client/heartbeat';

/** A fake clock with timers; `advance` fires what falls due in order, letting promise callbacks run in between. */
class FakeTime {
  now = 0;
  private timers: { id: number; due: number; fn: () => void }[] = [];
  private nextId = 1;

  set(fn: () => void, ms: number): number {
    const id = this.nextId++;
    this.timers.push({ id, due: this.now + ms, fn });
    return id;
  }

  clear(id: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== id);
  }

  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    // (A timer due before `now` fires late, at `now`: how a suspended machine looks to its timers.)
    for (;;) {
      await flush();
      const next = this.timers.filter((t) => t.due <= end).sort((a, b) => a.due - b.due)[0];
      if (!next) break;
      this.now = Math.max(this.now, next.due);
      this.clear(next.id);
      next.fn();
    }
    this.now = end;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** A server whose answers the test controls: answering, silent (stuck), or failing. */
function setup(mode: { current: 'answer' | 'silent' | 'fail' }, running = () => true) {
  const time = new FakeTime();
  const stuck: number[] = [];
  let pings = 0;
  const deps: HeartbeatDeps = {
    ping: () => {
      pings += 1;
      if (mode.current === 'answer') return Promise.resolve({});
      if (mode.current === 'fail') return Promise.reject(new Error('connection closed'));
      return new Promise(() => undefined);
    },
    running,
    onStuck: (silentMs) => stuck.push(silentMs),
    now: () => time.now,
    setTimer: (fn, ms) => time.set(fn, ms),
    clearTimer: (h) => time.clear(h),
  };
  const heartbeat = new Heartbeat(deps, { intervalMs: 1000, timeoutMs: 500, misses: 2 });
  return { time, stuck, heartbeat, pings: () => pings };
}

describe('the heartbeat that notices a stuck server', () => {
  it('stays quiet while the server answers', async () => {
    const { time, stuck, heartbeat, pings } = setup({ current: 'answer' });
    heartbeat.start();
    await time.advance(10_000);
    assert.deepEqual(stuck, []);
    assert.equal(pings(), 10);
  });

  it('calls onStuck once after two pings in a row go unanswered, with how long the server was silent', async () => {
    const mode = { current: 'answer' as 'answer' | 'silent' };
    const { time, stuck, heartbeat, pings } = setup(mode);
    heartbeat.start();
    await time.advance(2_000); // pings at 1000 and 2000 answered
    mode.current = 'silent';
    await time.advance(10_000);
    // Pings at 3000 (missed at 3500) and 4500 (missed at 5000): stuck, silent since the answer at 2000.
    assert.deepEqual(stuck, [3000]);
    assert.equal(pings(), 4);
  });

  it('forgives a single miss when the next ping is answered', async () => {
    const mode = { current: 'silent' as 'answer' | 'silent' };
    const { time, stuck, heartbeat } = setup(mode);
    heartbeat.start();
    await time.advance(1_600); // one miss
    mode.current = 'answer';
    await time.advance(1_000); // answered
    mode.current = 'silent';
    await time.advance(1_600); // one miss again
    assert.deepEqual(stuck, []);
  });

  it('counts an error answer as an answer (a closed connection is the close handler\'s business)', async () => {
    const { time, stuck, heartbeat } = setup({ current: 'fail' });
    heartbeat.start();
    await time.advance(10_000);
    assert.deepEqual(stuck, []);
  });

  it('does not ping while the server is not running, and does not count that time', async () => {
    let running = false;
    const { time, stuck, heartbeat, pings } = setup({ current: 'silent' }, () => running);
    heartbeat.start();
    await time.advance(10_000);
    assert.equal(pings(), 0);
    running = true;
    await time.advance(3_000);
    assert.deepEqual(stuck, [3_000]); // silent since the last beat it skipped (10,000 ms): misses at 11,500 and 13,000
  });

  it('stops pinging after stop(), and start() begins afresh', async () => {
    const { time, stuck, heartbeat, pings } = setup({ current: 'silent' });
    heartbeat.start();
    await time.advance(1_200); // a ping in flight
    heartbeat.stop();
    await time.advance(10_000);
    assert.deepEqual(stuck, []);
    assert.equal(pings(), 1);
    heartbeat.start();
    await time.advance(3_000);
    assert.equal(stuck.length, 1);
  });

  it('does not blame the server when its own timer fired long after it was due (the machine slept)', async () => {
    const { time, stuck, heartbeat } = setup({ current: 'silent' });
    heartbeat.start();
    await time.advance(1_000); // ping sent at 1000, its 500 ms timeout due at 1500
    time.now += 60_000; // suspended: the timer fires a minute late
    await time.advance(0);
    await time.advance(1_600); // the next ping misses normally: one miss only
    assert.deepEqual(stuck, []);
  });
});
