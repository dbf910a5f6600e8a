/**
 * A minimal LSP client for the integration tests: starts the built server (dist/server.js) over node IPC, as the
 * extension does, answers its workspace/configuration requests from a settings object the test controls, and
 * collects its status, trace and log notifications.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ConfigurationRequest,
  DidChangeConfigurationNotification,
  DidCloseTextDocumentNotification,
  DidOpenTextDocumentNotification,
  InitializeRequest,
  InitializedNotification,
  IPCMessageReader,
  IPCMessageWriter,
  LogMessageNotification,
  type LogMessageParams,
  type ProtocolConnection,
  RegistrationRequest,
  createProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import { type StatusParams, StatusNotification, TraceNotification, type TraceParams } from '../../server/protocol/messages';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const SERVER_JS = path.join(REPO_ROOT, 'dist', 'server.js');

/** Builds dist/ when it is missing (npm test and npm run test:integration build first anyway). */
/** The newest modification time (ms) of the files under `dir` whose names end in `.ts`. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than the server's sources (a stale bundle would test old code). */
export function ensureBuilt(): void {
  const worker = path.join(REPO_ROOT, 'dist', 'worker.js');
  const built = fs.existsSync(SERVER_JS) && fs.existsSync(worker) ? Math.min(fs.statSync(SERVER_JS).mtimeMs, fs.statSync(worker).mtimeMs) : 0;
  const sources = Math.max(newestSource(path.join(REPO_ROOT, 'server')), fs.statSync(path.join(REPO_ROOT, 'package.json')).mtimeMs);
  if (built > sources) return;
  const build = spawnSync(process.execPath, ['esbuild.mjs'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('node esbuild.mjs failed');
}

export class TestClient {
  readonly connection: ProtocolConnection;
  readonly statuses: StatusParams[] = [];
  readonly traces: TraceParams[] = [];
  readonly logs: string[] = [];
  settings: Record<string, unknown>;
  private readonly child: ChildProcess;
  private statusWaiters: { accept: (s: StatusParams) => boolean; resolve: (s: StatusParams) => void }[] = [];
  private configurationWaiters: (() => void)[] = [];

  /** `env` adds to the server process's environment (the fault suite's hooks, server/fault-hooks.ts). */
  constructor(settings: Record<string, unknown>, env: Record<string, string> = {}) {
    this.settings = settings;
    this.child = fork(SERVER_JS, ['--node-ipc'], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, ...env } });
    this.child.stderr?.on('data', (chunk: Buffer) => this.logs.push(`stderr: ${chunk.toString()}`));
    this.connection = createProtocolConnection(new IPCMessageReader(this.child), new IPCMessageWriter(this.child));
    this.connection.onRequest(ConfigurationRequest.type, (params) => {
      const answer = params.items.map((item) => (item.section === 'unmask' ? this.settings : null));
      for (const pulled of this.configurationWaiters.splice(0)) pulled();
      return answer;
    });
    this.connection.onRequest(RegistrationRequest.type, () => undefined);
    this.connection.onNotification(LogMessageNotification.method, (p: LogMessageParams) => {
      this.logs.push(p.message);
    });
    this.connection.onNotification(TraceNotification, (p: TraceParams) => {
      this.traces.push(p);
    });
    this.connection.onNotification(StatusNotification, (status: StatusParams) => {
      this.statuses.push(status);
      this.statusWaiters = this.statusWaiters.filter((w) => (w.accept(status) ? (w.resolve(status), false) : true));
    });
    this.connection.listen();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Sends `message` over the IPC channel as it is, not as JSON-RPC (the fault suite's malformed messages). */
  sendRaw(message: object | string | number | boolean): void {
    this.child.send(message);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async initialize(): Promise<void> {
    await this.connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: null,
      capabilities: {
        workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: true } },
        textDocument: { inlineCompletion: { dynamicRegistration: false } },
      },
    });
    await this.connection.sendNotification(InitializedNotification.type, {});
  }

  /**
   * Changes settings as the editor does (a didChangeConfiguration notification) and resolves once the server has
   * pulled them: requests sent afterwards reach it after its configuration answer, so they run with the new settings.
   */
  async changeSettings(changes: Record<string, unknown>): Promise<void> {
    this.settings = { ...this.settings, ...changes };
    const pulled = new Promise<void>((resolve) => this.configurationWaiters.push(resolve));
    await this.connection.sendNotification(DidChangeConfigurationNotification.type, { settings: { unmask: this.settings } });
    await pulled;
  }

  /** The next status (already received ones from index `since` on count) that `accept` likes. */
  waitForStatus(accept: (s: StatusParams) => boolean, since = 0, timeoutMs = 30_000): Promise<StatusParams> {
    const seen = this.statuses.slice(since).find(accept);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching status in ${timeoutMs} ms; got ${JSON.stringify(this.statuses)}`)), timeoutMs);
      this.statusWaiters.push({ accept, resolve: (s) => (clearTimeout(timer), resolve(s)) });
    });
  }

  async open(uri: string, languageId: string, text: string, version = 1): Promise<void> {
    await this.connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId, version, text } });
  }

  async close(uri: string): Promise<void> {
    await this.connection.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri } });
  }

  async stop(): Promise<void> {
    try {
      await Promise.race([this.connection.sendRequest('shutdown'), new Promise((r) => setTimeout(r, 3000))]);
      await this.connection.sendNotification('exit');
    } catch {
      // The server may already be gone; the kill below makes sure.
    }
    this.connection.dispose();
    await new Promise((r) => setTimeout(r, 200));
    if (this.alive) this.child.kill();
  }
}
