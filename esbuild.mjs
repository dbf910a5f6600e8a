// Bundles the extension client and the language server (plus its inference worker and the CLI) into dist/.
// onnxruntime-node stays external: it is a native addon whose binaries ship in node_modules (and in the VSIX).
import * as fs from 'node:fs';
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/** @type {import('esbuild').BuildOptions} */
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  external: ['vscode', 'onnxruntime-node'],
  // web-tree-sitter's ES module build finds itself through import.meta.url, which a CommonJS bundle does not have;
  // its CommonJS build uses __dirname (and the locateFile the syntax check passes).
  alias: { 'web-tree-sitter': './node_modules/web-tree-sitter/tree-sitter.cjs' },
  logLevel: 'warning',
};

const builds = [
  // jsonc-parser's "main" is a UMD build whose factory requires its parts by relative path, which a bundle cannot
  // resolve at run time (the client then fails to start); its ES module build bundles cleanly.
  { entryPoints: { client: 'client/extension.ts' }, mainFields: ['module', 'main'] },
  { entryPoints: { server: 'server/main.ts', worker: 'server/runtime/worker.ts', cli: 'server/cli.ts' } },
];

// The syntax check of candidates (server/runtime/syntax.ts) loads tree-sitter's runtime and one grammar per language
// as WebAssembly files at run time; they ship in dist/tree-sitter/ (the VSIX includes dist/). These must be the
// grammars that syntax.ts's GRAMMAR_FILES names (the integration tests check it).
const TREE_SITTER_FILES = [
  'node_modules/web-tree-sitter/tree-sitter.wasm',
  'node_modules/@vscode/tree-sitter-wasm/wasm/tree-sitter-python.wasm',
  'node_modules/@vscode/tree-sitter-wasm/wasm/tree-sitter-typescript.wasm',
  'node_modules/@vscode/tree-sitter-wasm/wasm/tree-sitter-tsx.wasm',
  'node_modules/@vscode/tree-sitter-wasm/wasm/tree-sitter-javascript.wasm',
];
fs.mkdirSync('dist/tree-sitter', { recursive: true });
for (const file of TREE_SITTER_FILES) fs.copyFileSync(file, `dist/tree-sitter/${file.split('/').pop()}`);

const contexts = await Promise.all(builds.map((b) => esbuild.context({ ...common, ...b, outdir: 'dist' })));
if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}
