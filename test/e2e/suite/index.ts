/**
 * Entry point of the extension-host test suite (the `extensionTestsPath` module): VS Code loads it inside the
 * extension host and calls run(). It runs the Mocha suites bundled next to it and resolves or rejects with the
 * outcome, which is how @vscode/test-electron (npm run test:electron) learns it. When UNMASK_EXT_TEST_RESULTS names
 * a file, it also writes the results there, because a browser-hosted VS Code (code-server, scripts/e2e.mjs) has no
 * process exit code to report.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

interface Outcome {
  passed: string[];
  failed: { title: string; error: string }[];
  done: boolean;
}

export function run(): Promise<void> {
  const resultsFile = process.env.UNMASK_EXT_TEST_RESULTS;
  const outcome: Outcome = { passed: [], failed: [], done: false };
  const save = () => {
    if (resultsFile) fs.writeFileSync(resultsFile, JSON.stringify(outcome, null, 2));
  };
  const mocha = new Mocha({ ui: 'bdd', timeout: 120_000, color: false, reporter: 'spec' });
  for (const file of fs.readdirSync(__dirname).filter((f) => f.endsWith('.test.js')).sort()) {
    mocha.addFile(path.join(__dirname, file));
  }
  return new Promise((resolve, reject) => {
    try {
      const runner = mocha.run((failures) => {
        outcome.done = true;
        save();
        if (failures > 0) reject(new Error(`${failures} extension-host test(s) failed`));
        else resolve();
      });
      runner.on('pass', (test) => {
        outcome.passed.push(test.fullTitle());
        save();
      });
      runner.on('fail', (test, error: Error) => {
        outcome.failed.push({ title: test.fullTitle(), error: String(error?.stack ?? error) });
        save();
      });
    } catch (error) {
      outcome.failed.push({ title: 'loading the suite', error: String(error) });
      outcome.done = true;
      save();
      reject(error);
    }
  });
}
