/**
 * The fault suite's broken inference workers over LSP: the real server (dist/server.js, as the extension starts it)
 * runs with the fault hooks (server/fault-hooks.ts) set to a worker that hangs on a generation of HANG_BATCH rows, or
 * to one that crashes on CRASH_BATCH rows, and a short deadline. Each round asks for such a generation (an explicit
 * inline completion, whose rows are unmask.candidates, or a candidates request), then an ordinary one.
 *
 * Held to issue 15: the broken request is answered with nothing or a clear error; the status says what happened;
 * a hung worker is abandoned at the deadline and the status says a fresh one runs within 2 s of it (the check's
 * watchdog, counted from when the request was sent: an upper bound on the server's own time); and the next
 * ordinary request gets a real completion (the tiny fixture model always writes visible text).
 */
import { InlineCompletionRequest, InlineCompletionTriggerKind } from 'vscode-languageserver-protocol/node';
import { type CandidatesResult, CandidatesRequest, type StatusParams } from '../../server/protocol/messages';
import { CRASH_BATCH, CRASHING_WORKER, HANG_BATCH, HANGING_WORKER } from '../fixtures/broken-workers';
import { TestClient } from '../integration/lsp-client';
import { Gen } from './inputs';
import { type Checked, type Tally, isClear } from './tally';

const GROUP = 'worker hangs and crashes over LSP';
/** The generation deadline the servers run with: short, so that each hang costs the suite well under a second. */
const DEADLINE_MS = 400;
/** Issue 15's target: a worker abandoned at its deadline is replaced, and the status says so, within this. */
const RESTART_MS = 2000;
/** An ordinary request or a crash's answer unanswered after this long is a hang (a real generation takes ~0.1 s). */
const ANSWER_MS = 20_000;

const DOC_URI = 'file:///faults/broken-worker.py';
const DOC = ['import os', '', '', 'def read_lines(path):', '    with open(path) as f:', '        ', '', ''].join('\n');
const CURSOR = { line: 5, character: 8 };

type Broken = 'hang' | 'crash';

/** One round's timings of a hang, in milliseconds from the request's sending. */
interface HangTiming {
  answeredMs: number;
  /** From the deadline (sent + DEADLINE_MS) to the status saying a fresh worker runs. */
  restartedAfterDeadlineMs: number;
  /** The server's own measure of the restart (the status's "started in N ms"). */
  serverRestartMs: number;
}

/** A server whose worker breaks on generations of `rows` rows; its explicit inline requests ask for that many. */
class BrokenWorkerServer {
  client!: TestClient;

  constructor(
    private readonly modelDir: string,
    private readonly broken: Broken,
    private readonly tally: Tally,
  ) {}

  get rows(): number {
    return this.broken === 'hang' ? HANG_BATCH : CRASH_BATCH;
  }

  async start(): Promise<void> {
    // No gate (minConfidence 0): "the next request completes" must not depend on whether the gate passes the tiny
    // model's suggestion.
    const settings = { modelPath: this.modelDir, device: 'cpu', threads: 1, steps: 2, maxSpanTokens: 8, contextTokens: 64, candidates: this.rows, inlineCandidates: 2, minConfidence: 0 };
    const env = { UNMASK_FAULT_WORKER: this.broken === 'hang' ? HANGING_WORKER : CRASHING_WORKER, UNMASK_FAULT_DEADLINE_MS: String(DEADLINE_MS) };
    this.client = new TestClient(settings, env);
    await this.client.initialize();
    const status = await this.client.waitForStatus((s) => s.state === 'ready' || s.state === 'error', 0, 60_000);
    if (status.state !== 'ready') throw new Error(`the broken-worker server did not load its model: ${JSON.stringify(status)}`);
    await this.client.open(DOC_URI, 'python', DOC);
  }

  /** Stops the server, counting its completed worker restarts (its log goes with it). */
  async stop(): Promise<void> {
    this.tally.group(GROUP).restarts += this.client.logs.filter((l) => l.includes('runtime: the inference worker restarted in')).length;
    this.tally.measure(this.client.pid, 'server');
    await this.client.stop();
  }

  /** Sends the kind of request that makes the worker break; resolves to its items or its error. */
  async breakingRequest(kind: 'inline' | 'candidates'): Promise<{ items: number; error?: string }> {
    const textDocument = { uri: DOC_URI };
    if (kind === 'inline') {
      // Explicit: unmask.candidates rows, the count the broken worker breaks on.
      const params = { textDocument, position: CURSOR, context: { triggerKind: InlineCompletionTriggerKind.Invoked } };
      const result = await this.client.connection.sendRequest(InlineCompletionRequest.type, params);
      return { items: result === null ? 0 : Array.isArray(result) ? result.length : result.items.length };
    }
    const result = (await this.client.connection.sendRequest(CandidatesRequest, { textDocument, position: CURSOR, count: this.rows })) as CandidatesResult;
    return { items: result.candidates.length, ...(result.error !== undefined ? { error: result.error } : {}) };
  }

  /**
   * An ordinary request (an automatic inline one of unmask.inlineCandidates = 2 rows, or 1-4 candidates: fewer rows
   * than the worker breaks on) must come back with a real completion and leave the status ready.
   */
  async ordinaryRequest(g: Gen): Promise<Checked> {
    const since = this.client.statuses.length;
    let items: number;
    if (g.chance(0.5)) {
      const params = { textDocument: { uri: DOC_URI }, position: CURSOR, context: { triggerKind: InlineCompletionTriggerKind.Automatic } };
      const result = await this.client.connection.sendRequest(InlineCompletionRequest.type, params);
      items = result === null ? 0 : Array.isArray(result) ? result.length : result.items.length;
    } else {
      const count = g.int(1, 4);
      const result = (await this.client.connection.sendRequest(CandidatesRequest, { textDocument: { uri: DOC_URI }, position: CURSOR, count })) as CandidatesResult;
      if (result.error !== undefined) return { outcome: 'unclear', seen: `the next request failed: ${result.error}` };
      items = result.candidates.length;
    }
    if (items === 0) return { outcome: 'unclear', seen: 'no completion from the next request after the worker broke' };
    // The generation's end publishes its status before the answer goes out: the last one must be ready, not busy or error.
    const last = this.client.statuses.slice(since).at(-1);
    if (last?.state !== 'ready') return { outcome: 'unclear', seen: `status after the next request: ${JSON.stringify(last)}` };
    return 'answer';
  }
}

const said = (s: StatusParams, pattern: RegExp): boolean => s.state === 'error' && s.message !== undefined && pattern.test(s.message) && isClear(s.message);

/**
 * A generation that hangs in the worker: answered empty or with a clear error at the deadline, an error status
 * saying the worker was abandoned, then a ready status saying a fresh one started, all within RESTART_MS of the
 * deadline. Records the timings when it passes.
 */
async function hangRound(server: BrokenWorkerServer, kind: 'inline' | 'candidates', timings: HangTiming[]): Promise<Checked> {
  const client = server.client;
  const since = client.statuses.length;
  const restartsBefore = client.statuses.at(-1)?.workerRestarts ?? 0;
  const sent = performance.now();
  const answer = await server.breakingRequest(kind);
  const answeredMs = performance.now() - sent;
  if (answer.items > 0) return { outcome: 'unclear', seen: `${answer.items} completions from a worker that hangs` };
  const abandoned = /passed its 0\.4 s deadline, so the inference worker was abandoned; a fresh one is starting/;
  if (answer.error !== undefined && !(abandoned.test(answer.error) && isClear(answer.error))) return { outcome: 'unclear', seen: `error: ${answer.error}` };
  // The error status comes before the answer (the generation's end publishes it); the restart's ready status after.
  const errorAt = client.statuses.slice(since).findIndex((s) => said(s, abandoned));
  if (errorAt < 0) return { outcome: 'unclear', seen: `no status said the worker was abandoned: ${JSON.stringify(client.statuses.slice(since))}` };
  // Never rejects before the check's watchdog (at DEADLINE_MS + RESTART_MS) calls a missing restart a hang.
  const ready = await client.waitForStatus(
    (s) => s.state === 'ready' && s.workerRestarts === restartsBefore + 1 && /^a fresh inference worker started in \d+ ms after: .*deadline/.test(s.lastRestart ?? ''),
    since + errorAt + 1,
    60_000,
  );
  const restartedAfterDeadlineMs = performance.now() - sent - DEADLINE_MS;
  timings.push({ answeredMs, restartedAfterDeadlineMs, serverRestartMs: Number(/started in (\d+) ms/.exec(ready.lastRestart ?? '')?.[1]) });
  return 'clear';
}

/**
 * A generation whose worker crashes: answered at once, empty or with an error saying the worker exited, and an error
 * status saying it restarts on the next request (a crash restarts lazily: a worker that dies while loading must not
 * loop). The next request's fresh worker shows in the status (checked after it).
 */
async function crashRound(server: BrokenWorkerServer, kind: 'inline' | 'candidates'): Promise<Checked> {
  const since = server.client.statuses.length;
  const answer = await server.breakingRequest(kind);
  if (answer.items > 0) return { outcome: 'unclear', seen: `${answer.items} completions from a worker that crashes` };
  const exited = /the inference worker exited with code 3; it restarts on the next request/;
  if (answer.error !== undefined && !(exited.test(answer.error) && isClear(answer.error))) return { outcome: 'unclear', seen: `error: ${answer.error}` };
  if (!server.client.statuses.slice(since).some((s) => said(s, exited))) {
    return { outcome: 'unclear', seen: `no status said the worker exited: ${JSON.stringify(server.client.statuses.slice(since))}` };
  }
  return 'clear';
}

const quantile = (values: number[], q: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))];

export async function lspWorkerFaults(tally: Tally, modelDir: string, seed: number, scale: number): Promise<void> {
  const g = new Gen(seed + 2);
  const rounds = Math.max(2, Math.round(10 * scale));
  const timings: HangTiming[] = [];
  for (const broken of ['hang', 'crash'] as const) {
    const server = new BrokenWorkerServer(modelDir, broken, tally);
    await server.start();
    try {
      for (let i = 0; i < rounds; i++) {
        const kind = i % 2 === 0 ? 'inline' : 'candidates';
        const what = `${broken}: ${kind} of ${server.rows} rows`;
        const outcome =
          broken === 'hang'
            ? await tally.check(GROUP, what, DEADLINE_MS + RESTART_MS, () => hangRound(server, kind, timings))
            : await tally.check(GROUP, what, ANSWER_MS, () => crashRound(server, kind));
        if (outcome === 'hang') {
          // No restart in time: a fresh server, so that the next round tests the next input, not this one's leftovers.
          await server.stop();
          await server.start();
          continue;
        }
        const after = await tally.check(GROUP, `${broken}: the next request`, ANSWER_MS, async () => {
          const restartsBefore = server.client.statuses.at(-1)?.workerRestarts ?? 0;
          const checked = await server.ordinaryRequest(g);
          // A crashed worker restarts for this request: the status counts it and says why.
          const last = server.client.statuses.at(-1);
          const restarted = last?.workerRestarts === restartsBefore + 1 && /^a fresh inference worker started in \d+ ms after: the inference worker exited/.test(last.lastRestart ?? '');
          if (broken === 'crash' && checked === 'answer' && !restarted) return { outcome: 'unclear', seen: `no restart in the status: ${JSON.stringify(last)}` };
          return checked;
        });
        if (after === 'hang') {
          await server.stop();
          await server.start();
        }
      }
    } finally {
      await server.stop();
    }
  }
  if (timings.length) {
    const fmt = (pick: (t: HangTiming) => number): string => {
      const values = timings.map(pick);
      return `median ${quantile(values, 0.5).toFixed(0)} ms, max ${Math.max(...values).toFixed(0)} ms`;
    };
    tally.notes.push(
      `worker hangs over LSP (deadline ${DEADLINE_MS} ms, ${timings.length} abandoned): answered after ${fmt((t) => t.answeredMs)}; ` +
        `status ready with a fresh worker ${fmt((t) => t.restartedAfterDeadlineMs)} after the deadline (target ${RESTART_MS} ms); ` +
        `restart as the server timed it ${fmt((t) => t.serverRestartMs)}`,
    );
  }
}
