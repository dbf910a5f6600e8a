import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { CHECK_WINDOW_CHARS, GRAMMAR_FILES, RUNTIME_FILE, SyntaxChecker, checkedWindow } from '../../server/runtime/syntax';

/** The .wasm files where npm installs them (the server reads the copies esbuild.mjs puts in dist/tree-sitter/). */
const MODULES = path.resolve(__dirname, '../../node_modules');
const locate = (file: string): string =>
  file === RUNTIME_FILE ? path.join(MODULES, 'web-tree-sitter', file) : path.join(MODULES, '@vscode/tree-sitter-wasm/wasm', file);

describe('the syntax checker', () => {
  const logs: string[] = [];
  const checker = new SyntaxChecker(locate, (line) => logs.push(line));
  after(() => checker.dispose());

  it('finds every grammar it names', () => {
    for (const file of new Set([RUNTIME_FILE, ...Object.values(GRAMMAR_FILES)])) assert.ok(fs.existsSync(locate(file)), file);
  });

  // [language, text before, text after, a candidate that parses, one that does not]
  const cases: [string, string, string, string, string][] = [
    ['python', 'def f(x):\n    ', '\n', 'return x + 1', 'return (x + 1'],
    ['python', 'class A:\n    def m(self):\n        ', '\n\nprint(A())\n', 'pass', 'return [self,'],
    ['typescript', 'function f(x: number): number {\n  ', '\n}\n', 'return x * 2;', 'return x * ;'],
    ['typescriptreact', 'const C = () => ', ';\n', '<div className="a">hi</div>', '<div className="a">hi</div'],
    ['javascript', 'const xs = [1, 2, 3];\n', '\n', 'xs.map((x) => x * 2);', 'xs.map((x) => x * 2;'],
    ['javascriptreact', 'const el = ', ';\n', '<b>{1 + 1}</b>', '<b>{1 + }</b>'],
  ];
  for (const [languageId, before, afterText, valid, invalid] of cases) {
    it(`tells valid from invalid ${languageId}: ${JSON.stringify(valid)} vs ${JSON.stringify(invalid)}`, async () => {
      const errors = await checker.errorsWithInsertions(languageId, before, afterText, [valid, invalid]);
      assert.ok(errors, 'a parser exists');
      assert.equal(errors[0], 0, `${before}${valid}${afterText} parses`);
      assert.ok(errors[1] > 0, `${before}${invalid}${afterText} has errors`);
    });
  }

  it('counts the errors of the file, so errors elsewhere count for every candidate alike', async () => {
    const errors = await checker.errorsWithInsertions('python', 'def broken(:\n    pass\n\nx = ', '\n', ['1', '(1']);
    assert.ok(errors);
    assert.ok(errors[0] >= 1, 'the broken def counts');
    assert.ok(errors[1] > errors[0], 'the broken candidate counts on top');
  });

  it('gives the same answer for a repeated request (the parsed file is reused) and for many candidates', async () => {
    const before = 'def f(items):\n    total = 0\n    for item in items:\n        ';
    const afterText = '\n    return total\n';
    const texts = ['total += item', 'total += (item', 'total -= item', 'total +=', 'total = total + item * 2'];
    const first = await checker.errorsWithInsertions('python', before, afterText, texts);
    const second = await checker.errorsWithInsertions('python', before, afterText, texts);
    assert.deepEqual(first, second);
    assert.deepEqual(first!.map((n) => n === 0), [true, false, true, false, true]);
    // The incremental reparse per candidate agrees with parsing each filled file from scratch.
    for (const [i, text] of texts.entries()) {
      assert.deepEqual(await checker.errorsWithInsertions('python', before + text + afterText, '', ['']), [first![i]], text);
    }
  });

  /** A Python file of `n` top-level functions, each 3 lines, about 60 characters. */
  const functions = (n: number, name: string): string =>
    Array.from({ length: n }, (_, i) => `def ${name}${i}(x):\n    y = x + ${i}\n    return y\n`).join('');

  it('checks a long file in a window that starts and ends at top-level lines near the insertion', () => {
    const before = functions(1000, 'a') + 'def target(x):\n    ';
    const afterText = '\n    return x\n' + functions(1000, 'b');
    const window = checkedWindow(before, afterText);
    assert.ok(window.before.length <= CHECK_WINDOW_CHARS && window.before.length > CHECK_WINDOW_CHARS - 100);
    assert.ok(window.after.length <= CHECK_WINDOW_CHARS && window.after.length > CHECK_WINDOW_CHARS - 100);
    assert.ok(before.endsWith(window.before) && afterText.startsWith(window.after));
    assert.match(window.before, /^def a\d+\(x\):\n/, 'starts at a def');
    assert.match(window.after, /\n$/);
    assert.match(afterText.slice(window.after.length), /^def b\d+\(x\):\n/, 'ends before a def');
    assert.deepEqual(checkedWindow('x = 1\n', '\ny = 2\n'), { before: 'x = 1\n', after: '\ny = 2\n' }, 'a short file whole');
  });

  it('ends the window search when the text after the cursor starts with a newline and has no top-level line (issue 15)', () => {
    // The cursor at the end of a line inside a long function body: more than the window after it, all indented. The
    // search once stayed at the line start at 1 forever (100% CPU, every later request timed out), so it runs in a
    // child process with a deadline: a hang fails the test instead of stalling the suite.
    const body = Array.from({ length: 1200 }, (_, i) => `    y${i} = x + ${i}\n`).join('');
    const script = `
      const { checkedWindow } = require(${JSON.stringify(path.resolve(__dirname, '../../server/runtime/syntax.ts'))});
      const w = checkedWindow('def f(x):\\n    y = 1', '\\n' + ${JSON.stringify(body)});
      process.stdout.write(JSON.stringify([w.before.length, w.after.length]));`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(child.signal, null, 'checkedWindow returned before the deadline');
    assert.equal(child.status, 0, child.stderr);
    const [beforeLength, afterLength] = JSON.parse(child.stdout) as [number, number];
    assert.equal(beforeLength, 'def f(x):\n    y = 1'.length, 'a short prefix whole');
    assert.ok(afterLength > CHECK_WINDOW_CHARS - 100 && afterLength <= CHECK_WINDOW_CHARS, 'no top-level line: cut at a plain line start');
    // A top-level line right at the start (index 1) is found, and one only in the middle of the window is too.
    assert.equal(checkedWindow('', '\nz = 1\n' + body).after, '\n');
    const head = body.slice(0, body.indexOf('\n', 4000) + 1);
    assert.equal(checkedWindow('', '\n' + head + 'z = 1\n' + body).after, '\n' + head);
  });

  it('in a long file, counts the errors near the insertion and not those beyond the window', async () => {
    const far = 'def broken(:\n    pass\n';
    const before = far + functions(1000, 'a') + 'def target(x):\n    ';
    const afterText = '\n    return x\n' + functions(1000, 'b') + far;
    const errors = await checker.errorsWithInsertions('python', before, afterText, ['x = 1', 'x = (1']);
    assert.equal(errors![0], 0, 'the broken defs at both ends are outside the window');
    assert.ok(errors![1] > 0);
  });

  it('counts the errors of a file with every hole filled, for each fill', async () => {
    const segments = ['def f(x):\n    y = ', '\n    return ', '\n'];
    const errors = await checker.errorsWithFills('python', segments, [['x + 1', 'y'], ['x +', 'y'], ['x', '(y']]);
    assert.equal(errors![0], 0);
    assert.ok(errors![1] > 0 && errors![2] > 0, 'a broken text in either hole counts');
    await assert.rejects(checker.errorsWithFills('python', segments, [['x']]), /1 texts for 2 holes/);
    assert.equal(await checker.errorsWithFills('plaintext', segments, [['a', 'b']]), undefined);
  });

  it('handles multi-line insertions and text that is not ASCII', async () => {
    const errors = await checker.errorsWithInsertions('typescript', 'const s = "é";\nfunction f() {\n', '\n}\n', [
      '  const ü = "ñ";\n  return ü;',
      '  const ü = "ñ;\n  return ü;',
    ]);
    assert.equal(errors![0], 0);
    assert.ok(errors![1] > 0);
  });

  it('has no opinion on languages without a grammar', async () => {
    assert.equal(checker.supports('rust'), false);
    assert.equal(await checker.errorsWithInsertions('rust', 'fn main() {', '}', ['let x = 1;']), undefined);
  });

  it('logs a grammar that fails to load once and treats its languages as unchecked', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unmask-syntax-'));
    const broken: string[] = [];
    const missing = new SyntaxChecker((file) => (file === RUNTIME_FILE ? locate(file) : path.join(dir, file)), (line) => broken.push(line));
    try {
      assert.equal(await missing.errorsWithInsertions('python', 'x = ', '\n', ['1']), undefined);
      assert.equal(await missing.errorsWithInsertions('python', 'y = ', '\n', ['2']), undefined);
      assert.equal(broken.filter((l) => l.includes('could not load tree-sitter-python.wasm')).length, 1, broken.join('\n'));
    } finally {
      missing.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
