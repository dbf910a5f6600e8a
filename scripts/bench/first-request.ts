/**
 * The bench's first-request rows (`npm run bench -- --first-request`): the first inline completion in a file the
 * server has not seen before. The cache n-gram model counts the document's window around the cursor (24K characters
 * before, 8K after: protocol/window.ts), and the tokenizer's line cache knows none of a fresh file's lines, so without
 * warming that request encodes 25-30K characters cold, against unmask.latencyBudgetMs.
 *
 * For each of the repository's largest source files (each opened once, under a fresh uri): open it, wait `idle` ms
 * (the time a user spends looking before typing), type a newline at a line about 24K characters in, wait 150 ms
 * (unmask.debounceMs's default), ask for an automatic inline completion there; then type another newline and ask
 * again: that second request is the warm reference. Scenarios: idle 0 ms with the request sent right after the
 * keystroke (nothing can be warm), idle 0 ms plus the debounce, and idle 1,000 ms plus the debounce. Every scenario
 * runs in a server of its own, so that the tokenizer's line cache starts empty in each.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  InlineCompletionRequest,
  type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';

export interface FirstRequestServer {
  readonly connection: ProtocolConnection;
  /** Final traces of finished generations: model calls and whether the budget cut them. */
  readonly finished: readonly { steps: number; cutByDeadline: boolean }[];
}

export interface Scenario {
  readonly label: string;
  /** ms between opening the file and the first keystroke. */
  readonly idleMs: number;
  /** ms between the keystroke and the request (the client's debounce). */
  readonly debounceMs: number;
}

export const SCENARIOS: readonly Scenario[] = [
  { label: 'request right after opening and typing', idleMs: 0, debounceMs: 0 },
  { label: 'typed right after opening, 150 ms debounce', idleMs: 0, debounceMs: 150 },
  { label: 'opened 1 s before typing, 150 ms debounce', idleMs: 1000, debounceMs: 150 },
];

export interface FirstRequestRow {
  scenario: string;
  budgetMs: number;
  files: number;
  /** Latency over IPC of the first request in each file, and of the second (warm) one. */
  first: number[];
  warm: number[];
  firstCalls: number[];
  warmCalls: number[];
  firstCut: number;
  warmCut: number;
}

/** The repository's source files of at least `minChars` characters, largest first. */
export function largeFiles(root: string, count: number, minChars = 25_000): { file: string; languageId: string; text: string }[] {
  const found: { file: string; languageId: string; text: string }[] = [];
  const walk = (dir: string): void => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'data' && entry.name !== 'runs' && !entry.name.startsWith('.')) walk(full);
      } else if (/\.(ts|py)$/.test(entry.name)) {
        const text = fs.readFileSync(full, 'utf8');
        if (text.length >= minChars) found.push({ file: full, languageId: entry.name.endsWith('.py') ? 'python' : 'typescript', text });
      }
    }
  };
  for (const dir of ['server', 'client', 'scripts', 'test', 'models/recipe']) walk(path.join(root, dir));
  found.sort((a, b) => b.text.length - a.text.length || a.file.localeCompare(b.file));
  return found.slice(0, count);
}

/**
 * Untimed requests in two small files (Python and TypeScript) first: a fresh server's first requests also pay for V8
 * compiling the sampler and the tokenizer, onnxruntime planning its first shapes and the syntax check loading a
 * grammar, which no later file pays again and which would otherwise land on the first file's row.
 */
async function warmUp(server: FirstRequestServer, tag: string): Promise<void> {
  const snippets: [string, string, string][] = [
    ['python', 'py', 'import os\n\n\ndef read(path):\n    with open(path) as f:\n        return f.read()\n\n\ndef main():\n    \n'],
    ['typescript', 'ts', 'export function read(path: string): string {\n  return fs.readFileSync(path, "utf8");\n}\n\nexport function main(): void {\n  \n}\n'],
  ];
  for (const [languageId, ext, text] of snippets) {
    const uri = `file:///bench/warmup-${tag}.${ext}`;
    await server.connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId, version: 1, text } });
    const line = text.split('\n').length - 2;
    for (let i = 0; i < 3; i++) {
      await server.connection.sendRequest(InlineCompletionRequest.type, { textDocument: { uri }, position: { line, character: 0 }, context: { triggerKind: 2 } });
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The line that starts nearest `offset` characters into `text` (0-based), and the text's lines. */
function lineNear(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length - 1;
}

/** One scenario over `files` in a fresh server (the caller starts it with the budget in its settings). */
export async function firstRequests(server: FirstRequestServer, files: ReturnType<typeof largeFiles>, scenario: Scenario, budgetMs: number, tag: string): Promise<FirstRequestRow> {
  await warmUp(server, tag);
  const row: FirstRequestRow = { scenario: scenario.label, budgetMs, files: files.length, first: [], warm: [], firstCalls: [], warmCalls: [], firstCut: 0, warmCut: 0 };
  for (const [i, { languageId, text }] of files.entries()) {
    const uri = `file:///bench/first-${tag}-${i}.${languageId === 'python' ? 'py' : 'ts'}`;
    await server.connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId, version: 1, text } });
    // The cursor about 24K characters in (the whole window before it), or three quarters in for a shorter file.
    const lines = text.split('\n');
    let line = Math.max(1, lineNear(text, Math.min(24_000, Math.floor(text.length * 0.75))));
    let version = 1;
    const ask = async (): Promise<{ ms: number; steps: number; cut: boolean }> => {
      // A newline at the end of the line before `line`: the cursor then sits at the start of a new empty line.
      const at = { line: line - 1, character: lines[line - 1].length };
      await server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
        textDocument: { uri, version: ++version },
        contentChanges: [{ range: { start: at, end: at }, text: '\n' }],
      });
      lines.splice(line, 0, '');
      if (scenario.debounceMs > 0) await sleep(scenario.debounceMs);
      const since = server.finished.length;
      const started = performance.now();
      await server.connection.sendRequest(InlineCompletionRequest.type, { textDocument: { uri }, position: { line, character: 0 }, context: { triggerKind: 2 } });
      const ms = performance.now() - started;
      // The final trace arrives before the answer (finishTrace runs first); a generation that failed has none.
      const trace = server.finished.slice(since).at(-1);
      line += 1;
      return { ms, steps: trace?.steps ?? NaN, cut: trace?.cutByDeadline ?? false };
    };
    if (scenario.idleMs > 0) await sleep(scenario.idleMs);
    const first = await ask();
    const warm = await ask();
    row.first.push(first.ms);
    row.warm.push(warm.ms);
    row.firstCalls.push(first.steps);
    row.warmCalls.push(warm.steps);
    if (first.cut) row.firstCut += 1;
    if (warm.cut) row.warmCut += 1;
  }
  return row;
}
