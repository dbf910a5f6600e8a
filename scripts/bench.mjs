// `npm run bench`: bundles scripts/bench/harness.ts next to the server (dist/bench.js, so that it finds
// dist/worker.js like the server does) and runs it. Flags pass through: --model DIR, --runs N, --threads N,
// --quick, --json FILE, --soak [--soak-minutes N]. See scripts/bench/harness.ts for what is measured.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await esbuild.build({
  entryPoints: [path.join(root, 'scripts', 'bench', 'harness.ts')],
  outfile: path.join(root, 'dist', 'bench.js'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['onnxruntime-node'],
  logLevel: 'warning',
});
const run = spawnSync(process.execPath, [path.join(root, 'dist', 'bench.js'), ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(run.status ?? 1);
