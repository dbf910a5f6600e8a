/**
 * The client's heartbeat against the real server: a server whose process is frozen (SIGSTOP: as stuck as a main
 * thread in an endless loop, and the connection stays open) is reported stuck; a thawed one answers again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Heartbeat } from '../../client/heartbeat';
import { PingRequest } from '../../server/protocol/messages';
import { fixtureModel } from '../fixtures/models';
import { TestClient, ensureBuilt } from './lsp-client';

describe('the heartbeat with the real server', () => {
  let client: TestClient;

  before(async () => {
    ensureBuilt();
    client = new TestClient({ modelPath: fixtureModel().dir, device: 'cpu', threads: 1 });
    await client.initialize();
  });
  after(async () => {
    if (client?.pid) process.kill(client.pid, 'SIGCONT');
    await client?.stop();
  });

  /** Runs a heartbeat with short timings until it reports the server stuck or `ms` pass; returns the silence reported. */
  async function watch(ms: number): Promise<number | undefined> {
    let stuck: number | undefined;
    const heartbeat = new Heartbeat(
      {
        ping: () => client.connection.sendRequest(PingRequest),
        running: () => true,
        onStuck: (silentMs) => (stuck = silentMs),
        now: () => Date.now(),
        setTimer: (fn, delay) => setTimeout(fn, delay),
        clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
      },
      { intervalMs: 200, timeoutMs: 300, misses: 2 },
    );
    heartbeat.start();
    const until = Date.now() + ms;
    while (stuck === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    heartbeat.stop();
    return stuck;
  }

  it('answers pings: a running server is never reported stuck', async () => {
    assert.deepEqual(await client.connection.sendRequest(PingRequest), {});
    assert.equal(await watch(2_000), undefined);
  });

  it('reports a frozen server stuck within two missed pings, and a thawed one answers again', async () => {
    process.kill(client.pid!, 'SIGSTOP');
    const stuck = await watch(5_000);
    assert.ok(stuck !== undefined && stuck >= 600 && stuck < 3_000, `stuck after ${stuck} ms of silence`);
    process.kill(client.pid!, 'SIGCONT');
    assert.deepEqual(await client.connection.sendRequest(PingRequest), {});
    assert.equal(await watch(1_500), undefined);
  });
});
