/**
 * Test-only hooks for the fault suite (`npm run test:faults`, test/faults/lsp-worker-faults.ts), which must make the
 * real server's inference worker hang or crash on demand to check what the server does about it over LSP. They are
 * environment variables read once when the server process starts, never settings: nothing in the editor's
 * configuration reaches them, and the extension never sets them. Unset, the server runs as shipped.
 *
 *   UNMASK_FAULT_WORKER       the inference worker script to run instead of dist/worker.js
 *                             (test/fixtures/hanging-worker.ts or crashing-worker.ts)
 *   UNMASK_FAULT_DEADLINE_MS  how long a model call or generation may take before its worker is abandoned, so that a
 *                             hang costs the suite under a second instead of the shipped 30 s
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LoadOptions } from './runtime/model';

export type FaultHooks = Pick<LoadOptions, 'workerPath' | 'deadlineMs'>;

/** The hooks `env` sets; throws naming the variable when one is set to something unusable (only tests set them). */
export function faultHooks(env: NodeJS.ProcessEnv): FaultHooks {
  const hooks: { workerPath?: string; deadlineMs?: number } = {};
  const worker = env.UNMASK_FAULT_WORKER;
  if (worker) {
    if (!path.isAbsolute(worker) || !fs.existsSync(worker)) throw new Error(`UNMASK_FAULT_WORKER must be the absolute path of a worker script (got ${worker})`);
    hooks.workerPath = worker;
  }
  const deadline = env.UNMASK_FAULT_DEADLINE_MS;
  if (deadline) {
    const ms = Number(deadline);
    if (!Number.isInteger(ms) || ms < 1 || ms > 600_000) throw new Error(`UNMASK_FAULT_DEADLINE_MS must be a whole number of milliseconds from 1 to 600000 (got ${deadline})`);
    hooks.deadlineMs = ms;
  }
  return hooks;
}
