#!/usr/bin/env node
/**
 * End-to-end test of the Unmask extension in a real VS Code: code-server 4.100.3 (VS Code 1.100.3 with a Node
 * extension host) driven by Debian's Chromium through playwright-core. See ../shared/notes/vscode-e2e.md.
 *
 *   node esbuild.mjs && node scripts/e2e.mjs          # npm run test:e2e
 *   node scripts/e2e.mjs --keep                       # keep the temporary profile and workspace for debugging
 *   node scripts/e2e.mjs --headed                     # show the browser (needs a display)
 *   node scripts/e2e.mjs --trace                      # VS Code logs at trace level (with --keep: read them after)
 *   node scripts/e2e.mjs --vsix dist/unmask-linux-x64.vsix   # install the packaged VSIX instead of this folder
 *   node scripts/e2e.mjs --only 'holes|unmasking'    # run only the tests whose names match (case-insensitive)
 *   node scripts/e2e.mjs --capture                    # also save the frames of the README's animated capture
 *                                                     # (test-output/e2e/frames/; scripts/demo-gif.sh makes the GIF)
 *
 * It installs the built extension (this folder, unpacked) into a fresh extensions dir, starts code-server on a free
 * loopback port with a fresh profile and a workspace holding one Python file, then:
 *   1. types in the Python file, waits for ghost text from the real model, accepts it with Tab, saves, and checks that
 *      the file on disk changed by exactly the text that was shown;
 *   1b. switches to manual trigger mode (the status bar says so), types without getting ghost text, asks with Ctrl+Alt+\,
 *      accepts one line of it with Alt+End, and switches back;
 *   1c. sets unmask.minConfidence to 1: typing brings no ghost text (gated), Ctrl+Alt+\ still shows one;
 *   2. runs "Unmask: Fill Selection", rejects the preview (the file must not change), runs it again and accepts
 *      (the file must change inside the selection only);
 *   3. runs "Unmask: Fill All Holes" on a file with three {{hole}} markers and accepts: the markers are gone, the rest
 *      of the file is intact, and one undo brings the markers back;
 *   4. opens "Unmask: Show Unmasking Order" (timing open-to-first-render), fills holes while it is open, checks the
 *      tokens, steps and AR-ness it shows, plays, scrubs with the keyboard, and hides and restores the panel;
 *   5. runs "Unmask: Regenerate with N Candidates" in a TypeScript file, checks the ranked entries of the candidates
 *      panel, closes it and cycles the same list as ghost text (Ctrl+Alt+\, Alt+]), inserts one with its number key (the
 *      file changes only then, by that text, as one undoable edit), and checks that a candidate chosen after the
 *      document changed is refused;
 *   6. runs the extension-host suite (test/e2e/suite);
 *   7. opens, in a second code-server with workspace trust on, a folder that sets its own unmask.modelPath, answers
 *      "No" to the trust prompt, and checks the notice that the path is ignored and that ghost text still comes.
 * Screenshots go to test-output/e2e/. Every wait is bounded; code-server and Chromium are killed on every exit path.
 * Prints one line per test and a "N passed, N failed" summary; exits 1 on any failure.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { buildSuite, PYTHON_FILE, writeWorkspace } from '../test/e2e/suiteBuild.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CODE_SERVER_VERSION = '4.100.3';
const CODE_SERVER = path.join(ROOT, '.e2e/code-server/node_modules/code-server/out/node/entry.js');
const INSTALLED_STAMP = path.join(ROOT, `.e2e/code-server/.installed-${CODE_SERVER_VERSION}`);
const OUTPUT = path.join(ROOT, 'test-output/e2e');
const CHROMIUM = process.env.UNMASK_E2E_CHROMIUM ?? '/usr/bin/chromium';
const KEEP = process.argv.includes('--keep');
const HEADED = process.argv.includes('--headed');
const TRACE = process.argv.includes('--trace');
const VSIX = process.argv.includes('--vsix') ? path.resolve(process.argv[process.argv.indexOf('--vsix') + 1] ?? '') : undefined;
const CAPTURE = process.argv.includes('--capture');
const ONLY = process.argv.includes('--only') ? new RegExp(process.argv[process.argv.indexOf('--only') + 1] ?? '', 'i') : undefined;
/** The whole run is killed after this long, whatever it is doing. */
const TOTAL_TIMEOUT_MS = Number(process.env.UNMASK_E2E_TIMEOUT_MS ?? 12 * 60_000);
/** Model load plus the first generation on a busy 2-core CPU. */
const MODEL_READY_TIMEOUT_MS = 180_000;
const GHOST_TEXT_TIMEOUT_MS = 90_000;

const started = Date.now();
const log = (message) => console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}`);

// ---------------------------------------------------------------------------------------------------------------
// Cleanup: every child is tracked and killed on every way out (normal end, failure, signal, global timeout).
const cleanups = [];
let cleaningUp;
function cleanup() {
  cleaningUp ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await Promise.race([fn(), new Promise((resolve) => setTimeout(resolve, 10_000))]);
      } catch (error) {
        log(`cleanup step failed: ${error.message}`);
      }
    }
  })();
  return cleaningUp;
}
async function exitWith(code) {
  await cleanup();
  process.exit(code);
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => void exitWith(130));
const killTimer = setTimeout(() => {
  log(`the run took longer than ${TOTAL_TIMEOUT_MS / 1000}s; stopping`);
  void exitWith(1);
}, TOTAL_TIMEOUT_MS);
killTimer.unref();

/** Kills a detached child and its whole process group (code-server forks the extension host and the server). */
function killGroup(child, name) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const done = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      resolve();
    }, 5000);
    child.once('exit', () => {
      clearTimeout(done);
      resolve();
    });
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      clearTimeout(done);
      resolve();
    }
    log(`stopping ${name} (pid ${child.pid})`);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers.
async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Thrown by a waitFor check to stop waiting at once (the awaited thing can no longer happen). */
class Fatal extends Error {}

async function waitFor(what, timeoutMs, check, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      if (error instanceof Fatal) throw error;
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${lastError ? ` (${lastError.message})` : ''}`);
}

function writeJson(file, value) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2));
}

/**
 * Three holes for Fill All Holes: with a hint, on a line of their own, and in a comment. (Explorer rows are found by
 * their text, so no file name may contain another's, such as "holes.py".)
 */
const FILL_HOLES_FILE = 'shapes.py';
const FILL_HOLES_TEXT = [
  'def area(width, height):',
  '    return {{hole:8}}',
  '',
  '',
  'def perimeter(width, height):',
  '    {{hole:16}}',
  '',
  '',
  '# {{hole}}',
  'print(area(2, 3), perimeter(2, 3))',
  '',
].join('\n');
/** Holes of 16 + 16 + 32 tokens: the unmasking-order test replays a 64-token generation. */
const ORDER_FILE = 'unmasking_order.py';
const ORDER_TEXT = [
  'import math',
  '',
  '',
  'def circle_area(radius):',
  '    return {{hole:16}}',
  '',
  '',
  'def circle_perimeter(radius):',
  '    return {{hole:16}}',
  '',
  '',
  '{{hole:32}}',
  '',
].join('\n');
/** Issue 5's target for opening the unmasking-order view (printed, not enforced: this box is shared and slow). */
const VISUALIZER_OPEN_TARGET_MS = 300;

/** "Regenerate with N Candidates" runs in the body of this function, after "return " (line 2, column 10). */
const CANDIDATES_FILE = 'candidates.ts';
const CANDIDATES_TEXT = ['export function total(prices: number[]): number {', '  return ', '}', ''].join('\n');
const CANDIDATES_AT = { line: 2, column: 10 };
/** The candidates panel's tab ("Unmask: 3 Candidates"); plain "Candidate" would also match candidates.ts. */
const CANDIDATES_TAB = /Unmask: \d+ Candidate/;

/** Manual trigger mode and accept-next-line: typed into line 2 (indented, empty) of this file. */
const MANUAL_FILE = 'manual.py';
const MANUAL_TEXT = ['def scale(values, factor):', '    ', '', '', 'print(scale([1, 2, 3], 2))', ''].join('\n');
const MANUAL_TYPED = 'scaled = factor';
/** How long typing in manual mode must stay without ghost text (automatic suggestions appear well within it). */
const MANUAL_QUIET_MS = 4000;

/** Gating: typed into line 2 (indented, empty) of this file with unmask.minConfidence at 1 (no row is that sure). */
const GATE_FILE = 'gate.py';
const GATE_TEXT = ['def total(values):', '    ', '', '', 'print(total([1, 2, 3]))', ''].join('\n');
const GATE_TYPED = 'result = sum';

/** What the untrusted workspace's .vscode/settings.json sets unmask.modelPath to (a folder in the workspace). */
const UNTRUSTED_MODEL_PATH = './my-model';

/** The Python file the tests type into (shared with the extension-host suite). Line 5 is an indented empty line. */
const TYPE_AT_LINE = 5;
const TYPED = 'return fib';

// ---------------------------------------------------------------------------------------------------------------
// Preconditions.
function preconditions() {
  for (const file of ['dist/client.js', 'dist/server.js']) {
    if (!fs.existsSync(path.join(ROOT, file))) throw new Error(`${file} is missing: run "node esbuild.mjs" first`);
  }
  const models = fs.existsSync(path.join(ROOT, 'models'))
    ? fs.readdirSync(path.join(ROOT, 'models')).filter((d) => fs.existsSync(path.join(ROOT, 'models', d, 'manifest.json')))
    : [];
  if (models.length === 0) throw new Error('no model under models/<id>/manifest.json: the extension has nothing to run');
  log(`models: ${models.join(', ')}`);
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  if (!fs.existsSync(INSTALLED_STAMP)) {
    log('code-server is not installed yet: running scripts/e2e-setup.sh');
    const setup = spawnSync('bash', [path.join(ROOT, 'scripts/e2e-setup.sh')], { stdio: 'inherit', timeout: 20 * 60_000 });
    if (setup.status !== 0) throw new Error('scripts/e2e-setup.sh failed');
  }
}

/** The test profile's user settings: quiet workbench, no word-based suggestions competing with Tab. */
function userSettings({ trust }) {
  return {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'security.workspace.trust.enabled': trust,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'update.mode': 'none',
    // The word-based suggest widget would compete with Tab; the middleware's handling of it has unit tests.
    'editor.quickSuggestions': { other: false, comments: false, strings: false },
    'editor.suggestOnTriggerCharacters': false,
    'editor.wordBasedSuggestions': 'off',
    'editor.inlineSuggest.enabled': true,
    'files.autoSave': 'off',
    'unmask.debounceMs': 150,
    // The gate on suggestions made as you type is off: these tests type and wait for ghost text from the real model,
    // whose suggestions the default threshold often withholds. Test 1c turns it to 1 in the workspace's settings.
    'unmask.minConfidence': 0,
  };
}

/** A fresh profile, extensions dir (with this extension, unpacked) and workspace. */
function prepareDirs() {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'unmask-e2e-'));
  const dirs = {
    base,
    userData: path.join(base, 'user-data'),
    extensions: path.join(base, 'extensions'),
    workspace: path.join(base, 'workspace'),
    suiteWorkspace: path.join(base, 'suite-workspace'),
    suiteResults: path.join(base, 'suite-results.json'),
    untrustedUserData: path.join(base, 'untrusted-user-data'),
    untrustedWorkspace: path.join(base, 'untrusted-workspace'),
  };
  if (!KEEP) cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  else log(`keeping ${base}`);
  for (const dir of [dirs.userData, dirs.extensions]) fs.mkdirSync(dir, { recursive: true });
  if (VSIX) {
    // The packaged extension, installed the way a user installs it.
    const install = spawnSync(
      process.execPath,
      [CODE_SERVER, '--extensions-dir', dirs.extensions, '--user-data-dir', dirs.userData, '--install-extension', VSIX],
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (install.status !== 0) throw new Error(`installing ${VSIX} failed:\n${install.stdout}\n${install.stderr}`);
    log(`installed ${path.relative(ROOT, VSIX)}`);
  } else {
    // This folder, unpacked, as the installed extension (it must be built: dist/).
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const extensionFolder = path.join(dirs.extensions, `${manifest.publisher}.${manifest.name}-${manifest.version}`);
    fs.symlinkSync(ROOT, extensionFolder, 'dir');
  }
  writeJson(path.join(dirs.userData, 'User/settings.json'), userSettings({ trust: false }));
  writeWorkspace(dirs.workspace);
  fs.writeFileSync(path.join(dirs.workspace, 'holes.py'), 'total = {{hole:8}}  # then {{hole}} here\n');
  fs.writeFileSync(path.join(dirs.workspace, FILL_HOLES_FILE), FILL_HOLES_TEXT);
  fs.writeFileSync(path.join(dirs.workspace, ORDER_FILE), ORDER_TEXT);
  fs.writeFileSync(path.join(dirs.workspace, CANDIDATES_FILE), CANDIDATES_TEXT);
  fs.writeFileSync(path.join(dirs.workspace, MANUAL_FILE), MANUAL_TEXT);
  fs.writeFileSync(path.join(dirs.workspace, GATE_FILE), GATE_TEXT);
  writeWorkspace(dirs.suiteWorkspace);
  // A folder that asks for a model of its own: Restricted Mode must ignore it (issue 14) and say so.
  writeJson(path.join(dirs.untrustedUserData, 'User/settings.json'), userSettings({ trust: true }));
  writeWorkspace(dirs.untrustedWorkspace);
  writeJson(path.join(dirs.untrustedWorkspace, '.vscode/settings.json'), { 'unmask.modelPath': UNTRUSTED_MODEL_PATH });
  return dirs;
}

/**
 * Starts code-server on a free loopback port. Workspace trust is off (every folder trusted) unless `trust` is set:
 * the untrusted-workspace test runs its own instance with trust on and a profile of its own.
 */
async function startCodeServer(dirs, { trust = false, userData = dirs.userData, workspace = dirs.workspace, logName = 'code-server.log' } = {}) {
  const port = await freePort();
  const args = [
    CODE_SERVER,
    '--auth', 'none',
    '--bind-addr', `127.0.0.1:${port}`,
    '--disable-telemetry',
    '--disable-update-check',
    ...(trust ? [] : ['--disable-workspace-trust']),
    '--disable-getting-started-override',
    '--user-data-dir', userData,
    '--extensions-dir', dirs.extensions,
    ...(TRACE ? ['--log', 'trace'] : []),
    workspace,
  ];
  const serverLog = fs.createWriteStream(path.join(OUTPUT, logName));
  // The extension host inherits this environment: the extension-host suite writes its results to this file.
  const env = { ...process.env, UNMASK_EXT_TEST_RESULTS: dirs.suiteResults };
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout.pipe(serverLog);
  child.stderr.pipe(serverLog);
  cleanups.push(() => killGroup(child, 'code-server'));
  const url = `http://127.0.0.1:${port}`;
  await waitFor('code-server to answer HTTP', 60_000, async () => {
    if (child.exitCode !== null) throw new Fatal(`code-server exited with ${child.exitCode}; see test-output/e2e/${logName}`);
    const response = await fetch(`${url}/healthz`);
    return response.ok;
  });
  log(`code-server ${CODE_SERVER_VERSION} listening on ${url}`);
  return url;
}

async function startBrowser() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !HEADED,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  cleanups.push(() => browser.close());
  return browser;
}

async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  return page;
}

// ---------------------------------------------------------------------------------------------------------------
// Workbench helpers.
const screenshot = async (page, name) => {
  const file = path.join(OUTPUT, `${name}.png`);
  await page.screenshot({ path: file });
  log(`screenshot ${path.relative(ROOT, file)}`);
};

/** With --capture, saves a frame of the README's animated capture (scripts/demo-gif.sh assembles them in name order). */
let frameCount = 0;
const captureFrame = async (page, name) => {
  if (!CAPTURE) return;
  const dir = path.join(OUTPUT, 'frames');
  fs.mkdirSync(dir, { recursive: true });
  frameCount += 1;
  await page.screenshot({ path: path.join(dir, `${String(frameCount).padStart(3, '0')}-${name}.png`) });
};

/**
 * Opens the command palette. F1 pressed while a webview's frame has the focus reaches the workbench only through the
 * webview's key forwarding, which CI once lost (the palette never opened); a retry first hands the focus back to the
 * workbench's own document, where its keybinding service hears F1 directly.
 */
async function openCommandPalette(page) {
  const input = page.locator('.quick-input-widget input');
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    try {
      await input.waitFor({ state: 'visible', timeout: 5_000 });
      return input;
    } catch (error) {
      if (attempt === 3) throw error;
      await page.evaluate(() => (document.activeElement instanceof HTMLElement ? document.activeElement.blur() : undefined));
      await page.keyboard.press('Escape');
      await page.waitForTimeout(300);
    }
  }
}

/** Runs a command through the command palette by its title. */
async function runCommand(page, title) {
  const input = await openCommandPalette(page);
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await page.keyboard.press('Enter');
}

/** Text and classes of the Unmask status bar item. */
async function unmaskStatus(page) {
  return page.evaluate(() => {
    const items = [...document.querySelectorAll('.statusbar-item')];
    const item = items.find((el) => (el.textContent ?? '').includes('Unmask'));
    if (!item) return undefined;
    const icons = [...item.querySelectorAll('.codicon')].map((el) => el.className);
    return { text: (item.textContent ?? '').trim(), icons: icons.join(' '), title: item.getAttribute('aria-label') ?? '' };
  });
}

/** The active editor's text input: focusing it gives that editor the keyboard. */
function activeEditorInput(page) {
  return page.locator('.editor-group-container.active .monaco-editor textarea').first();
}

/** Opens a workspace file from the Explorer (quick open depends on the file search, which is slow on a busy box). */
async function openFile(page, name) {
  const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: name }).first();
  await row.waitFor({ state: 'visible', timeout: 30_000 });
  await row.dblclick();
  await page.locator('.tab.active', { hasText: name }).waitFor({ timeout: 15_000 });
  await activeEditorInput(page).waitFor({ state: 'attached', timeout: 15_000 });
}

async function goToLine(page, line, column) {
  // The quick input closes when focus moves (an editor the extension reveals, a notification), so retry.
  const input = page.locator('.quick-input-widget input');
  for (let attempt = 1; ; attempt++) {
    try {
      await activeEditorInput(page).focus();
      await page.keyboard.press('Control+G');
      await input.waitFor({ state: 'visible', timeout: 5_000 });
      await input.fill(`:${line}:${column}`, { timeout: 5_000 });
      await page.keyboard.press('Enter');
      await input.waitFor({ state: 'hidden', timeout: 5_000 });
      return;
    } catch (error) {
      if (attempt === 3) throw error;
      await page.keyboard.press('Escape');
      await page.waitForTimeout(500);
    }
  }
}

/** The ghost text VS Code shows: the part on the cursor's line and any additional lines, as plain text. */
async function ghostText(page) {
  return page.evaluate(() => {
    const clean = (s) => (s ?? '').replace(/\u00a0/g, ' ');
    const inline = [...document.querySelectorAll('.monaco-editor .ghost-text-decoration')].map((el) => clean(el.textContent));
    // VS Code 1.100 renders the lines after the cursor's line in a view zone: div.suggest-preview-text > div.view-line.
    const blocks = [...document.querySelectorAll('.monaco-editor .suggest-preview-text')];
    const lines = blocks.flatMap((block) =>
      [...block.querySelectorAll('.view-line')]
        .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
        .map((el) => clean(el.textContent)),
    );
    return { inline: inline.join(''), lines, visible: inline.length > 0 || lines.length > 0 };
  });
}

/** Saves the active editor and returns the file's new text; every caller has changed the document first. */
async function saveAndRead(page, file) {
  const before = fs.statSync(file).mtimeMs;
  await page.locator('.tab.active.dirty').waitFor({ timeout: 15_000 });
  const saved = async () => (await page.locator('.tab.active.dirty').count()) === 0 && fs.statSync(file).mtimeMs > before;
  // Ctrl+S goes to whatever has the keyboard focus; on a slow machine (CI once) the focus had not come back to the
  // editor after a preview closed and the keypress saved nothing. Focus the editor's text first, and if the file is
  // still unsaved after a while, save through the command palette, which acts on the active editor wherever the
  // focus is.
  await activeEditorInput(page).focus();
  await page.keyboard.press('Control+S');
  try {
    await waitFor(`${path.basename(file)} to be saved (Ctrl+S)`, 7_000, saved);
  } catch {
    const focused = await page.evaluate(() => document.activeElement?.className ?? '(none)');
    log(`Ctrl+S did not save ${path.basename(file)} (focus: ${focused}); saving through the command palette`);
    await runCommand(page, 'File: Save');
    await waitFor(`${path.basename(file)} to be saved`, 15_000, saved);
  }
  return fs.readFileSync(file, 'utf8');
}

/** Waits until the status bar shows the model loaded (the sparkle), failing at once on an error status. */
async function waitForServerReady(page) {
  await waitFor('the Unmask server to be ready', MODEL_READY_TIMEOUT_MS, async () => {
    const status = await unmaskStatus(page);
    if (status?.icons.includes('codicon-error')) throw new Fatal(`the Unmask server reports an error: ${status.title}`);
    return status && status.icons.includes('codicon-sparkle');
  }, 500);
}

// ---------------------------------------------------------------------------------------------------------------
// The tests.
async function testGhostText(page, dirs) {
  const file = path.join(dirs.workspace, 'main.py');
  await openFile(page, 'main.py');
  await waitForServerReady(page);
  log(`status bar: ${JSON.stringify(await unmaskStatus(page))}`);
  await screenshot(page, '01-ready');

  const lineIndent = PYTHON_FILE.split('\n')[TYPE_AT_LINE - 1];
  await goToLine(page, TYPE_AT_LINE, lineIndent.length + 1);
  await captureFrame(page, 'ghost-before');
  if (CAPTURE) {
    for (const ch of TYPED) {
      await page.keyboard.type(ch);
      if (ch === ' ' || ch === TYPED[TYPED.length - 1]) await captureFrame(page, 'ghost-typing');
    }
  } else {
    await page.keyboard.type(TYPED, { delay: 60 });
  }
  const typedAt = PYTHON_FILE.split('\n').slice(0, TYPE_AT_LINE - 1).join('\n').length + 1 + lineIndent.length;
  const expectedBefore = PYTHON_FILE.slice(0, typedAt) + TYPED + PYTHON_FILE.slice(typedAt);

  const shownAt = Date.now();
  const ghost = await waitFor('ghost text from the model', GHOST_TEXT_TIMEOUT_MS, async () => {
    const g = await ghostText(page);
    return g.visible && (g.inline.trim().length > 0 || g.lines.some((l) => l.trim())) ? g : undefined;
  });
  log(`ghost text after ${Date.now() - shownAt} ms: ${JSON.stringify(ghost)}`);
  await screenshot(page, '02-ghost-text');
  await captureFrame(page, 'ghost-shown');

  await page.keyboard.press('Tab');
  const after = await saveAndRead(page, file);
  await screenshot(page, '03-accepted');
  await captureFrame(page, 'ghost-accepted');

  // The file must be what was typed plus one insertion at the cursor, and that insertion must be the ghost text.
  const head = expectedBefore.slice(0, typedAt + TYPED.length);
  const tail = expectedBefore.slice(typedAt + TYPED.length);
  if (!after.startsWith(head)) throw new Error(`text before the cursor changed:\n${after}`);
  if (!after.endsWith(tail)) throw new Error(`text after the cursor changed:\n${after}`);
  const inserted = after.slice(head.length, after.length - tail.length);
  const shown = [ghost.inline, ...ghost.lines].join('\n');
  const normalise = (s) => s.split('\n').map((l) => l.trimEnd()).join('\n').trimEnd();
  if (inserted.length === 0) throw new Error('Tab accepted nothing');
  if (normalise(inserted) !== normalise(shown)) {
    throw new Error(`accepted text differs from the ghost text:\n  shown:    ${JSON.stringify(shown)}\n  inserted: ${JSON.stringify(inserted)}`);
  }
  return `accepted ${JSON.stringify(inserted)}`;
}

/**
 * Manual trigger mode: "Unmask: Switch Trigger Mode" shows "(manual)" in the status bar; typing then brings no ghost
 * text, Ctrl+Alt+\ brings it; Alt+End accepts only its next line (the file changes by a prefix of the ghost text, one
 * line at most); switching back to automatic clears the mark.
 */
async function testManualMode(page, dirs) {
  try {
    return await manualMode(page, dirs);
  } finally {
    await openFile(page, 'main.py'); // The tests after this one work in main.py.
  }
}

async function manualMode(page, dirs) {
  const file = path.join(dirs.workspace, MANUAL_FILE);
  await openFile(page, MANUAL_FILE);
  await waitForServerReady(page);
  await runCommand(page, 'Unmask: Switch Trigger Mode');
  const manual = await waitFor('the status bar to say manual', 15_000, async () => {
    const status = await unmaskStatus(page);
    return status?.text.includes('(manual)') ? status : undefined;
  });

  const indent = MANUAL_TEXT.split('\n')[1];
  await goToLine(page, 2, indent.length + 1);
  await page.keyboard.type(MANUAL_TYPED, { delay: 60 });
  const quietSince = Date.now();
  while (Date.now() - quietSince < MANUAL_QUIET_MS) {
    if ((await ghostText(page)).visible) throw new Error('ghost text appeared while typing in manual mode');
    await page.waitForTimeout(200);
  }

  await page.keyboard.press('Control+Alt+Backslash');
  const ghost = await waitFor('ghost text after Ctrl+Alt+\\', GHOST_TEXT_TIMEOUT_MS, async () => {
    const g = await ghostText(page);
    return g.visible && (g.inline.trim().length > 0 || g.lines.some((l) => l.trim())) ? g : undefined;
  });
  await screenshot(page, '03b-manual-ghost-text');
  const shown = [ghost.inline, ...ghost.lines].join('\n');

  await page.keyboard.press('Alt+End');
  const after = await saveAndRead(page, file);
  const offset = MANUAL_TEXT.indexOf('\n') + 1 + indent.length;
  const head = MANUAL_TEXT.slice(0, offset) + MANUAL_TYPED;
  const tail = MANUAL_TEXT.slice(offset);
  if (!after.startsWith(head) || !after.endsWith(tail)) throw new Error(`Alt+End changed text outside the cursor:\n${after}`);
  const inserted = after.slice(head.length, after.length - tail.length);
  const trimLines = (t) => t.split('\n').map((l) => l.trimEnd()).join('\n');
  if (inserted.length === 0) throw new Error('Alt+End accepted nothing');
  if (!trimLines(shown).startsWith(trimLines(inserted).trimEnd())) throw new Error(`Alt+End inserted ${JSON.stringify(inserted)}, not a prefix of the ghost text ${JSON.stringify(shown)}`);
  if (inserted.replace(/^\n/, '').includes('\n')) throw new Error(`Alt+End inserted more than one line: ${JSON.stringify(inserted)}`);
  await page.keyboard.press('Escape');

  await runCommand(page, 'Unmask: Switch Trigger Mode');
  await waitFor('the status bar to drop "manual"', 15_000, async () => {
    const status = await unmaskStatus(page);
    return status && !status.text.includes('(manual)') ? status : undefined;
  });
  const multiLine = ghost.lines.length > 0 ? `, of ${ghost.lines.length + 1} lines` : '';
  return `status ${JSON.stringify(manual.text)}; no ghost text for ${MANUAL_QUIET_MS} ms of manual typing; Ctrl+Alt+\\ showed ${JSON.stringify(shown)}; Alt+End accepted ${JSON.stringify(inserted)}${multiLine}`;
}

/**
 * Gating (unmask.minConfidence): at 1 no suggestion made as you type is sure enough, so typing brings no ghost text
 * (automatic suggestions appear well within the quiet period, as the first test shows); an explicit request
 * (Ctrl+Alt+\) is never gated and shows one. The setting goes into the workspace's .vscode/settings.json, removed
 * afterwards.
 */
async function testGating(page, dirs) {
  // Workspace settings: the workspace's files are watched at once (an external write to the user settings file was
  // not picked up by code-server within 5 s).
  const settingsFile = path.join(dirs.workspace, '.vscode', 'settings.json');
  try {
    writeJson(settingsFile, { 'unmask.minConfidence': 1 });
    // The file watcher is slow on a loaded machine (3 s was once too little): wait until the status bar's tooltip
    // shows the new threshold. The language client forwards the same change, and the server pulls it, at once.
    await waitFor('the status bar to show unmask.minConfidence 1', 30_000, async () => {
      const status = await unmaskStatus(page);
      return status?.title.includes('shown at confidence >= 1 (unmask.minConfidence)') ? status : undefined;
    });
    await page.waitForTimeout(500);
    await openFile(page, GATE_FILE);
    await waitForServerReady(page);
    const indent = GATE_TEXT.split('\n')[1];
    await goToLine(page, 2, indent.length + 1);
    await page.keyboard.type(GATE_TYPED, { delay: 60 });
    const quietSince = Date.now();
    while (Date.now() - quietSince < MANUAL_QUIET_MS) {
      if ((await ghostText(page)).visible) throw new Error('ghost text appeared while typing with unmask.minConfidence 1');
      await page.waitForTimeout(200);
    }
    // The server generated and withheld (rather than never asked): the status says what became of the suggestion.
    const withheld = await waitFor('the status bar to say the suggestion was withheld', 15_000, async () => {
      const status = await unmaskStatus(page);
      return status?.title.match(/Last suggestion as you type: (withheld, confidence [0-9.]+ < 1)/)?.[1];
    });
    await page.keyboard.press('Control+Alt+Backslash');
    const ghost = await waitFor('ghost text after Ctrl+Alt+\\ (explicit requests are not gated)', GHOST_TEXT_TIMEOUT_MS, async () => {
      const g = await ghostText(page);
      return g.visible && (g.inline.trim().length > 0 || g.lines.some((l) => l.trim())) ? g : undefined;
    });
    await screenshot(page, '03c-gated-explicit-ghost-text');
    await page.keyboard.press('Escape');
    return `no ghost text for ${MANUAL_QUIET_MS} ms of typing at unmask.minConfidence 1 (status: ${withheld}); Ctrl+Alt+\\ showed ${JSON.stringify([ghost.inline, ...ghost.lines].join('\n'))}`;
  } finally {
    await page.keyboard.press('Escape');
    await saveAndRead(page, path.join(dirs.workspace, GATE_FILE)); // Leave no dirty editor behind.
    fs.rmSync(path.dirname(settingsFile), { recursive: true, force: true });
    // The explorer's rows moved under the mouse (.vscode came and went): a file's hover tooltip would cover the next.
    await page.mouse.move(700, 500);
    await page.waitForTimeout(2_000);
    await openFile(page, 'main.py'); // The tests after this one work in main.py.
  }
}

/**
 * Clicks a button of a notification toast and waits for the toast to close. On a loaded machine a click that lands
 * while the toast is still sliding in is sometimes dropped by the workbench (seen: the toast stays, its button
 * focused); then the click is repeated once, and logged, so that a dropped click shows in the output.
 */
async function answerToast(notification, button) {
  for (let attempt = 1; ; attempt++) {
    await notification.getByRole('button', { name: button }).click();
    try {
      await notification.waitFor({ state: 'hidden', timeout: 5_000 });
      return;
    } catch (error) {
      if (attempt === 2) throw error;
      log(`the "${button}" click left the notification open after 5 s; clicking again`);
    }
  }
}

async function testFillSelection(page, dirs) {
  const file = path.join(dirs.workspace, 'main.py');
  const original = fs.readFileSync(file, 'utf8');
  const lines = original.split('\n');
  // Select the body of mean(): "total = 0 ... total += value" (lines 9-11, 1-based).
  const first = lines.findIndex((l) => l.includes('total = 0'));
  const last = lines.findIndex((l) => l.includes('total += value'));
  if (first < 0 || last < 0) throw new Error('mean() body not found in main.py');

  const select = async () => {
    await goToLine(page, first + 1, 1);
    for (let i = first; i <= last; i++) await page.keyboard.press('Shift+ArrowDown');
    await page.keyboard.press('Shift+ArrowLeft'); // Keep the final newline out of the selection.
  };
  const start = lines.slice(0, first).join('\n').length + 1;
  const end = lines.slice(0, last + 1).join('\n').length;

  // 1. Reject: the document must stay as it is.
  await select();
  await runCommand(page, 'Unmask: Fill Selection');
  const diff = page.locator('.monaco-diff-editor');
  await diff.first().waitFor({ state: 'visible', timeout: GHOST_TEXT_TIMEOUT_MS });
  const notification = page.locator('.notification-toast', { hasText: 'apply the fill' });
  await notification.waitFor({ state: 'visible', timeout: 15_000 });
  await screenshot(page, '04-fill-preview');
  await answerToast(notification, 'Reject');
  await diff.first().waitFor({ state: 'hidden', timeout: 15_000 });
  await page.locator('.tab.active', { hasText: 'main.py' }).waitFor({ timeout: 15_000 });
  if ((await page.locator('.tab.dirty').count()) !== 0) throw new Error('rejecting the fill left the document modified');
  if (fs.readFileSync(file, 'utf8') !== original) throw new Error('rejecting the fill changed the file');

  // 2. Accept: the selection, and only the selection, is replaced.
  await select();
  await runCommand(page, 'Unmask: Fill Selection');
  await diff.first().waitFor({ state: 'visible', timeout: GHOST_TEXT_TIMEOUT_MS });
  await notification.waitFor({ state: 'visible', timeout: 15_000 });
  const previewed = await waitFor('the preview text', 15_000, async () => {
    const lines = await page.evaluate(() =>
      [...document.querySelectorAll('.monaco-diff-editor .editor.modified .view-lines .view-line')]
        .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
        .map((el) => (el.textContent ?? '').replace(/\u00a0/g, ' ')),
    );
    return lines.length > 0 ? lines.join('\n') : undefined;
  });
  await answerToast(notification, 'Accept');
  await diff.first().waitFor({ state: 'hidden', timeout: 15_000 });
  const after = await saveAndRead(page, file);
  await screenshot(page, '05-fill-accepted');
  const head = original.slice(0, start);
  const tail = original.slice(end);
  if (!after.startsWith(head) || !after.endsWith(tail)) throw new Error(`text outside the selection changed:\n${after}`);
  const filled = after.slice(head.length, after.length - tail.length);
  const normalise = (s) => s.split('\n').map((l) => l.trimEnd()).join('\n').trimEnd();
  if (normalise(after) !== normalise(previewed)) {
    throw new Error(`the accepted document differs from the preview:\n  preview: ${JSON.stringify(previewed)}\n  file:    ${JSON.stringify(after)}`);
  }

  // 3. One undo restores the original.
  await page.keyboard.press('Control+Z');
  const undone = await saveAndRead(page, file);
  if (undone !== original) throw new Error('one undo did not restore the text before the fill');
  return `filled ${JSON.stringify(filled)}`;
}

/** The hole marker grammar: the marker's tokens are coloured apart from the code and the comment around them. */
async function testHoleHighlighting(page) {
  await openFile(page, 'holes.py');
  // Until the grammars have run, the line is one plain span (or split by bracket colours only); wait for the
  // marker's own tokens: the keyword twice and the length hint.
  const tokens = await waitFor('holes.py to be tokenized', 30_000, () =>
    page.evaluate(() => {
      const spans = [...document.querySelectorAll('.editor-group-container.active .monaco-editor .view-line span span')];
      const found = spans.map((el) => ({ text: el.textContent ?? '', color: getComputedStyle(el).color }));
      const holes = found.filter((t) => t.text === 'hole').length;
      return holes === 2 && found.some((t) => t.text === '8') ? found : undefined;
    }),
  );
  await screenshot(page, '06-hole-markers');
  const colorOf = (predicate, what) => {
    const token = tokens.find(predicate);
    if (!token) throw new Error(`no token for ${what} in ${JSON.stringify(tokens)}`);
    return token.color;
  };
  const holes = tokens.filter((t) => t.text === 'hole');
  if (holes.length !== 2) throw new Error(`expected 2 "hole" keyword tokens (in code and in a comment), got ${JSON.stringify(tokens)}`);
  const code = colorOf((t) => t.text.trim() === 'total', 'the variable');
  const comment = colorOf((t) => t.text.includes('then'), 'the comment');
  const hint = colorOf((t) => t.text === '8', 'the length hint');
  if (holes[0].color === code) throw new Error(`the marker in code has the variable's colour ${code}`);
  if (holes[1].color === comment) throw new Error(`the marker in a comment has the comment's colour ${comment}`);
  if (hint === holes[0].color) throw new Error('the length hint is not told apart from the keyword');
  return `marker ${holes[0].color}, hint ${hint}, code ${code}, comment ${comment}`;
}

/** Everything the document had but the hole markers, in order: the markers' places may hold any text. */
function withoutMarkers(original, after) {
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pieces = original.split(/\{\{hole(?::\d+)?\}\}/);
  return new RegExp(`^${pieces.map(escape).join('([\\s\\S]*?)')}$`).exec(after);
}

async function testFillAllHoles(page, dirs) {
  const file = path.join(dirs.workspace, FILL_HOLES_FILE);
  await openFile(page, FILL_HOLES_FILE);
  await waitForServerReady(page);
  await runCommand(page, 'Unmask: Fill All Holes');
  const diff = page.locator('.monaco-diff-editor');
  await diff.first().waitFor({ state: 'visible', timeout: GHOST_TEXT_TIMEOUT_MS });
  // "apply the fill of 3 holes shown in the diff?" or, from a model that wrote nothing, "... left all 3 holes empty ...".
  // The one with an Accept button: the progress toast ("filling 3 holes...") may still be fading out beside it.
  const notification = page.locator('.notification-toast', { hasText: '3 holes', has: page.getByRole('button', { name: 'Accept' }) });
  await notification.waitFor({ state: 'visible', timeout: 15_000 });
  await screenshot(page, '08-fill-holes-preview');
  await answerToast(notification, 'Accept');
  await diff.first().waitFor({ state: 'hidden', timeout: 15_000 });
  const after = await saveAndRead(page, file);
  await screenshot(page, '09-fill-holes-accepted');
  if (after.includes('{{hole')) throw new Error(`hole markers are left after accepting:\n${after}`);
  const filled = withoutMarkers(FILL_HOLES_TEXT, after);
  if (!filled) throw new Error(`text outside the holes changed:\n${after}`);

  // The three replacements were one edit: one undo brings every marker back.
  await page.keyboard.press('Control+Z');
  const undone = await saveAndRead(page, file);
  if (undone !== FILL_HOLES_TEXT) throw new Error(`one undo did not restore the holes:\n${undone}`);
  return `filled ${JSON.stringify(filled.slice(1))}`;
}

/**
 * Runs `trigger` and waits for the unmasking-order view's page (the inner frame of its webview) to have drawn.
 * Returns the frame and when, in ms after `trigger` started, the webview's iframe appeared, the page's HTML was
 * there and its script had drawn the first state.
 */
async function timeVisualizer(page, trigger, timeoutMs) {
  const started = Date.now();
  await trigger();
  const marks = {};
  const frame = await waitFor('the unmasking-order view to render', timeoutMs, async () => {
    if (marks.iframe === undefined && (await page.$('iframe.webview'))) marks.iframe = Date.now() - started;
    for (const frame of page.frames()) {
      const app = await frame.$('#app.unmask-visualizer').catch(() => null);
      if (!app) continue;
      marks.page ??= Date.now() - started;
      if ((await app.getAttribute('data-rendered').catch(() => null)) === 'true') {
        marks.rendered = Date.now() - started;
        return frame;
      }
    }
    return undefined;
  }, 10);
  return { frame, marks };
}

/** What the view shows: token cells, how many are shown, the slider, the status line and the AR-ness table. */
async function visualizerState(frame) {
  return frame.evaluate(() => {
    const scrub = document.getElementById('scrub');
    const rows = [...document.querySelectorAll('#arness tr')].map((tr) => [...tr.children].map((c) => c.textContent.trim()));
    return {
      state: document.getElementById('app').dataset.state,
      meta: document.getElementById('meta').textContent,
      status: document.getElementById('status').textContent,
      tokens: document.querySelectorAll('.tok').length,
      shown: document.querySelectorAll('.tok.shown').length,
      swatches: document.querySelectorAll('.swatch').length,
      position: Number(scrub.value),
      max: Number(scrub.max),
      playing: document.getElementById('play').getAttribute('aria-pressed') === 'true',
      arness: rows,
    };
  });
}

async function testUnmaskingOrder(page) {
  await openFile(page, ORDER_FILE);
  await waitForServerReady(page);

  // 1. Open the view and time it: from the command (Enter in the palette) to the page having drawn its first state.
  const input = await openCommandPalette(page);
  await input.fill('>Unmask: Show Unmasking Order');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Unmask: Show Unmasking Order' }).first().waitFor({ state: 'visible', timeout: 15_000 });
  const open = await timeVisualizer(page, () => page.keyboard.press('Enter'), 30_000);
  let frame = open.frame;
  const openMs = open.marks.rendered;
  log(`unmasking order: open-to-first-render ${openMs} ms (issue 5 target <= ${VISUALIZER_OPEN_TARGET_MS} ms); ${JSON.stringify(open.marks)}`);

  // 2. A generation while it is open: the view follows it live and ends on its final trace (16 + 16 + 32 masks).
  await page.locator('.tab', { hasText: ORDER_FILE }).first().click();
  await runCommand(page, 'Unmask: Fill All Holes');
  const notification = page.locator('.notification-toast', { hasText: '3 holes' });
  await notification.waitFor({ state: 'visible', timeout: GHOST_TEXT_TIMEOUT_MS });
  const drawn = await waitFor('the view to show the Fill All Holes generation', 15_000, async () => {
    const state = await visualizerState(frame);
    return state.meta.startsWith('Fill All Holes · unmasking_order.py') && !state.meta.includes('running') ? state : undefined;
  });
  await answerToast(notification, 'Reject');
  await page.locator('.monaco-diff-editor').first().waitFor({ state: 'hidden', timeout: 15_000 });
  await screenshot(page, '10-unmasking-order');
  if (drawn.tokens !== 64) throw new Error(`expected 64 token cells (holes of 16 + 16 + 32), got ${drawn.tokens}`);
  if (drawn.shown !== 64 || drawn.position !== drawn.max || drawn.max < 1) throw new Error(`the view does not end on the final step: ${JSON.stringify(drawn)}`);
  if (drawn.swatches !== drawn.max) throw new Error(`${drawn.swatches} step colours for ${drawn.max} steps`);
  const [header, local, global] = drawn.arness;
  if (header?.length !== 9 || local?.[0] !== 'Local' || global?.[0] !== 'Global') throw new Error(`no AR-ness table: ${JSON.stringify(drawn.arness)}`);
  const value = /^(0|1)\.\d\d$|^–$/;
  if (![...local.slice(1), ...global.slice(1)].every((v) => value.test(v)) || !/^\d\.\d\d$/.test(global[1])) {
    throw new Error(`AR-ness values are not shown: ${JSON.stringify(drawn.arness)}`);
  }

  // Pin this generation: with "Follow live" off, a completion the editor asks for meanwhile does not replace it.
  await frame.click('#live');
  if (await frame.isChecked('#live')) throw new Error('"Follow live" did not turn off');

  // 3. Play with the keyboard (Space on the token canvas) and watch the replay pass through the steps smoothly: the
  // gaps between animation frames while it plays show whether anything blocked the page.
  await frame.evaluate(() => {
    window.__gaps = [];
    let last = performance.now();
    let started = false;
    const tick = (t) => {
      const playing = document.getElementById('play').getAttribute('aria-pressed') === 'true';
      if (playing && started) window.__gaps.push(t - last);
      started ||= playing;
      last = t;
      if (!started || playing) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  await frame.click('#canvas');
  await page.keyboard.press(' ');
  const seen = new Set();
  let midShot = false;
  await waitFor('the replay to finish', 30_000, async () => {
    const state = await visualizerState(frame);
    seen.add(state.position);
    if (!midShot && state.position > 0 && state.position < state.max) {
      midShot = true;
      await screenshot(page, '11-unmasking-order-playing');
    }
    return !state.playing && state.position === state.max && seen.size > 2 ? state : undefined;
  }, 50);
  const gaps = await frame.evaluate(() => window.__gaps);
  const worstGap = Math.max(0, ...gaps);
  if (![...seen].some((p) => p > 0 && p < drawn.max)) throw new Error(`the replay showed no step in between: ${[...seen]}`);

  // 4. Scrub with the keyboard: Home shows every position masked, two steps right show exactly those steps' tokens.
  await frame.focus('#scrub');
  if (CAPTURE) {
    await page.keyboard.press('Home');
    await captureFrame(page, 'order-step');
    for (let step = 1; step <= drawn.max; step++) {
      await page.keyboard.press('ArrowRight');
      await captureFrame(page, 'order-step');
    }
  }
  await page.keyboard.press('Home');
  const start = await visualizerState(frame);
  if (start.position !== 0 || start.shown !== 0) throw new Error(`Home did not go back to the start: ${JSON.stringify(start)}`);
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  const scrubbed = await visualizerState(frame);
  const inAll = Number(/(\d+) of 64 in all/.exec(scrubbed.status)?.[1]);
  if (scrubbed.position !== 2 || scrubbed.shown !== inAll || !(inAll > 0)) throw new Error(`scrubbing to step 2 shows the wrong tokens: ${JSON.stringify(scrubbed)}`);
  await screenshot(page, '12-unmasking-order-scrubbed');

  // 5. Hide the panel behind another editor in its group and bring it back: it resumes at the same step.
  await page.locator('.tab', { hasText: 'Unmasking Order' }).first().click();
  await runCommand(page, 'File: New Untitled Text File');
  await page.locator('.tab.active', { hasText: 'Untitled' }).waitFor({ timeout: 15_000 });
  const closeTab = (name) => page.locator('.tab', { hasText: name }).first().locator('.tab-actions .codicon-close').click({ force: true });
  const back = await timeVisualizer(page, () => closeTab('Untitled'), 15_000);
  await page.locator('.tab.active', { hasText: 'Unmasking Order' }).waitFor({ timeout: 15_000 });
  log(`unmasking order: shown again after being hidden, drawn after ${back.marks.rendered} ms; ${JSON.stringify(back.marks)}`);
  frame = back.frame;
  const restored = await waitFor('the view to restore its step', 10_000, async () => {
    const state = await visualizerState(frame);
    return state.tokens === 64 ? state : undefined;
  });
  await screenshot(page, '13-unmasking-order-restored');
  if (restored.position !== 2 || restored.shown !== inAll) throw new Error(`the restored view lost its step: ${JSON.stringify(restored)}`);

  // 6. Close it and open it again: the second open no longer pays for the webview machinery's first start.
  await closeTab('Unmasking Order');
  await page.locator('.tab', { hasText: 'Unmasking Order' }).waitFor({ state: 'detached', timeout: 15_000 });
  await page.locator('.tab', { hasText: ORDER_FILE }).first().click();
  await openCommandPalette(page);
  await input.fill('>Unmask: Show Unmasking Order');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Unmask: Show Unmasking Order' }).first().waitFor({ state: 'visible', timeout: 15_000 });
  const reopen = await timeVisualizer(page, () => page.keyboard.press('Enter'), 30_000);
  log(`unmasking order: reopened, open-to-first-render ${reopen.marks.rendered} ms; ${JSON.stringify(reopen.marks)}`);

  return (
    `open-to-first-render ${openMs} ms first, ${reopen.marks.rendered} ms again (target <= ${VISUALIZER_OPEN_TARGET_MS} ms); ` +
    `${drawn.tokens} tokens in ${drawn.max} steps; ` +
    `AR-ness@1 local ${local[1]} global ${global[1]}; replay passed steps ${[...seen].sort((a, b) => a - b).join(',')}, ` +
    `longest frame gap ${worstGap.toFixed(0)} ms over ${gaps.length} frames`
  );
}

/** The candidates panel's page (the inner frame of its webview) once its script has listed the candidates. */
async function candidatesFrame(page, timeoutMs) {
  return waitFor('the candidates panel to render', timeoutMs, async () => {
    for (const frame of page.frames()) {
      const title = await frame.$eval('main.unmask-candidates #title', (el) => el.textContent).catch(() => '');
      if (title) return frame;
    }
    return undefined;
  }, 100);
}

/** What the candidates panel shows: its title, summary and, per entry, rank, scores and the highlighted text. */
async function candidatesState(frame) {
  return frame.evaluate(() => ({
    title: document.getElementById('title').textContent,
    summary: document.getElementById('summary').textContent,
    empty: document.getElementById('empty').hidden ? '' : document.getElementById('empty').textContent,
    stale: document.getElementById('stale').hidden ? '' : document.getElementById('stale').textContent,
    entries: [...document.querySelectorAll('.candidate')].map((item) => ({
      rank: item.querySelector('.rank').textContent,
      syntax: item.querySelector('.syntax').textContent,
      likelihood: item.querySelector('.likelihood').textContent,
      score: item.querySelector('.score').textContent,
      inserted: item.querySelector('.inserted').textContent,
      context: [...item.querySelectorAll('.context')].map((el) => el.textContent),
    })),
  }));
}

/**
 * Runs the command at the cursor until the panel lists at least one candidate (the model may leave every row of a
 * batch empty; each run draws new samples), at most three times. Returns the panel's frame and state.
 */
async function regenerateCandidates(page) {
  for (let attempt = 1; ; attempt++) {
    await runCommand(page, 'Unmask: Regenerate with N Candidates');
    const frame = await candidatesFrame(page, GHOST_TEXT_TIMEOUT_MS);
    const state = await candidatesState(frame);
    if (state.entries.length > 0 || attempt === 3) return { frame, state, attempt };
    log(`candidates: attempt ${attempt} listed none (${state.empty}); closing the panel and regenerating`);
    await frame.click('header h1');
    await page.keyboard.press('Escape');
    await page.locator('.tab', { hasText: CANDIDATES_TAB }).waitFor({ state: 'hidden', timeout: 15_000 });
    await goToLine(page, CANDIDATES_AT.line, CANDIDATES_AT.column);
  }
}

async function testCandidates(page, dirs) {
  const file = path.join(dirs.workspace, CANDIDATES_FILE);
  await openFile(page, CANDIDATES_FILE);
  await waitForServerReady(page);
  await goToLine(page, CANDIDATES_AT.line, CANDIDATES_AT.column);

  // 1. The panel: ranked entries with their scores and the inserted text highlighted in the code around the cursor.
  const { frame, state, attempt } = await regenerateCandidates(page);
  await screenshot(page, '14-candidates-panel');
  log(`candidates panel (attempt ${attempt}): ${JSON.stringify(state)}`);
  if (!state.title.includes(`${CANDIDATES_FILE}:${CANDIDATES_AT.line}:${CANDIDATES_AT.column}`)) throw new Error(`the title does not name the position: ${state.title}`);
  if (!/^4 generated in one batch( \(\d+ distinct\))?, [1-8] model calls, \d+ ms$/.test(state.summary)) {
    throw new Error(`the summary does not describe one batch of 4 in at most 8 model calls: ${state.summary}`);
  }
  if (state.entries.length === 0) throw new Error(`three runs listed no candidate: ${state.empty}`);
  if (state.entries.length > 4) throw new Error(`${state.entries.length} entries for 4 candidates`);
  state.entries.forEach((entry, i) => {
    if (entry.rank !== String(i + 1)) throw new Error(`entry ${i} is ranked ${entry.rank}`);
    if (!/^(syntax ok|\d+ syntax errors?)$/.test(entry.syntax)) throw new Error(`no syntax verdict from the TypeScript parser: ${entry.syntax}`);
    if (!/^log-prob -?\d+\.\d\d\/token/.test(entry.likelihood) || !/^score -?\d+\.\d\d$/.test(entry.score)) throw new Error(`no scores: ${JSON.stringify(entry)}`);
    if (!entry.context[0].endsWith('  return ') || !entry.context[1].startsWith('\n}')) throw new Error(`the code around the insertion is wrong: ${JSON.stringify(entry.context)}`);
  });
  const scores = state.entries.map((e) => Number(e.score.slice('score '.length)));
  if (scores.some((s, i) => i > 0 && s > scores[i - 1])) throw new Error(`entries are not best first: ${scores}`);
  const dirty = page.locator('.tab.dirty', { hasText: CANDIDATES_FILE });
  if ((await dirty.count()) !== 0 || fs.readFileSync(file, 'utf8') !== CANDIDATES_TEXT) {
    throw new Error('the document changed before a candidate was accepted');
  }

  // 2. Esc closes the panel and returns to the editor at the cursor, where the same ranked list backs the inline
  // suggestions: Ctrl+Alt+\ (Unmask: Suggest at Cursor) shows candidate 1 as ghost text and Alt+] moves on to candidate 2.
  await frame.click('header h1');
  await page.keyboard.press('Escape');
  await page.locator('.tab', { hasText: CANDIDATES_TAB }).waitFor({ state: 'hidden', timeout: 15_000 });
  const normalise = (text) => text.split('\n').map((l) => l.trimEnd()).join('\n').trim();
  const shownText = async () => {
    const g = await ghostText(page);
    return g.visible ? normalise([g.inline, ...g.lines].join('\n')) : undefined;
  };
  await page.keyboard.press('Control+Alt+Backslash');
  const firstShown = await waitFor('ghost text of candidate 1', 15_000, shownText);
  if (firstShown !== normalise(state.entries[0].inserted)) throw new Error(`Ctrl+Alt+\\ shows ${JSON.stringify(firstShown)}, not candidate 1 ${JSON.stringify(state.entries[0].inserted)}`);
  let cycled = `Ctrl+Alt+\\ showed candidate 1 ${JSON.stringify(firstShown)}`;
  if (state.entries.length > 1) {
    await page.keyboard.press('Alt+BracketRight');
    const secondShown = await waitFor('ghost text of candidate 2', 15_000, async () => {
      const text = await shownText();
      return text !== undefined && text !== firstShown ? text : undefined;
    });
    // VS Code skips items it will not show as ghost text at this position (for example one that only adds spaces), so
    // Alt+] must move to a later entry of the same ranked list, usually candidate 2.
    const later = state.entries.slice(1).map((e) => normalise(e.inserted));
    const at = later.indexOf(secondShown);
    if (at < 0) throw new Error(`Alt+] shows ${JSON.stringify(secondShown)}, none of the later candidates ${JSON.stringify(later)}`);
    cycled += `, Alt+] candidate ${at + 2} ${JSON.stringify(secondShown)}`;
  }
  await screenshot(page, '15-candidates-inline');
  await page.keyboard.press('Escape');
  if ((await dirty.count()) !== 0) throw new Error('showing the candidates inline changed the document');

  // 3. Accept the last entry with its number key: the document gets exactly that text at the cursor, as one edit.
  await goToLine(page, CANDIDATES_AT.line, CANDIDATES_AT.column);
  const listed = await regenerateCandidates(page);
  if (listed.state.entries.length === 0) throw new Error(`three runs listed no candidate: ${listed.state.empty}`);
  const choice = listed.state.entries.length;
  const chosen = listed.state.entries[choice - 1].inserted;
  await listed.frame.click('header h1');
  await page.keyboard.press(String(choice));
  await page.locator('.tab', { hasText: CANDIDATES_TAB }).waitFor({ state: 'hidden', timeout: 15_000 });
  const after = await saveAndRead(page, file);
  await screenshot(page, '16-candidate-accepted');
  const offset = CANDIDATES_TEXT.split('\n').slice(0, CANDIDATES_AT.line - 1).join('\n').length + CANDIDATES_AT.column;
  const expected = CANDIDATES_TEXT.slice(0, offset) + chosen + CANDIDATES_TEXT.slice(offset);
  if (after !== expected) throw new Error(`the file is not the original plus candidate ${choice}:\n  expected ${JSON.stringify(expected)}\n  got      ${JSON.stringify(after)}`);
  await page.keyboard.press('Control+Z');
  if ((await saveAndRead(page, file)) !== CANDIDATES_TEXT) throw new Error('one undo did not remove the inserted candidate');

  // 4. A candidate chosen after the document changed is refused, with a message, and nothing is inserted.
  await goToLine(page, CANDIDATES_AT.line, CANDIDATES_AT.column);
  const second = await regenerateCandidates(page);
  let refused = 'not checked: the model listed no candidate';
  if (second.state.entries.length > 0) {
    await page.locator('.editor-group-container', { hasText: 'export function total' }).locator('.monaco-editor textarea').first().focus();
    await page.keyboard.type('0');
    await second.frame.click('.candidate');
    const warning = page.locator('.notification-toast', { hasText: 'the document changed since these candidates were generated' });
    await warning.waitFor({ state: 'visible', timeout: 15_000 });
    const banner = await waitFor('the panel to say its candidates are stale', 10_000, async () => (await candidatesState(second.frame)).stale);
    await screenshot(page, '17-candidate-refused');
    const typed = CANDIDATES_TEXT.slice(0, offset) + '0' + CANDIDATES_TEXT.slice(offset);
    await page.locator('.tab', { hasText: CANDIDATES_FILE }).first().click();
    if ((await saveAndRead(page, file)) !== typed) throw new Error('a refused candidate changed the document');
    refused = `refused after an edit: ${JSON.stringify(banner)}`;
    await second.frame.click('header h1');
  } else {
    await second.frame.click('header h1');
  }
  await page.keyboard.press('Escape');
  await page.locator('.tab', { hasText: CANDIDATES_TAB }).waitFor({ state: 'hidden', timeout: 15_000 });
  return `${state.entries.length} candidate(s) listed; ${cycled}; inserted #${choice} ${JSON.stringify(chosen)}; ${refused}`;
}

/**
 * Restricted Mode (issue 14): a second code-server with workspace trust on opens a folder whose .vscode/settings.json
 * points unmask.modelPath into the folder. The user answers "No" to the trust prompt; the extension must say that the
 * workspace's model path is ignored, and completions must still come, from the shipped model.
 */
async function testUntrustedWorkspace({ browser, dirs }) {
  const url = await startCodeServer(dirs, {
    trust: true, userData: dirs.untrustedUserData, workspace: dirs.untrustedWorkspace, logName: 'code-server-untrusted.log',
  });
  const page = await newPage(browser);
  try {
    await page.goto(`${url}/?folder=${encodeURIComponent(dirs.untrustedWorkspace)}`, { waitUntil: 'domcontentloaded', timeout: 90_000 });
    const refuse = page.locator('.monaco-dialog-box .monaco-button', { hasText: "No, I don't trust the authors" }).first();
    await refuse.waitFor({ state: 'visible', timeout: 90_000 });
    await screenshot(page, '18-untrusted-prompt');
    await refuse.click();
    // The extension starts with the first Python file; its notice comes then. Completions keep working in Restricted
    // Mode, from the shipped model.
    await openFile(page, 'main.py');
    await waitForServerReady(page);
    const status = await unmaskStatus(page);
    const notice = page.locator('.notifications-toasts .notification-toast', { hasText: 'in Restricted Mode it is ignored' }).first();
    await notice.waitFor({ state: 'visible', timeout: 30_000 });
    const noticeText = ((await notice.textContent()) ?? '').replace(/\s+/g, ' ').trim();
    if (!noticeText.includes(UNTRUSTED_MODEL_PATH)) throw new Error(`the notice does not name the ignored path: ${noticeText}`);
    await screenshot(page, '19-untrusted-notice');
    const lineIndent = PYTHON_FILE.split('\n')[TYPE_AT_LINE - 1];
    await goToLine(page, TYPE_AT_LINE, lineIndent.length + 1);
    await page.keyboard.type(TYPED, { delay: 60 });
    const ghost = await waitFor('ghost text in Restricted Mode', GHOST_TEXT_TIMEOUT_MS, async () => {
      const g = await ghostText(page);
      return g.visible && (g.inline.trim().length > 0 || g.lines.some((l) => l.trim())) ? g : undefined;
    });
    await screenshot(page, '20-untrusted-ghost-text');
    return `notice "${noticeText.slice(0, 160)}"; status ${JSON.stringify(status?.title ?? '')}; ghost text ${JSON.stringify(ghost.inline)}`;
  } catch (error) {
    await screenshot(page, 'failure-untrusted').catch(() => undefined);
    throw error;
  } finally {
    await page.context().close();
  }
}

/**
 * The extension-host suite (test/e2e/suite/, the one `npm run test:electron` runs in desktop VS Code), run in
 * code-server: a second window opens with the workbench's `payload` options extensionDevelopmentPath and
 * extensionTestsPath, which make its (remote, Node) extension host load this folder as the extension under
 * development and run the suite. The suite writes its results to UNMASK_EXT_TEST_RESULTS.
 */
async function testExtensionHostSuite({ browser, url, dirs }) {
  const suite = await buildSuite(ROOT);
  const authority = new URL(url).host;
  const remote = (p) => `vscode-remote://${authority}${p}`;
  const payload = [
    ['extensionDevelopmentPath', remote(ROOT)],
    ['extensionTestsPath', remote(suite)],
  ];
  const page = await newPage(browser);
  try {
    const target = `${url}/?folder=${encodeURIComponent(dirs.suiteWorkspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    await page.goto(target, { waitUntil: 'domcontentloaded', timeout: 90_000 });
    const outcome = await waitFor('the extension-host suite to finish', 6 * 60_000, () => {
      if (!fs.existsSync(dirs.suiteResults)) return undefined;
      const results = JSON.parse(fs.readFileSync(dirs.suiteResults, 'utf8'));
      return results.done ? results : undefined;
    }, 1000);
    await screenshot(page, '07-extension-host-suite');
    for (const title of outcome.passed) console.log(`    ok - ${title}`);
    for (const failure of outcome.failed) console.log(`    not ok - ${failure.title}\n      ${failure.error.split('\n').slice(0, 6).join('\n      ')}`);
    if (outcome.failed.length > 0 || outcome.passed.length === 0) {
      throw new Error(`extension-host suite: ${outcome.passed.length} passed, ${outcome.failed.length} failed`);
    }
    return `${outcome.passed.length} extension-host tests passed`;
  } finally {
    await page.context().close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
async function main() {
  fs.rmSync(OUTPUT, { recursive: true, force: true });
  fs.mkdirSync(OUTPUT, { recursive: true });
  const results = [];
  let page;
  try {
    preconditions();
    const dirs = prepareDirs();
    const url = await startCodeServer(dirs);
    const browser = await startBrowser();
    page = await newPage(browser);
    await page.goto(`${url}/?folder=${encodeURIComponent(dirs.workspace)}`, { waitUntil: 'domcontentloaded', timeout: 90_000 });
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 90_000 });
    await page.locator('.statusbar').waitFor({ state: 'visible', timeout: 60_000 });
    log('workbench loaded');

    const tests = [
      ['types in a Python file, sees ghost text from the model and accepts it with Tab', () => testGhostText(page, dirs)],
      ['manual trigger mode: no ghost text while typing, Ctrl+Alt+\\ asks, Alt+End accepts one line', () => testManualMode(page, dirs)],
      ['gating: unmask.minConfidence hides suggestions made as you type, never an explicit request', () => testGating(page, dirs)],
      ['previews Fill Selection and edits only on accept, as one undoable edit', () => testFillSelection(page, dirs)],
      ['highlights {{hole}} markers in code and comments', () => testHoleHighlighting(page)],
      ['fills all holes of a file in one run and replaces the markers as one undoable edit on accept', () => testFillAllHoles(page, dirs)],
      ['shows the unmasking order live, replays it and scrubs it, and resumes after being hidden', () => testUnmaskingOrder(page)],
      ['regenerates 4 candidates into a ranked panel and inserts only the one accepted, as one edit', () => testCandidates(page, dirs)],
      ['runs the extension-host suite (test/e2e/suite) in code-server', () => testExtensionHostSuite({ browser, url, dirs })],
      ["an untrusted workspace's unmask.modelPath is ignored with a notice, completions still come", () => testUntrustedWorkspace({ browser, dirs })],
    ];
    for (const [name, test] of tests.filter(([name]) => !ONLY || ONLY.test(name))) {
      const t0 = Date.now();
      try {
        const detail = await test();
        results.push({ name, ok: true });
        console.log(`ok - ${name} (${Date.now() - t0} ms): ${detail}`);
      } catch (error) {
        results.push({ name, ok: false });
        console.log(`not ok - ${name} (${Date.now() - t0} ms)\n  ${String(error.stack ?? error).split('\n').join('\n  ')}`);
        await screenshot(page, `failure-${results.length}`).catch(() => undefined);
        await page.keyboard.press('Escape').catch(() => undefined);
      }
    }
  } catch (error) {
    results.push({ name: 'setup', ok: false });
    console.log(`not ok - setup\n  ${String(error.stack ?? error).split('\n').join('\n  ')}`);
    if (page) await screenshot(page, 'failure-setup').catch(() => undefined);
  }
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`# e2e: ${passed} passed, ${failed} failed (code-server ${CODE_SERVER_VERSION}, screenshots in test-output/e2e/)`);
  await exitWith(failed === 0 && passed > 0 ? 0 : 1);
}

void main();
