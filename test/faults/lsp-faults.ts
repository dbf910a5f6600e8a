/**
 * The fault suite's inputs to the real language server (dist/server.js over node IPC, as the extension starts it):
 * random documents and positions, every numeric setting at and past its bounds, malformed JSON-RPC, floods and
 * cancellation storms, huge and binary documents, and (lsp-worker-faults.ts) inference workers that hang or crash.
 * Each request is one input; the server must answer it (possibly with nothing) or refuse it with a message that says
 * why, and never die or leave it unanswered.
 */
import {
  CancellationTokenSource,
  DidChangeTextDocumentNotification,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  ResponseError,
} from 'vscode-languageserver-protocol/node';
import { CandidatesRequest, FillHolesRequest, FillRangeRequest, LastTraceRequest } from '../../server/protocol/messages';
import { TestClient } from '../integration/lsp-client';
import { type Doc, Gen, junk, lineLengths, randomDocument, randomPosition } from './inputs';
import { lspWorkerFaults } from './lsp-worker-faults';
import { type Checked, type Outcome, type Tally, isClear } from './tally';

/** A request unanswered after this long is a hang (the runtime abandons a stuck generation after 30 s). */
const DEADLINE_MS = 40_000;
/** After this many hangs the rest of the inputs are skipped (the run fails anyway, and each hang costs a deadline). */
const MAX_HANGS = 3;

/** Fast generations, so that thousands of requests fit in a few minutes; the settings group varies them. */
const SETTINGS = { device: 'cpu', threads: 1, steps: 2, maxSpanTokens: 8, candidates: 2, inlineCandidates: 2, contextTokens: 64 };

type Kind = 'inline' | 'candidates' | 'fillRange' | 'fillHoles';
const KINDS: readonly Kind[] = ['inline', 'inline', 'candidates', 'fillRange', 'fillHoles'];

/**
 * One server for the suite; replaced when it dies (a crash of the input that killed it) or hangs (so that one hang
 * does not stall every later input), with the suite's documents opened again.
 */
class Server {
  client!: TestClient;
  private readonly logsSeen = new Map<TestClient, number>();
  readonly docs: { uri: string; doc: Doc }[] = [];

  constructor(
    private readonly modelDir: string,
    private readonly tally: Tally,
  ) {}

  async start(): Promise<void> {
    this.client = new TestClient({ modelPath: this.modelDir, ...SETTINGS });
    await this.client.initialize();
    const status = await this.client.waitForStatus((s) => s.state === 'ready' || s.state === 'error', 0, 60_000);
    if (status.state !== 'ready') throw new Error(`the fault suite's server did not load its model: ${JSON.stringify(status)}`);
    for (const { uri, doc } of this.docs) await this.client.open(uri, doc.languageId, doc.text);
  }

  async open(doc: Doc): Promise<string> {
    const uri = `file:///faults/${this.docs.length}.${doc.languageId || 'txt'}`;
    this.docs.push({ uri, doc });
    await this.client.open(uri, doc.languageId, doc.text);
    return uri;
  }

  get stopped(): boolean {
    return this.tally.total().hangs >= MAX_HANGS;
  }

  /** One input under the watchdog (skipped once the run has stopped); a hung server is replaced. */
  async check(group: string, what: string, work: () => Promise<Checked>): Promise<void> {
    if (this.stopped) return;
    if ((await this.tally.check(group, what, DEADLINE_MS, work)) === 'hang') await this.replace();
  }

  async replace(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Worker restarts the server logged since the last call. */
  restarts(): number {
    const logs = this.client.logs;
    const from = this.logsSeen.get(this.client) ?? 0;
    this.logsSeen.set(this.client, logs.length);
    return logs.slice(from).filter((l) => l.includes('runtime: restarting the inference worker')).length;
  }

  /** After an input: a dead server is a crash of that input, and a fresh one takes over. */
  async survived(): Promise<boolean> {
    if (this.client.alive) return true;
    this.tally.measure(this.client.pid, 'server');
    await this.start();
    return false;
  }

  async stop(): Promise<void> {
    this.tally.measure(this.client.pid, 'server');
    await this.client.stop();
  }
}

/** The outcome of a custom request's result ({error?}) or of a JSON-RPC error. */
function customOutcome(result: unknown, valid: boolean): Checked {
  const error = (result as { error?: unknown } | null)?.error;
  if (error === undefined) return valid ? 'answer' : { outcome: 'unclear', seen: `generated for an invalid input: ${JSON.stringify(result).slice(0, 200)}` };
  return { outcome: typeof error === 'string' && isClear(error) ? 'clear' : 'unclear', seen: String(error) };
}

function rpcError(err: unknown): Checked {
  return { outcome: err instanceof ResponseError && isClear(err.message) ? 'clear' : 'unclear', seen: String((err as Error).message ?? err) };
}

const outcomeOf = (checked: Checked): Outcome => (typeof checked === 'string' ? checked : checked.outcome);

/** Sends one request of `kind` at `position` and classifies the answer; `valid` says whether it should generate. */
async function request(server: Server, uri: string, doc: Doc, kind: Kind, position: unknown, valid: boolean, token?: CancellationTokenSource): Promise<Checked> {
  const client = server.client;
  const textDocument = { uri };
  // No token argument at all when there is none: a trailing undefined would be sent as a second positional param.
  const send = (method: string, params: object): Promise<unknown> =>
    token ? client.connection.sendRequest(method, params, token.token) : client.connection.sendRequest(method, params);
  try {
    if (kind === 'inline') {
      const logsBefore = client.logs.length;
      const triggerKind = position && typeof position === 'object' && 'line' in position && Number(position.line) % 2 ? InlineCompletionTriggerKind.Invoked : InlineCompletionTriggerKind.Automatic;
      const params = { textDocument, position: position as { line: number; character: number }, context: { triggerKind } };
      const result = await (token ? client.connection.sendRequest(InlineCompletionRequest.type, params, token.token) : client.connection.sendRequest(InlineCompletionRequest.type, params));
      const items = result === null ? [] : Array.isArray(result) ? result : result.items;
      if (valid) {
        // Every item's range must lie in the document: on the cursor's line, within it.
        const lengths = lineLengths(doc.text);
        const bad = items.find((i) => !('range' in i) || !i.range || i.range.start.line >= lengths.length || i.range.end.character > lengths[i.range.end.line]);
        return bad ? { outcome: 'unclear', seen: `an item outside the document: ${JSON.stringify(bad).slice(0, 200)}` } : 'answer';
      }
      const refused = client.logs.slice(logsBefore).some((l) => l.includes('inline: refused'));
      return items.length === 0 && refused ? 'clear' : { outcome: 'unclear', seen: `${items.length} items, ${refused ? '' : 'no '}refusal logged` };
    }
    if (kind === 'candidates') {
      // Mostly 1-4 rows (each row is a syntax check of the file's window), sometimes the most there may be.
      const count = doc.text.length % 10 === 0 ? 16 : 1 + (doc.text.length % 4);
      const result = await send(CandidatesRequest, { textDocument, position, count });
      return customOutcome(result, valid);
    }
    if (kind === 'fillRange') {
      const result = await send(FillRangeRequest, { textDocument, range: { start: position, end: position } });
      return customOutcome(result, valid);
    }
    const holes = [{ range: { start: position, end: position }, maxTokens: 4 }];
    const result = await send(FillHolesRequest, { textDocument, holes });
    return customOutcome(result, valid);
  } catch (err) {
    return rpcError(err);
  }
}


export async function lspFaults(tally: Tally, modelDir: string, seed: number, scale: number): Promise<void> {
  const g = new Gen(seed);
  const server = new Server(modelDir, tally);
  await server.start();
  const docs = server.docs;
  const open = (doc: Doc): Promise<string> => server.open(doc);
  try {
    // 1. Random documents and positions (issue 15's long-body shape among them), every request kind.
    const group1 = 'documents and positions';
    for (let i = 0; i < 120; i++) await open(randomDocument(g));
    for (let i = 0; i < Math.round(3000 * scale); i++) {
      const { uri, doc } = g.pick(docs);
      const { position, valid } = randomPosition(g, doc.text, 0.25);
      const kind = g.pick(KINDS);
      await server.check(group1, `${kind} ${doc.shape} ${doc.languageId} at ${JSON.stringify(position)}`, async () => {
        const outcome = await request(server, uri, doc, kind, position, valid);
        return (await server.survived()) ? outcome : 'crash';
      });
    }
    tally.group(group1).restarts += server.restarts();

    // 2. Every numeric setting at and past its bounds (the server logs what it refuses and keeps a valid config).
    const group2 = 'settings at and past bounds';
    const bounds: Record<string, [number, number]> = {
      steps: [1, 128],
      maxSpanTokens: [4, 128],
      confidenceThreshold: [0, 1],
      temperature: [0, 2],
      topP: [0.05, 1],
      contextTokens: [16, 1024],
      threads: [0, 64],
      candidates: [1, 16],
      inlineCandidates: [1, 16],
      relatedContextTokens: [0, 128],
    };
    const target = docs.find((d) => d.doc.shape === 'code' && d.doc.languageId === 'python') ?? docs[0];
    for (let round = 0; round < Math.max(1, Math.round(2 * scale)); round++) {
      for (const [key, [min, max]] of Object.entries(bounds)) {
        const values: [unknown, boolean][] = [
          [min, true],
          [max, true],
          [min - 1, false],
          [max + 1, false],
          [max * 1000, false],
          [-1e308, false],
          [0.5, !['steps', 'maxSpanTokens', 'contextTokens', 'threads', 'candidates', 'inlineCandidates', 'relatedContextTokens'].includes(key) && min <= 0.5 && max >= 0.5],
          ['8', false],
          [null, true], // unset: the default
          [[], false],
        ];
        for (const [value, valid] of values) {
          await server.check(group2, `${key} = ${JSON.stringify(value)}`, async () => {
            const logsBefore = server.client.logs.length;
            // A threads change reloads the model; the request waits for it.
            await server.client.changeSettings({ ...SETTINGS, [key]: value });
            const { position } = randomPosition(g, target.doc.text, 0);
            const checked = await request(server, target.uri, target.doc, 'inline', position, true);
            if (!(await server.survived())) return 'crash';
            if (valid) return checked;
            const said = server.client.logs.slice(logsBefore).find((l) => l.includes(`settings: unmask.${key}`));
            return outcomeOf(checked) === 'answer' && said && isClear(said) ? 'clear' : { outcome: 'unclear', seen: `${outcomeOf(checked)}, settings log: ${said}` };
          });
        }
      }
    }
    await server.client.changeSettings(SETTINGS);
    tally.group(group2).restarts += server.restarts();

    // 3. Malformed JSON-RPC: known methods with junk params, unknown methods, junk notifications, non-JSON-RPC IPC.
    const group3 = 'malformed JSON-RPC';
    const methods = [InlineCompletionRequest.method, CandidatesRequest, FillRangeRequest, FillHolesRequest, LastTraceRequest, 'unmask/nothing', 'textDocument/completion', ''];
    const notifications = ['textDocument/didOpen', 'textDocument/didChange', 'textDocument/didClose', 'workspace/didChangeConfiguration', '$/cancelRequest', 'exit!', 'unmask/nothing'];
    for (let i = 0; i < Math.round(5000 * scale); i++) {
      const roll = g.int(0, 9);
      if (roll < 6) {
        const method = g.pick(methods);
        const params = junk(g);
        await server.check(group3, `${method} ${JSON.stringify(params)?.slice(0, 120)}`, async () => {
          let checked: Checked;
          try {
            checked = customOutcome(await server.client.connection.sendRequest(method, params), true);
          } catch (err) {
            checked = rpcError(err);
          }
          return (await server.survived()) ? checked : 'crash';
        });
      } else {
        // No answer is due to a notification or a raw message: the server must ignore it and keep answering.
        const method = g.pick(notifications);
        const message = junk(g);
        await server.check(group3, `notification ${method} ${JSON.stringify(message)?.slice(0, 120)}`, async () => {
          if (roll < 9) await server.client.connection.sendNotification(method, message);
          else if (message !== null && message !== undefined) server.client.sendRaw(message as object);
          const health = await request(server, target.uri, target.doc, 'inline', { line: 0, character: 0 }, true);
          return (await server.survived()) ? health : 'crash';
        });
      }
    }
    tally.group(group3).restarts += server.restarts();

    // 4. Floods and cancellation storms: bursts of concurrent requests, many cancelled at random moments.
    const group4 = 'floods and cancellations';
    const fast = docs.filter((d) => d.doc.shape === 'code' || d.doc.shape === 'unicode');
    for (let burst = 0; burst < Math.round(40 * scale) && !server.stopped; burst++) {
      const size = g.int(10, 40);
      const sent = Array.from({ length: size }, () => {
        const { uri, doc } = g.pick(fast);
        const { position, valid } = randomPosition(g, doc.text, 0.1);
        const kind = g.pick(KINDS);
        const token = g.chance(0.6) ? new CancellationTokenSource() : undefined;
        if (token) setTimeout(() => token.cancel(), g.int(0, 40));
        return tally.check(group4, `burst of ${size}: ${kind} ${doc.shape}`, DEADLINE_MS, () => request(server, uri, doc, kind, position, valid, token));
      });
      const outcomes = await Promise.all(sent);
      if (!(await server.survived())) tally.record(group4, 'crash', `burst ${burst} of ${size}`);
      else if (outcomes.includes('hang')) await server.replace();
    }
    tally.group(group4).restarts += server.restarts();

    // 5. Huge and binary documents, and edits that grow a document past the windows.
    const group5 = 'huge and binary documents';
    const hugeDocs: Doc[] = [
      { shape: 'huge', text: 'x = 1\n'.repeat(1_000_000), languageId: 'python' },
      { shape: 'one huge line', text: 'a'.repeat(4_000_000), languageId: 'javascript' },
      { shape: 'binary', text: '\u0000\u0001PK'.repeat(500_000), languageId: 'plaintext' },
    ];
    for (const doc of hugeDocs) {
      const uri = await open(doc);
      for (let i = 0; i < Math.round(40 * scale); i++) {
        const { position, valid } = randomPosition(g, doc.text, 0.2);
        const kind = g.pick(KINDS);
        await server.check(group5, `${kind} ${doc.shape} at ${JSON.stringify(position)}`, async () => {
          const outcome = await request(server, uri, doc, kind, position, valid);
          return (await server.survived()) ? outcome : 'crash';
        });
      }
    }
    // Incremental edits: a long-body document typed into line by line, requests after each edit.
    const typed = docs.find((d) => d.doc.shape === 'long body') ?? docs[0];
    let version = 1;
    let text = typed.doc.text;
    for (let i = 0; i < Math.round(100 * scale); i++) {
      const insert = g.pick(['x', ' ', '\n', '    ', '(', 'return x', '\u0000']);
      await server.client.connection.sendNotification(DidChangeTextDocumentNotification.type, {
        textDocument: { uri: typed.uri, version: ++version },
        contentChanges: [{ range: { start: { line: 1, character: 9 }, end: { line: 1, character: 9 } }, text: insert }],
      });
      text = text.slice(0, text.indexOf('\n') + 10) + insert + text.slice(text.indexOf('\n') + 10);
      const doc = { ...typed.doc, text };
      const { position, valid } = randomPosition(g, text, 0.1);
      await server.check(group5, `typed ${JSON.stringify(insert)} then inline at ${JSON.stringify(position)}`, async () => {
        const outcome = await request(server, typed.uri, doc, 'inline', position, valid);
        return (await server.survived()) ? outcome : 'crash';
      });
    }
    tally.group(group5).restarts += server.restarts();
  } finally {
    await server.stop();
  }

  // 6. A worker that hangs and one that crashes, each behind a server of its own (lsp-worker-faults.ts).
  await lspWorkerFaults(tally, modelDir, seed, scale);
}
