/**
 * The Unmask extension's entry point. It starts the language server (which hosts the model), shows its state in
 * the status bar and its log in the "Unmask" output channel, and registers the commands from package.json. Inline
 * completions come from the server through the LSP provider that vscode-languageclient registers; the client-side
 * policy for them (on/off, debounce, cache, ...) is in inlineMiddleware.ts.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { PingRequest, StatusNotification, type StatusParams, TraceNotification, type TraceParams } from '../server/protocol/messages';
import { CompletionCache } from './cache';
import { AdaptiveDebounce } from './debouncePolicy';
import { RegenerateCandidates } from './candidates';
import { languageEnabled, readConfigReport, type UnmaskConfig } from './config';
import { EditTracker } from './editTracker';
import { Enablement } from './enablement';
import { FillHoles } from './fillHoles';
import { FillPreview } from './fillPreview';
import { FillSelection } from './fillSelection';
import { Heartbeat } from './heartbeat';
import { inlineCompletionMiddleware } from './inlineMiddleware';
import { createLanguageClient, messageOf } from './languageServer';
import { PinnedCandidates } from './pinnedCandidates';
import { RestartPolicy } from './restartPolicy';
import { StatusBar } from './statusBar';
import { ignoredModelPathNotice, type SettingsFile, workspaceModelPath } from './trust';
import { otherMode } from './triggerPolicy';
import { UnmaskingOrderView } from './visualizer';

const SNOOZE_MINUTES = 5;
/** Settings whose change does not make cached completions stale (the cache holds automatic completions only). */
const SETTINGS_KEEPING_CACHE = ['enable', 'triggerMode', 'languages', 'debounceMs', 'debounceMode', 'candidates', 'idleUnloadMinutes'];

let client: LanguageClient | undefined;

/** What activate() returns: read-only state for other extensions and for the extension-host test suite. */
export interface UnmaskApi {
  /** The server's last `unmask/status`, or undefined while it starts. */
  serverStatus(): StatusParams | undefined;
}

export async function activate(context: vscode.ExtensionContext): Promise<UnmaskApi> {
  const log = vscode.window.createOutputChannel('Unmask', { log: true });
  context.subscriptions.push(log);

  /** Reads the settings and logs every value that could not be used as written. */
  const loadConfig = (): UnmaskConfig => {
    const settings = vscode.workspace.getConfiguration('unmask');
    const report = readConfigReport((key) => settings.get(key));
    for (const problem of report.problems) log.warn(`Setting ignored or adjusted: ${problem}`);
    return report.config;
  };
  let config = loadConfig();
  if (!vscode.workspace.isTrusted) void noticeIgnoredModelPath(log);
  const enablement = new Enablement();
  const edits = new EditTracker();
  const cache = new CompletionCache();
  const restarts = new RestartPolicy();
  const statusBar = new StatusBar('unmask.showMenu');
  const preview = new FillPreview();
  const fill = new FillSelection(() => client, log, preview);
  const fillHoles = new FillHoles(() => client, log, preview);
  // The server's generation traces, forwarded from the one notification handler the client may register.
  const traces = new vscode.EventEmitter<TraceParams>();
  const unmaskingOrder = new UnmaskingOrderView(context.extensionUri, () => client, log, traces.event);
  context.subscriptions.push(statusBar, preview, traces, unmaskingOrder);
  // The ranked list of the last "Regenerate with N Candidates", which the inline provider serves for Alt+] / Alt+[.
  const pinned = new PinnedCandidates();
  const debounce = new AdaptiveDebounce();
  const candidates = new RegenerateCandidates(() => client, () => config, pinned, context.extensionUri, log);
  context.subscriptions.push(candidates);

  const showError = (message: string): void => {
    void vscode.window.showErrorMessage(message, 'Show Log').then((pick) => {
      if (pick) log.show(true);
    });
  };

  /** Re-renders the client half of the status bar (on/off for the active editor, snooze time left). */
  const refreshClientStatus = (clientError?: string): void => {
    const languageId = vscode.window.activeTextEditor?.document.languageId;
    const now = Date.now();
    statusBar.setClient({
      off: enablement.offReason(config, languageId, now),
      snoozeMinutesLeft: Math.ceil(enablement.snoozeLeftMs(now) / 60_000),
      languageId,
      clientError,
      triggerMode: config.triggerMode,
      minConfidence: config.minConfidence,
    });
  };

  // One timer keeps the snooze countdown current and ends the snooze on time.
  const tick = setInterval(() => refreshClientStatus(), 30_000);
  context.subscriptions.push({ dispose: () => clearInterval(tick) });

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration('unmask')) return;
      config = loadConfig();
      const modelSettingChanged = Object.keys(config).some(
        (key) => !SETTINGS_KEEPING_CACHE.includes(key) && event.affectsConfiguration(`unmask.${key}`),
      );
      if (modelSettingChanged) cache.clear();
      refreshClientStatus();
    }),
    vscode.workspace.onDidChangeTextDocument((event) =>
      edits.record(event.document.uri.toString(), event.document.version, event.contentChanges),
    ),
    vscode.workspace.onDidCloseTextDocument((document) => {
      edits.forget(document.uri.toString());
      pinned.forget(document.uri.toString());
      cache.clear(document.uri.toString());
    }),
    vscode.window.onDidChangeActiveTextEditor(() => refreshClientStatus()),
  );

  const hideGhostText = (): Thenable<unknown> => vscode.commands.executeCommand('editor.action.inlineSuggest.hide');

  const toggle = async (): Promise<void> => {
    const settings = vscode.workspace.getConfiguration('unmask');
    const inspected = settings.inspect<boolean>('enable');
    const target =
      inspected?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    const enable = !config.enable;
    await settings.update('enable', enable, target);
    if (enable) enablement.resume();
    else await hideGhostText();
    void vscode.window.setStatusBarMessage(`Unmask inline completions ${enable ? 'on' : 'off'}`, 3000);
  };

  const snooze = async (): Promise<void> => {
    enablement.snooze(SNOOZE_MINUTES, Date.now());
    await hideGhostText();
    refreshClientStatus();
  };

  /** Asks for a suggestion at the cursor, in either trigger mode: an explicit request, answered with ranked alternatives. */
  const triggerSuggestion = (): Thenable<unknown> => vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');

  const toggleTriggerMode = async (): Promise<void> => {
    const settings = vscode.workspace.getConfiguration('unmask');
    const inspected = settings.inspect<string>('triggerMode');
    const target =
      inspected?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    const mode = otherMode(config.triggerMode);
    await settings.update('triggerMode', mode, target);
    if (mode === 'manual') await hideGhostText();
    void vscode.window.setStatusBarMessage(`Unmask trigger mode: ${mode}`, 3000);
  };

  const toggleLanguage = async (languageId: string): Promise<void> => {
    const settings = vscode.workspace.getConfiguration('unmask');
    const languages = { ...config.languages, [languageId]: !languageEnabled(config, languageId) };
    await settings.update('languages', languages, vscode.ConfigurationTarget.Global);
  };

  // A server stuck in a loop keeps its connection open and answers nothing: restart it as if it had crashed.
  const heartbeat = new Heartbeat({
    ping: () => client?.sendRequest(PingRequest) ?? Promise.resolve(),
    running: () => client?.isRunning() ?? false,
    onStuck: (silentMs) => void restartStuckServer(silentMs),
    now: () => Date.now(),
    setTimer: (fn, ms) => setTimeout(fn, ms),
    clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
  });
  context.subscriptions.push({ dispose: () => heartbeat.stop() });

  const restartStuckServer = async (silentMs: number): Promise<void> => {
    if (!client) return;
    const silent = `has not answered for ${Math.round(silentMs / 1000)} s`;
    if (!restarts.shouldRestart(Date.now())) {
      log.error(`The Unmask server ${silent} and keeps getting stuck; stopping it.`);
      const message = 'Unmask: the language server kept getting stuck and was stopped (Restart Server from the menu to try again).';
      await client.stop().catch(() => undefined);
      refreshClientStatus(message);
      showError(message);
      return;
    }
    log.error(`The Unmask server ${silent} (stuck); restarting it.`);
    statusBar.setServer(undefined);
    cache.clear();
    try {
      await client.restart();
      heartbeat.start();
      void vscode.window.showWarningMessage('Unmask: the language server stopped responding and was restarted.', 'Show Log').then((pick) => {
        if (pick) log.show(true);
      });
    } catch (error) {
      refreshClientStatus(messageOf(error));
      showError(`Unmask: restarting the stuck language server failed: ${messageOf(error)}`);
    }
  };

  const restartServer = async (): Promise<void> => {
    restarts.reset();
    if (!client) {
      await startClient();
      return;
    }
    try {
      statusBar.setServer(undefined);
      await client.restart();
      heartbeat.start();
      log.info('Server restarted on request.');
    } catch (error) {
      refreshClientStatus(messageOf(error));
      showError(`Unmask: restarting the language server failed: ${messageOf(error)}`);
    }
  };

  const showMenu = async (): Promise<void> => {
    const languageId = vscode.window.activeTextEditor?.document.languageId;
    const snoozed = enablement.snoozeLeftMs(Date.now()) > 0;
    type Action = vscode.QuickPickItem & { run: () => unknown };
    const actions: Action[] = [
      {
        label: config.enable ? '$(circle-slash) Turn inline completions off' : '$(check) Turn inline completions on',
        run: toggle,
      },
      snoozed
        ? { label: '$(play) Resume inline completions', run: () => (enablement.resume(), refreshClientStatus()) }
        : { label: `$(clock) Snooze inline completions for ${SNOOZE_MINUTES} minutes`, run: snooze },
      {
        label:
          config.triggerMode === 'manual'
            ? '$(zap) Suggest as I type (trigger mode automatic)'
            : '$(keyboard) Suggest only when I ask (trigger mode manual)',
        run: toggleTriggerMode,
      },
    ];
    if (languageId) {
      const on = languageEnabled(config, languageId);
      actions.push({
        label: `${on ? '$(circle-slash) Turn off' : '$(check) Turn on'} for ${languageId} files`,
        run: () => toggleLanguage(languageId),
      });
    }
    actions.push(
      { label: '$(output) Show server log', run: () => log.show(true) },
      { label: '$(debug-restart) Restart server', run: restartServer },
      { label: '$(gear) Settings', run: () => vscode.commands.executeCommand('workbench.action.openSettings', 'unmask.') },
    );
    const status = statusBar.serverStatus;
    const pick = await vscode.window.showQuickPick(actions, {
      title: 'Unmask',
      placeHolder: status ? `Server ${status.state}${status.device ? ` on ${status.device}` : ''}` : 'Server starting',
    });
    await pick?.run();
  };

  context.subscriptions.push(
    vscode.commands.registerCommand('unmask.fillSelection', () => fill.run()),
    vscode.commands.registerCommand('unmask.fillHoles', () => fillHoles.run()),
    vscode.commands.registerCommand('unmask.regenerateCandidates', () => candidates.run()),
    vscode.commands.registerCommand('unmask.showUnmaskingOrder', () => unmaskingOrder.show()),
    vscode.commands.registerCommand('unmask.acceptFill', () => preview.decide('accept')),
    vscode.commands.registerCommand('unmask.rejectFill', () => preview.decide('reject')),
    vscode.commands.registerCommand('unmask.toggle', toggle),
    vscode.commands.registerCommand('unmask.snooze', snooze),
    vscode.commands.registerCommand('unmask.triggerSuggestion', triggerSuggestion),
    vscode.commands.registerCommand('unmask.toggleTriggerMode', toggleTriggerMode),
    vscode.commands.registerCommand('unmask.showLog', () => log.show(true)),
    vscode.commands.registerCommand('unmask.restartServer', restartServer),
    vscode.commands.registerCommand('unmask.showMenu', showMenu),
  );

  let lastErrorShown: string | undefined;
  const onStatus = (status: StatusParams): void => {
    statusBar.setServer(status);
    unmaskingOrder.serverState(status.state);
    if (status.state === 'error' && status.message && status.message !== lastErrorShown) {
      lastErrorShown = status.message;
      log.error(`Server error: ${status.message}`);
      void vscode.window.showErrorMessage(`Unmask: ${status.message}`, 'Show Log', 'Open Settings').then((pick) => {
        if (pick === 'Show Log') log.show(true);
        if (pick === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'unmask.');
      });
    }
    if (status.state === 'ready') lastErrorShown = undefined;
    if (status.state === 'loading') cache.clear(); // A (re)loaded model makes cached completions stale.
  };

  async function startClient(): Promise<void> {
    try {
      client = createLanguageClient({
        context,
        log,
        config: () => config,
        restarts,
        provideInlineCompletionItems: inlineCompletionMiddleware({ config: () => config, enablement, edits, cache, pinned, debounce, log }),
        onFatal: (message) => {
          refreshClientStatus(message);
          showError(message);
        },
        onRestarted: () => {
          statusBar.setServer(undefined);
          cache.clear();
          void vscode.window.showWarningMessage(
            'Unmask: the language server stopped unexpectedly and was restarted.',
            'Show Log',
          ).then((pick) => {
            if (pick) log.show(true);
          });
        },
      });
      context.subscriptions.push(client.onNotification(StatusNotification, onStatus));
      context.subscriptions.push(client.onNotification(TraceNotification, (trace: TraceParams) => traces.fire(trace)));
      await client.start();
      heartbeat.start();
      refreshClientStatus();
      log.info('Unmask language server started.');
    } catch (error) {
      const message = `Unmask could not start its language server: ${messageOf(error)}`;
      log.error(message);
      refreshClientStatus(messageOf(error));
      showError(message);
    }
  }

  refreshClientStatus();
  await startClient();
  return { serverStatus: () => statusBar.serverStatus };
}

export async function deactivate(): Promise<void> {
  const running = client;
  client = undefined;
  if (running?.isRunning()) await running.stop();
}

/** In Restricted Mode, tells the user when the workspace's own unmask.modelPath is being ignored (client/trust.ts). */
async function noticeIgnoredModelPath(log: vscode.LogOutputChannel): Promise<void> {
  const read = async (uri: vscode.Uri, kind: SettingsFile['kind']): Promise<SettingsFile | undefined> => {
    try {
      return { text: new TextDecoder().decode(await vscode.workspace.fs.readFile(uri)), kind };
    } catch {
      return undefined; // No settings file there.
    }
  };
  const uris: [vscode.Uri, SettingsFile['kind']][] = (vscode.workspace.workspaceFolders ?? []).map((f) => [vscode.Uri.joinPath(f.uri, '.vscode', 'settings.json'), 'folder']);
  const workspaceFile = vscode.workspace.workspaceFile;
  if (workspaceFile && workspaceFile.scheme !== 'untitled') uris.push([workspaceFile, 'workspace']);
  const files = (await Promise.all(uris.map(([uri, kind]) => read(uri, kind)))).filter((f): f is SettingsFile => f !== undefined);
  const notice = ignoredModelPathNotice(vscode.workspace.isTrusted, workspaceModelPath(files));
  if (!notice) return;
  log.warn(`Restricted Mode: ${notice}`);
  const pick = await vscode.window.showWarningMessage(`Unmask: ${notice}`, 'Manage Workspace Trust');
  if (pick) void vscode.commands.executeCommand('workbench.trust.manage');
}
