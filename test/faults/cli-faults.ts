/**
 * The fault suite's inputs to the command line (dist/cli.js): one --batch run over thousands of generated tasks
 * (hostile lines among them: null, lists, NUL bytes, the long-body shape of issue 15, huge texts, bad max_tokens), and
 * single runs with bad arguments. A task must get a result or an error line; a run must exit 0, 1 or 2 with one clear
 * line on stderr, never a stack trace, and within its deadline.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../integration/lsp-client';
import { tempDir } from '../fixtures/models';
import { Gen, junk, longBody, randomDocument } from './inputs';
import { type Tally, isClear } from './tally';

const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

interface Run {
  code: number | null;
  stderr: string;
  timedOut: boolean;
}

/** Runs the CLI with a deadline, sampling its peak memory while it runs. */
function runCli(tally: Tally, args: string[], deadlineMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const sampler = setInterval(() => tally.measure(child.pid, 'CLI'), 200);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, deadlineMs);
    child.on('close', (code) => {
      clearInterval(sampler);
      clearTimeout(timer);
      resolve({ code, stderr, timedOut });
    });
  });
}

/** A task line: mostly well formed, from random documents cut at random places; some hostile. */
function taskLine(g: Gen, i: number): string {
  const roll = g.int(0, 99);
  if (roll < 5) return g.pick(['null', '[]', '7', '"task"', 'true', '{', '{"prefix": "x"', '\u0000']);
  if (roll < 10) return JSON.stringify(junk(g)) ?? 'null';
  if (roll < 13) return JSON.stringify({ id: i, prefix: 'def f(x):\n    y = x', suffix: `\n${longBody(g.int(16_500, 25_000))}`, language: 'python' });
  const doc = randomDocument(g);
  const text = doc.shape === 'huge' ? doc.text.slice(0, 50_000) : doc.text;
  const cut = g.int(0, text.length);
  const task: Record<string, unknown> = { id: i, prefix: text.slice(0, cut), suffix: text.slice(cut), language: doc.languageId };
  if (g.chance(0.2)) task.max_tokens = g.pick([1, 8, 128, 4096, 0, -1, 1.5, 1e9, '8', null]);
  if (g.chance(0.1)) task.before = g.pick([text.slice(0, cut), 7, null, '\u0000']);
  return JSON.stringify(task);
}

/** Bad or odd arguments for a single run: each must be a usage error (exit 2) or a clear failure. */
function argumentCases(dir: string, model: string): string[][] {
  const file = path.join(dir, 'f.py');
  fs.writeFileSync(file, 'def f(x):\n    return x\n');
  fs.writeFileSync(path.join(dir, 'bin.py'), Buffer.from([0x50, 0x4b, 0, 0, 1, 2, 0]));
  fs.writeFileSync(path.join(dir, 'empty.py'), '');
  const run = ['--model', model, '--device', 'cpu', '--threads', '1', '--steps', '2'];
  return [
    [dir, '--line', '1', '--col', '1', ...run],
    [path.join(dir, 'missing.py'), '--line', '1', '--col', '1', ...run],
    [path.join(dir, 'bin.py'), '--line', '1', '--col', '3', ...run],
    [path.join(dir, 'empty.py'), '--line', '1', '--col', '1', ...run],
    [file, '--line', '0', '--col', '1', ...run],
    [file, '--line', '1', '--col', '1.5', ...run],
    [file, '--line', '-1', '--col', '1', ...run],
    [file, '--line', '99999999999999999999', '--col', '1', ...run],
    [file, '--line', '1', '--col', '1', ...run, '--steps', '0'],
    [file, '--line', '1', '--col', '1', ...run, '--candidates', '17'],
    [file, '--line', '1', '--col', '1', ...run, '--temperature', 'hot'],
    [file, '--line', '1', '--col', '1', ...run, '--top-p', '-1'],
    [file, '--line', '1', '--col', '1', ...run, '--max-tokens', '100000'],
    [file, '--line', '1', '--col', '1', ...run, '--device', 'tpu'],
    [file, '--line', '1', '--col', '1', ...run, '--precision', 'int4'],
    [file, '--line', '1', '--col', '1', '--model', dir],
    [file, '--line', '1', '--col', '1', '--model', path.join(dir, 'nowhere')],
    ['--batch', dir, ...run],
    ['--batch', path.join(dir, 'missing.jsonl'), ...run],
    ['--batch', file, '--out', path.join(dir, 'nowhere', 'out.jsonl'), ...run],
    ['--batch', file, '--out', dir, ...run],
    ['--batch', file, file, ...run],
    [file, '--line', '1', '--col', '1', '--unknown', ...run],
    [],
  ];
}

export async function cliFaults(tally: Tally, modelDir: string, seed: number, scale: number): Promise<void> {
  const g = new Gen(seed + 2);
  const dir = tempDir('faults-cli');

  const group = 'CLI batch tasks';
  const tasks = Array.from({ length: Math.round(1500 * scale) }, (_, i) => taskLine(g, i)).filter((line) => line.trim() !== '');
  const tasksFile = path.join(dir, 'tasks.jsonl');
  const outFile = path.join(dir, 'results.jsonl');
  fs.writeFileSync(tasksFile, tasks.join('\n'));
  const deadlineMs = Math.max(60_000, tasks.length * 100);
  const run = await runCli(tally, ['--batch', tasksFile, '--out', outFile, '--model', modelDir, '--device', 'cpu', '--threads', '1', '--steps', '2', '--candidates', '2'], deadlineMs);
  const results = fs.existsSync(outFile) ? fs.readFileSync(outFile, 'utf8').split('\n').filter(Boolean) : [];
  for (const [i, line] of tasks.entries()) {
    const result = results[i];
    if (result === undefined) {
      tally.record(group, run.timedOut ? 'hang' : 'crash', `task ${i} got no result (exit ${run.code}): ${line.slice(0, 100)} ${run.stderr.slice(-300)}`);
      continue;
    }
    const parsed = JSON.parse(result) as { error?: string; completion?: string };
    if (typeof parsed.error === 'string') tally.record(group, isClear(parsed.error) ? 'clear' : 'unclear', `${line.slice(0, 100)}: ${parsed.error}`);
    else tally.record(group, typeof parsed.completion === 'string' ? 'answer' : 'unclear', line.slice(0, 100));
  }

  const argsGroup = 'CLI arguments';
  for (const args of argumentCases(dir, modelDir)) {
    const ran = await runCli(tally, args, 60_000);
    const what = `${args.join(' ').slice(0, 120)} -> exit ${ran.code}: ${ran.stderr.trim().slice(0, 200)}`;
    if (ran.timedOut) tally.record(argsGroup, 'hang', what);
    else if (ran.code === 0) tally.record(argsGroup, 'answer', what);
    else if (ran.code === 1 || ran.code === 2) {
      // One line that names the problem; not a stack.
      const lines = ran.stderr.trim().split('\n').filter((l) => l.startsWith('unmask: '));
      tally.record(argsGroup, lines.length === 1 && isClear(ran.stderr) ? 'clear' : 'unclear', what);
    } else tally.record(argsGroup, 'crash', what);
  }
}
