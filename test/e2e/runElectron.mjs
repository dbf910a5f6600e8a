#!/usr/bin/env node
/**
 * Runs the extension-host suite (test/e2e/suite/) in a desktop VS Code downloaded by @vscode/test-electron.
 * Needs internet access (the download) and a display (use xvfb-run on a headless Linux box):
 *
 *   npm run test:electron
 *
 * Machines without internet run the same suite inside code-server instead: `node scripts/e2e.mjs` does that as its
 * last test.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTests } from '@vscode/test-electron';
import { buildSuite, writeWorkspace } from './suiteBuild.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const suite = await buildSuite(ROOT);
const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'unmask-electron-'));
writeWorkspace(workspace);
try {
  await runTests({
    extensionDevelopmentPath: ROOT,
    extensionTestsPath: suite,
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', '--skip-welcome', '--skip-release-notes'],
  });
  console.log('# extension-host suite: passed');
} catch (error) {
  console.error(`# extension-host suite: failed (${error.message ?? error})`);
  process.exitCode = 1;
} finally {
  fs.rmSync(workspace, { recursive: true, force: true });
}
