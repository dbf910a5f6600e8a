#!/usr/bin/env node
/**
 * Builds a per-platform VSIX: the production bundle plus onnxruntime-node with the native binaries of one platform
 * only (Continue ships per-platform VSIXs the same way). The other platforms' binaries would triple the size.
 *
 *   node scripts/package.mjs                      # this machine's platform, e.g. dist/unmask-linux-x64.vsix
 *   node scripts/package.mjs --target darwin-arm64
 *
 * It writes .vscodeignore's rules plus a line that re-includes this target's binaries to a temporary ignore file and runs
 * `vsce package --target <target> --ignoreFile <that file>`. Dependencies are resolved by vsce (npm), so the
 * .vscodeignore negations decide which files of node_modules ship.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** VS Code targets -> onnxruntime-node's bin/napi-v6/<platform>/<arch> folder. */
const TARGETS = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};

const argIndex = process.argv.indexOf('--target');
const target = argIndex > 0 ? process.argv[argIndex + 1] : `${process.platform}-${process.arch}`;
if (!TARGETS[target]) {
  console.error(`package: no onnxruntime-node binaries for "${target}"; choose one of ${Object.keys(TARGETS).join(', ')}`);
  process.exit(1);
}

const run = (command, args) => {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

run(process.execPath, ['esbuild.mjs', '--production']);

const binaries = `node_modules/onnxruntime-node/bin/napi-v6/${TARGETS[target]}`;
if (!fs.existsSync(path.join(ROOT, binaries))) {
  console.error(`package: ${binaries} is missing; reinstall onnxruntime-node`);
  process.exit(1);
}
const ignoreFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'unmask-package-')), '.vscodeignore');
fs.writeFileSync(
  ignoreFile,
  `${fs.readFileSync(path.join(ROOT, '.vscodeignore'), 'utf8')}\n# This target's onnxruntime binaries (scripts/package.mjs)\n!${binaries}/**\n`,
);

const out = path.join('dist', `unmask-${target}.vsix`);
const vsce = path.join(ROOT, 'node_modules/@vscode/vsce/vsce');

// The syntax check of candidates loads tree-sitter's WebAssembly files from dist/tree-sitter/ (esbuild.mjs copies
// them there); a VSIX without them would rank candidates without the check, so make sure they are packaged.
const wasm = fs.existsSync(path.join(ROOT, 'dist/tree-sitter'))
  ? fs.readdirSync(path.join(ROOT, 'dist/tree-sitter')).filter((f) => f.endsWith('.wasm')).map((f) => `dist/tree-sitter/${f}`)
  : [];
const listed = spawnSync(process.execPath, [vsce, 'ls', '--ignoreFile', ignoreFile], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
const packaged = new Set(listed.stdout.split('\n').map((line) => line.trim()));
const unpackaged = wasm.filter((file) => !packaged.has(file));
if (listed.status !== 0 || wasm.length === 0 || unpackaged.length > 0) {
  console.error(`package: the tree-sitter files would not ship (${wasm.length === 0 ? 'dist/tree-sitter/ is empty' : unpackaged.join(', ') || listed.stderr})`);
  fs.rmSync(path.dirname(ignoreFile), { recursive: true, force: true });
  process.exit(1);
}
// Files the packaged extension cannot run without that .vscodeignore's rules could drop unnoticed.
const required = ['node_modules/onnxruntime-common/dist/cjs/package.json', 'node_modules/onnxruntime-common/dist/cjs/index.js', 'dist/worker.js'];
const absent = required.filter((file) => !packaged.has(file));
if (absent.length > 0) {
  console.error(`package: ${absent.join(', ')} would not ship; fix .vscodeignore`);
  fs.rmSync(path.dirname(ignoreFile), { recursive: true, force: true });
  process.exit(1);
}
// No test fixture, test file or source map may ship: they are dead weight a marketplace reviewer would flag.
const fixtures = [...packaged].filter((file) => isTestFixture(file));
if (fixtures.length > 0) {
  console.error(`package: files only tests or debuggers read would ship (${fixtures.join(', ')}); exclude them in .vscodeignore`);
  fs.rmSync(path.dirname(ignoreFile), { recursive: true, force: true });
  process.exit(1);
}
run(process.execPath, [vsce, 'package', '--target', target, '--ignoreFile', ignoreFile, '-o', out]);
fs.rmSync(path.dirname(ignoreFile), { recursive: true, force: true });
const bytes = fs.statSync(path.join(ROOT, out)).size;
const models = [...packaged].filter((file) => file.startsWith('models/')).reduce((sum, file) => sum + fs.statSync(path.join(ROOT, file)).size, 0);
console.log(
  `package: ${out}: ${(bytes / 1e6).toFixed(1)} MB (${bytes} bytes, ${[...packaged].filter(Boolean).length} files; ` +
    `uncompressed model ${(models / 1e6).toFixed(1)} MB), no test fixtures`,
);

/** A file that only tests read: parity fixtures, test/ and source maps. */
function isTestFixture(file) {
  return /(^|\/)(disc_)?parity\.json$/.test(file) || file.startsWith('test/') || file.endsWith('.map');
}
