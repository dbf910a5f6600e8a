/**
 * How a command asks the language server for a generation: only while it runs, with a cancellable progress
 * notification, and with every failure shown to the user (with a way to the log) and logged. Callers get the result,
 * or undefined when there is nothing to do because the user cancelled or the request failed.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { messageOf } from './languageServer';

/** The client when its server runs; otherwise tells the user and returns undefined. */
export function runningClient(client: LanguageClient | undefined, log: vscode.LogOutputChannel): LanguageClient | undefined {
  if (client?.isRunning()) return client;
  void vscode.window.showWarningMessage('Unmask: the language server is not running.', 'Show Log').then((pick) => {
    if (pick) log.show(true);
  });
  return undefined;
}

/** Sends `method` with a cancellable progress notification titled `title`; `what` names the command in errors. */
export async function requestWithProgress<R>(
  client: LanguageClient,
  log: vscode.LogOutputChannel,
  what: string,
  title: string,
  method: string,
  params: object,
): Promise<R | undefined> {
  let cancelled = false;
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      (_progress, token) => {
        token.onCancellationRequested(() => (cancelled = true));
        return client.sendRequest<R>(method, params, token);
      },
    );
    return cancelled ? undefined : result;
  } catch (error) {
    if (cancelled) return undefined;
    log.error(`${what} failed: ${messageOf(error)}`);
    void vscode.window.showErrorMessage(`Unmask: ${what} failed: ${messageOf(error)}`, 'Show Log').then((pick) => {
      if (pick) log.show(true);
    });
    return undefined;
  }
}
