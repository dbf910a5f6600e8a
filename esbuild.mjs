// Bundles the extension client and the language server (plus its inference worker and the CLI) into dist/.
// onnxruntime-node stays external: it is a native addon whose binaries ship in node_modules (and in the VSIX).
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
  logLevel: 'warning',
};

const builds = [
  { entryPoints: { client: 'client/extension.ts' } },
  { entryPoints: { server: 'server/main.ts', worker: 'server/runtime/worker.ts', cli: 'server/cli.ts' } },
];

const contexts = await Promise.all(builds.map((b) => esbuild.context({ ...common, ...b, outdir: 'dist' })));
if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}
