/**
 * "Unmask: Fill Selection": asks the server to regenerate the selected code (`unmask/fillRange`), shows the result
 * as a diff against the document, and edits the document only when the user accepts — as one undoable edit, and
 * only if the document did not change in the meantime.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { FillRangeRequest, type FillRangeParams, type FillRangeResult } from '../server/protocol/messages';
import { messageOf } from './languageServer';

export const PREVIEW_SCHEME = 'unmask-preview';
/** Context key that is true while a fill preview waits for accept or reject (shows the diff's title buttons). */
const PENDING_CONTEXT_KEY = 'unmask.fillPreviewActive';

type Decision = 'accept' | 'reject';

interface PendingFill {
  readonly previewUri: vscode.Uri;
  readonly decide: (decision: Decision) => void;
}

export class FillSelection implements vscode.Disposable, vscode.TextDocumentContentProvider {
  private readonly previews = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private pending: PendingFill | undefined;
  private counter = 0;
  private readonly registration: vscode.Disposable;

  constructor(
    private readonly client: () => LanguageClient | undefined,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.registration = vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, this);
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.previews.get(uri.toString()) ?? '';
  }

  /** Resolves the pending preview (from the diff editor's title buttons or the command palette). */
  decide(decision: Decision): void {
    this.pending?.decide(decision);
  }

  async run(editor: vscode.TextEditor | undefined = vscode.window.activeTextEditor): Promise<void> {
    if (!editor) {
      void vscode.window.showInformationMessage('Unmask: open a file and select the code to fill first.');
      return;
    }
    if (editor.selection.isEmpty) {
      void vscode.window.showInformationMessage('Unmask: select the code to fill first.');
      return;
    }
    const client = this.client();
    if (!client || !client.isRunning()) {
      void vscode.window.showWarningMessage('Unmask: the language server is not running.', 'Show Log').then((pick) => {
        if (pick) this.log.show(true);
      });
      return;
    }
    this.pending?.decide('reject');

    const document = editor.document;
    const range = new vscode.Range(editor.selection.start, editor.selection.end);
    const version = document.version;
    const params: FillRangeParams = {
      textDocument: { uri: client.code2ProtocolConverter.asUri(document.uri) },
      range: client.code2ProtocolConverter.asRange(range),
    };
    let result: FillRangeResult;
    let cancelled = false;
    try {
      result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'Unmask: filling the selection…', cancellable: true },
        (_progress, token) => {
          token.onCancellationRequested(() => (cancelled = true));
          return client.sendRequest<FillRangeResult>(FillRangeRequest, params, token);
        },
      );
    } catch (error) {
      if (cancelled) return;
      this.log.error(`Fill Selection failed: ${messageOf(error)}`);
      void vscode.window.showErrorMessage(`Unmask: Fill Selection failed: ${messageOf(error)}`, 'Show Log').then((pick) => {
        if (pick) this.log.show(true);
      });
      return;
    }
    if (cancelled) return;
    if (!result || result.text.trim().length === 0) {
      const why = result?.error ?? 'the model produced nothing for this selection';
      void vscode.window.showWarningMessage(`Unmask: nothing to fill (${why}).`);
      return;
    }
    this.log.info(`Fill Selection: ${result.text.length} characters in ${Math.round(result.latencyMs)} ms.`);

    const decision = await this.preview(document, range, result.text);
    if (decision !== 'accept') return;
    if (document.isClosed || document.version !== version) {
      void vscode.window.showWarningMessage('Unmask: the document changed during the preview; nothing was applied.');
      return;
    }
    const edit = new vscode.WorkspaceEdit();
    edit.replace(document.uri, range, result.text);
    if (!(await vscode.workspace.applyEdit(edit))) {
      void vscode.window.showErrorMessage('Unmask: VS Code refused the edit; nothing was applied.');
    }
  }

  /** Shows the filled document beside the original and waits for accept or reject. */
  private async preview(document: vscode.TextDocument, range: vscode.Range, text: string): Promise<Decision> {
    const previewUri = vscode.Uri.from({
      scheme: PREVIEW_SCHEME,
      path: document.uri.path,
      query: `fill=${++this.counter}`,
    });
    const filled =
      document.getText(new vscode.Range(new vscode.Position(0, 0), range.start)) +
      text +
      document.getText(new vscode.Range(range.end, document.lineAt(document.lineCount - 1).range.end));
    this.previews.set(previewUri.toString(), filled);

    let decide: (decision: Decision) => void = () => undefined;
    const decision = new Promise<Decision>((resolve) => {
      decide = resolve;
    });
    this.pending = { previewUri, decide };
    await vscode.commands.executeCommand('setContext', PENDING_CONTEXT_KEY, true);
    const name = document.uri.path.split('/').pop() ?? 'document';
    await vscode.commands.executeCommand('vscode.diff', document.uri, previewUri, `${name} ↔ Unmask fill (preview)`, {
      preview: true,
    });
    void vscode.window
      .showInformationMessage('Unmask: apply the fill shown in the diff?', 'Accept', 'Reject')
      .then((pick) => decide(pick === 'Accept' ? 'accept' : 'reject'));

    const result = await decision;
    if (this.pending?.previewUri === previewUri) this.pending = undefined;
    this.previews.delete(previewUri.toString());
    await vscode.commands.executeCommand('setContext', PENDING_CONTEXT_KEY, false);
    await this.closePreviewTabs(previewUri);
    await vscode.window.showTextDocument(document, { preview: false });
    return result;
  }

  private async closePreviewTabs(previewUri: vscode.Uri): Promise<void> {
    const tabs = vscode.window.tabGroups.all
      .flatMap((group) => group.tabs)
      .filter((tab) => tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.toString() === previewUri.toString());
    if (tabs.length > 0) await vscode.window.tabGroups.close(tabs);
  }

  dispose(): void {
    this.pending?.decide('reject');
    this.registration.dispose();
    this.changed.dispose();
  }
}
