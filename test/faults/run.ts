/**
 * `npm run test:faults`: drives the real language server, the command line and the runtime with generated inputs
 * (lsp-faults.ts, cli-faults.ts, runtime-faults.ts) on the tiny fixture model, loopback only, and prints what
 * happened to them. Fails unless every input was answered or refused with a clear message: no crash, no hang, no
 * unclear error, and at least 10,000 inputs at full scale.
 *
 *   npm run test:faults                     full run (a few minutes on 2 CPU cores)
 *   npm run test:faults -- --scale 0.1      a tenth of the inputs, for development
 *   npm run test:faults -- --seed 7         other inputs (each run prints its seed, so a failure replays)
 */
import { parseArgs } from 'node:util';
import { fixtureModel } from '../fixtures/models';
import { ensureBuilt } from '../integration/lsp-client';
import { cliFaults } from './cli-faults';
import { lspFaults } from './lsp-faults';
import { runtimeFaults } from './runtime-faults';
import { Tally } from './tally';

const TARGET_INPUTS = 10_000;

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { scale: { type: 'string', default: '1' }, seed: { type: 'string', default: '15' } } });
  const scale = Number(values.scale);
  const seed = Number(values.seed);
  if (!(scale > 0 && scale <= 10) || !Number.isInteger(seed)) throw new Error('--scale must be in (0, 10] and --seed a whole number');
  ensureBuilt();
  const model = fixtureModel();
  const tally = new Tally();
  const started = performance.now();
  const phases: [string, () => Promise<void>][] = [
    ['language server', () => lspFaults(tally, model.dir, seed, scale)],
    ['command line', () => cliFaults(tally, model.dir, seed, scale)],
    ['runtime', () => runtimeFaults(tally, seed, scale)],
  ];
  for (const [name, phase] of phases) {
    const phaseStarted = performance.now();
    await phase();
    process.stderr.write(`faults: ${name} done in ${((performance.now() - phaseStarted) / 1000).toFixed(0)} s\n`);
  }
  const total = tally.total();
  process.stdout.write(`\nFault suite, seed ${seed}, scale ${scale}: ${((performance.now() - started) / 1000).toFixed(0)} s\n\n${tally.table()}\n`);
  if (tally.examples.length) process.stdout.write(`\nFirst bad outcomes:\n${tally.examples.map((e) => `  ${e}`).join('\n')}\n`);
  const target = Math.round(TARGET_INPUTS * Math.min(scale, 1));
  const failures = [
    total.crashes > 0 && `${total.crashes} crashes`,
    total.hangs > 0 && `${total.hangs} hangs`,
    total.unclear > 0 && `${total.unclear} unclear errors`,
    total.inputs < target && `${total.inputs} inputs, fewer than ${target}`,
  ].filter(Boolean);
  process.stdout.write(failures.length ? `\nFAILED: ${failures.join(', ')}\n` : '\nOK: every input answered or clearly refused\n');
  return failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`faults: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
