import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { smokeModel, tempDir, testModel } from '../fixtures/models';
import { writeTinyModel } from '../fixtures/tiny-model';
import { REPO_ROOT, ensureBuilt } from './lsp-client';

const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

function cli(args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input, timeout: 60_000 });
  return { code: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
}

describe('the command line', () => {
  const model = testModel();
  const dir = tempDir('cli');
  const file = path.join(dir, 'sum.py');
  fs.writeFileSync(file, 'def total(xs):\n    result = 0\n    for x in xs:\n        \n    return result\n');
  const common = ['--model', model.dir, '--device', 'cpu', '--threads', '1', '--max-tokens', '16'];

  before(() => ensureBuilt());

  it('prints the completion and the unmasking order step by step', () => {
    const run = cli([file, '--line', '4', '--col', '9', '--steps', '4', ...common]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^model \S+ \((model(\.int8)?\.onnx|context(\.int8)?\.onnx \+ step(\.int8)?\.onnx)\) on cpu, loaded in \d+ ms/);
    assert.match(run.stdout, /python at 4:9: 16-token span, [1-4] model calls/);
    assert.match(run.stdout, /--- unmasking order \(step: token@index confidence\) ---\nstep  1: /);
    assert.match(run.stdout, /AR-ness@1..8 local: /);
  });

  /** Ranked candidates as the extension ranks them: best first, each with its score and the file's syntax errors. */
  function assertRanked(candidates: { text: string; score: number; syntax_errors?: number }[], atMost: number): void {
    assert.ok(candidates.length >= 1 && candidates.length <= atMost, `${candidates.length} candidates`);
    for (const [i, c] of candidates.entries()) {
      assert.equal(typeof c.score, 'number');
      assert.ok(Number.isInteger(c.syntax_errors), 'Python has a parser: every candidate is checked');
      if (i > 0) assert.ok(candidates[i - 1].score >= c.score, 'best first');
    }
  }

  it('prints JSON with ranked candidates, order and timings', () => {
    const run = cli([file, '--line', '4', '--col', '9', '--json', '--candidates', '3', '--steps', '4', ...common]);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.language, 'python');
    assertRanked(result.candidates, 3);
    assert.equal(result.completion, result.candidates[0].text);
    assert.ok(result.order.length >= 1 && result.order.length <= 4);
    assert.ok(result.model_calls <= 4 && result.latency_ms > 0 && result.model_ms > 0);
  });

  it('cuts the steps at --latency-budget, committing every token left in the last one, and says so', () => {
    const run = cli([file, '--line', '4', '--col', '9', '--json', '--steps', '4', '--latency-budget', '0.001', ...common]);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.cut_by_deadline, true);
    assert.equal(result.model_calls, 1);
    const free = JSON.parse(cli([file, '--line', '4', '--col', '9', '--json', '--steps', '4', ...common]).stdout);
    assert.equal(free.cut_by_deadline, false);
  });

  it('ranks a batch task\'s candidates against the whole file it gives', () => {
    const tasks = path.join(dir, 'ranked.jsonl');
    const out = path.join(dir, 'ranked-results.jsonl');
    const task = { id: 'r', prefix: '    for x in xs:\n        ', suffix: '\n', language: 'python' };
    fs.writeFileSync(tasks, [
      JSON.stringify({ ...task, before: 'def total(xs):\n    result = 0\n    for x in xs:\n        ', after: '\n    return result\n' }),
      JSON.stringify({ ...task, id: 'bad', before: 7 }),
    ].join('\n'));
    const run = cli(['--batch', tasks, '--out', out, '--steps', '4', '--candidates', '4', ...common]);
    assert.equal(run.code, 0, run.stderr);
    const [ranked, bad] = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assertRanked(ranked.candidates, 4);
    assert.equal(ranked.completion, ranked.candidates[0].text);
    assert.match(bad.error, /"before" must be a string/);
  });

  it('fills a JSONL batch, keeping one result per line and an error for each bad line', () => {
    const tasks = path.join(dir, 'tasks.jsonl');
    const out = path.join(dir, 'results.jsonl');
    fs.writeFileSync(
      tasks,
      [
        JSON.stringify({ id: 'a', prefix: 'def f(x):\n    return ', suffix: '\n', language: 'python' }),
        '{not json',
        JSON.stringify({ id: 'c', prefix: 'const x = ', suffix: ';\n', language: 'typescript', max_tokens: 8 }),
        JSON.stringify({ id: 'd', prefix: 42, suffix: '' }),
      ].join('\n'),
    );
    const run = cli(['--batch', tasks, '--out', out, '--steps', '4', ...common]);
    assert.equal(run.code, 0, run.stderr);
    const results = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(results.length, 4);
    assert.equal(results[0].id, 'a');
    assert.equal(typeof results[0].completion, 'string');
    assert.ok(results[0].latency_ms > 0 && results[0].model_calls >= 1);
    assert.match(results[1].error, /not JSON/);
    assert.equal(results[2].id, 'c');
    assert.match(results[3].error, /"prefix" must be a string/);
    assert.match(run.stderr, /batch: 2 tasks filled, 2 failed/);
  });

  it('counts a batch task\'s related texts (other open files) in the cache n-gram model, as many as --cache-ngram-open-documents', () => {
    const tasks = path.join(dir, 'related.jsonl');
    const other = 'def a(items):\n    result = compute_total(items, scale=2)\n    return result\n'.repeat(3);
    const task = { prefix: 'import os\n\ndef b(items):\n    result = compute_', suffix: '\n', language: 'python' };
    fs.writeFileSync(
      tasks,
      [
        JSON.stringify({ ...task, id: 'with', related: [other] }),
        JSON.stringify({ ...task, id: 'without' }),
        JSON.stringify({ ...task, id: 'bad', related: 'not a list' }),
        JSON.stringify({ ...task, id: 'nul', related: ['x = "\u0000"'] }),
      ].join('\n'),
    );
    const results = (extra: string[]) => {
      const run = cli(['--batch', tasks, '--steps', '4', ...common, ...extra]);
      assert.equal(run.code, 0, run.stderr);
      return run.stdout.trim().split('\n').map((l) => JSON.parse(l));
    };
    const [withOther, without, bad, nul] = results([]);
    assert.match(bad.error, /"related" must be a list of strings/);
    assert.match(nul.error, /NUL bytes/);
    const [notCounted] = results(['--cache-ngram-open-documents', '0']);
    assert.equal(notCounted.completion, without.completion, '0 other documents: as without them');
    if (model.kind === 'shipped') {
      // The shipped model's own guess after "compute_" is "b(items)"; the other file wrote "compute_total(items, ...)",
      // and with it counted the completion starts with its "total".
      assert.ok(withOther.completion.startsWith('total'), JSON.stringify(withOther.completion));
      assert.ok(!without.completion.startsWith('total'), JSON.stringify(without.completion));
    }
    assert.equal(cli(['--batch', tasks, ...common, '--cache-ngram-open-documents', '9']).code, 2);
  });

  it('offers the copy candidate from a batch task\'s related texts, as many as --cache-ngram-open-documents', () => {
    const tasks = path.join(dir, 'related-copy.jsonl');
    const other = "def a(items):\n    result = compute_total(items, scale=2, label='zq-unique')\n    return result\n";
    const task = { id: 'copy', prefix: 'import os\n\ndef b(items):\n    result = compute_total(items, ', suffix: '\n', language: 'python', related: [other] };
    fs.writeFileSync(tasks, JSON.stringify(task));
    const copies = (extra: string[]) => {
      const run = cli(['--batch', tasks, '--steps', '2', '--candidates', '2', ...common, ...extra]);
      assert.equal(run.code, 0, run.stderr);
      const [result] = run.stdout.trim().split('\n').map((l) => JSON.parse(l));
      return (result.candidates as { text: string; source?: string }[]).filter((c) => c.source === 'copy').map((c) => c.text);
    };
    // "\n    result = compute_total(items, " recurs only in the other file: what followed it there is offered.
    assert.deepEqual(copies([]), ["scale=2, label='zq-unique')"]);
    assert.deepEqual(copies(['--cache-ngram-open-documents', '0']), [], 'no other documents: no copy from them');
    assert.deepEqual(copies(['--copy-min-match', '0']), [], 'copy off');
  });

  it('places snippets of a batch task\'s related texts in the canvas of a model trained with them, and says how many', () => {
    // The tiny fixture declares the layout (unmask.related_context); the test model, like the shipped one, does not.
    const reads = writeTinyModel(tempDir('cli-related'), { metadata: { 'unmask.related_context': '{"layout": "file_sep", "max_tokens": 128}' } });
    const tasks = path.join(dir, 'snippets.jsonl');
    const other = 'def total(items):\n    result = 0\n    for item in items:\n        result += item.price\n    return result\n\n'.repeat(4);
    const task = { prefix: 'def checkout(cart):\n    result = 0\n    for item in cart.items:\n        result += ', suffix: '\n', language: 'python' };
    fs.writeFileSync(tasks, [JSON.stringify({ ...task, id: 'with', related: [other] }), JSON.stringify({ ...task, id: 'without' })].join('\n'));
    const results = (modelDir: string, extra: string[]) => {
      const run = cli(['--batch', tasks, '--steps', '2', '--model', modelDir, '--device', 'cpu', '--threads', '1', '--max-tokens', '8', ...extra]);
      assert.equal(run.code, 0, run.stderr);
      return { stderr: run.stderr, rows: run.stdout.trim().split('\n').map((l) => JSON.parse(l)) };
    };
    // Independent of the cache n-gram model's share of the related texts.
    const placed = results(reads.dir, ['--cache-ngram-open-documents', '0']);
    assert.ok(placed.rows[0].related_tokens > 0 && placed.rows[0].related_tokens <= 64, JSON.stringify(placed.rows[0]));
    assert.equal(placed.rows[1].related_tokens, 0, 'no related texts: no snippets');
    assert.match(placed.stderr, /reads snippets of other files \(unmask\.related_context, up to 128 tokens\): up to 64 canvas tokens/);
    assert.ok(results(reads.dir, ['--related-context-tokens', '16']).rows[0].related_tokens <= 16);
    assert.equal(results(reads.dir, ['--related-context-tokens', '0']).rows[0].related_tokens, 0);
    const ignored = results(model.dir, ['--related-context-tokens', '64']);
    assert.equal(ignored.rows[0].related_tokens, 0, 'a model trained without snippets gets none');
    assert.match(ignored.stderr, /was not trained with snippets of other files \(no unmask\.related_context\): unmask\.relatedContextTokens is not used/);
    assert.equal(cli(['--batch', tasks, '--model', reads.dir, '--related-context-tokens', '-1']).code, 2);

    // Single-file mode: --related names the other open files; a cached-context model splits the snippets off as context.
    const cached = writeTinyModel(tempDir('cli-related-cached'), { cached: true, metadata: { 'unmask.related_context': '{"layout": "file_sep", "max_tokens": 128}' } });
    const otherFile = path.join(dir, 'shop.py');
    fs.writeFileSync(otherFile, other);
    const checkout = path.join(dir, 'checkout.py');
    fs.writeFileSync(checkout, `${task.prefix}\n`);
    for (const modelDir of [reads.dir, cached.dir]) {
      const run = cli([checkout, '--line', '4', '--col', '19', '--json', '--steps', '2', '--related', otherFile, '--model', modelDir, '--device', 'cpu', '--threads', '1']);
      assert.equal(run.code, 0, run.stderr);
      const result = JSON.parse(run.stdout);
      assert.ok(result.related_tokens > 0, JSON.stringify(result));
      assert.ok(result.canvas_tokens <= 256);
    }
    const text = cli([checkout, '--line', '4', '--col', '19', '--steps', '2', '--related', otherFile, '--model', reads.dir, '--device', 'cpu', '--threads', '1']);
    assert.match(text.stdout, /canvas \d+ tokens \(\d+ of them snippets of other files\)/);
    assert.match(cli([checkout, '--line', '1', '--col', '1', '--related', '/nonexistent.py', '--model', reads.dir]).stderr, /--related file not found: \/nonexistent\.py/);
  });

  it('keeps going past batch lines that are null, not objects or binary, one error each (issue 15)', () => {
    const tasks = path.join(dir, 'hostile.jsonl');
    const out = path.join(dir, 'hostile-results.jsonl');
    const good = { id: 'ok', prefix: 'def f(x):\n    return ', suffix: '\n', language: 'python' };
    fs.writeFileSync(tasks, ['null', '[1, 2]', '7', JSON.stringify({ ...good, id: 'nul', prefix: 'x = "\u0000"\n' }), JSON.stringify(good)].join('\n'));
    const run = cli(['--batch', tasks, '--out', out, '--steps', '2', ...common]);
    assert.equal(run.code, 0, run.stderr);
    const results = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(results.length, 5);
    assert.match(results[0].error, /a task must be a JSON object \{prefix, suffix, \.\.\.\}, got null/);
    assert.match(results[1].error, /got a list/);
    assert.match(results[2].error, /got number/);
    assert.match(results[3].error, /the text contains NUL bytes \(binary content\)/);
    assert.equal(results[4].id, 'ok');
    assert.equal(typeof results[4].completion, 'string');
  });

  it('ranks the rows of a 25 KB batch task whose cursor ends a line in a long function (issue 15: it hung)', () => {
    const tasks = path.join(dir, 'long.jsonl');
    const out = path.join(dir, 'long-results.jsonl');
    const body = Array.from({ length: 1500 }, (_, i) => `    y${i} = x + ${i}\n`).join('');
    fs.writeFileSync(tasks, JSON.stringify({ id: 'long', prefix: 'def f(x):\n    y = x', suffix: '\n' + body, language: 'python' }));
    const run = cli(['--batch', tasks, '--out', out, '--steps', '2', '--candidates', '2', ...common]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(fs.readFileSync(out, 'utf8')).id, 'long');
  });

  const badInput: [string, string[], RegExp][] = [
    ['a missing file', ['/nonexistent.py', '--line', '1', '--col', '1'], /file not found: \/nonexistent.py/],
    ['no cursor', [file], /give the cursor with --line and --col/],
    ['a line past the end', [file, '--line', '99', '--col', '1'], /--line 99 is past the end of the file \(it has 6 lines\)/],
    ['a column past the end of the line', [file, '--line', '1', '--col', '80'], /--col 80 is past the end of line 1 \(it has 14 characters\)/],
    ['a bad strategy', [file, '--line', '1', '--col', '1', '--strategy', 'sideways'], /strategy must be one of/],
    ['a negative latency budget', [file, '--line', '1', '--col', '1', '--latency-budget=-5'], /latencyBudgetMs must be a number from 0/],
    ['an unknown flag', [file, '--lines', '1'], /Unknown option '--lines'/],
    // Issue 15: a folder exited 1 with a raw EISDIR, and an --out that cannot be written printed a stack trace.
    ['a folder given as the file', [dir, '--line', '1', '--col', '1'], new RegExp(`^unmask: file ${dir} is a folder, not a file\n$`)],
    ['a folder given as the batch file', ['--batch', dir], new RegExp(`^unmask: batch file ${dir} is a folder, not a file\n$`)],
    ['an --out in a missing folder', ['--batch', file, '--out', '/nonexistent/dir/out.jsonl'], /^unmask: cannot write --out \/nonexistent\/dir\/out.jsonl: its folder does not exist\n$/],
    ['an --out that is a folder', ['--batch', file, '--out', dir], new RegExp(`^unmask: cannot write --out ${dir}: it is a folder\n$`)],
  ];
  for (const [what, args, message] of badInput) {
    it(`explains ${what} and exits with code 2`, () => {
      const run = cli([...args, '--model', model.dir]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, message);
    });
  }

  it('runs a cached-context model (a context graph once, a step graph per step)', () => {
    const cached = writeTinyModel(tempDir('cli-cached'), { cached: true });
    const run = cli([file, '--line', '4', '--col', '9', '--steps', '4', '--candidates', '2', '--model', cached.dir, '--device', 'cpu', '--threads', '1']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^model tiny-fixture \(context\.onnx \+ step\.onnx\) on cpu/);
    assert.match(run.stdout, /python at 4:9: \d+-token span, [1-4] model calls/);
  });

  const smoke = smokeModel();
  it('runs the recipe smoke model (int8)', { skip: smoke ? false : 'models/recipe/run_cpu.sh has not run' }, () => {
    const run = cli([file, '--line', '4', '--col', '9', '--json', '--steps', '4', '--model', smoke!.dir, '--device', 'cpu', '--threads', '1']);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.model, 'unmask-smoke');
    assert.equal(typeof result.completion, 'string');
    assert.ok(result.model_calls >= 1 && result.model_calls <= 4);
  });

  it('names a missing model and exits with code 1', () => {
    const run = cli([file, '--line', '1', '--col', '1', '--model', '/nonexistent/model']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Model folder not found: \/nonexistent\/model/);
  });
});
