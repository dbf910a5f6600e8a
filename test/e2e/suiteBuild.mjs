/**
 * Shared by the two hosts of the extension-host suite (scripts/e2e.mjs in code-server, runElectron.mjs in desktop
 * VS Code): bundles test/e2e/suite/*.ts into out/e2e-suite/ and writes the workspace the suite expects.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';

/** Bundles the suite; returns the path of its entry module (the extensionTestsPath). */
export async function buildSuite(root) {
  const outdir = path.join(root, 'out/e2e-suite');
  fs.rmSync(outdir, { recursive: true, force: true });
  const sources = path.join(root, 'test/e2e/suite');
  const entryPoints = fs.readdirSync(sources).filter((f) => f.endsWith('.ts')).map((f) => path.join(sources, f));
  await esbuild.build({
    entryPoints,
    outdir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: 'inline',
    external: ['vscode', 'mocha'],
    logLevel: 'warning',
  });
  return path.join(outdir, 'index.js');
}

/** The Python file the suites work on. */
export const PYTHON_FILE = [
  'def fibonacci(n):',
  '    """Return the n-th Fibonacci number."""',
  '    if n < 2:',
  '        return n',
  '    ',
  '',
  '',
  'def mean(values):',
  '    total = 0',
  '    for value in values:',
  '        total += value',
  '    return total / len(values)',
  '',
  '',
  'print(fibonacci(10), mean([1, 2, 3]))',
  '',
].join('\n');

export function writeWorkspace(folder) {
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, 'main.py'), PYTHON_FILE);
}
