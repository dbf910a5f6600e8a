/**
 * "Unmask: Fill Selection": asks the server to regenerate the selected code (`unmask/fillRange`), shows the result
 * as a diff against the document (fillPreview.ts), and edits the document only when the user accepts — as one
 * undoable edit, and only if the document did not change in the meantime.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { FillRangeRequest, type FillRangeParams, type FillRangeResult } from '../server/protocol/messages';
import type { FillPreview } from './fillPreview';
import { requestWithProgress, runningClient } from './serverRequest';

export class FillSelection {
  constructor(
    private readonly client: () => LanguageClient | undefined,
    private readonly log: vscode.LogOutputChannel,
    private readonly preview: FillPreview,
  ) {}

  async run(editor: vscode.TextEditor | undefined = vscode.window.activeTextEditor): Promise<void> {
    if (!editor) {
      void vscode.window.showInformationMessage('Unmask: open a file and select the code to fill first.');
      return;
    }
    if (editor.selection.isEmpty) {
      void vscode.window.showInformationMessage('Unmask: select the code to fill first.');
      return;
    }
    const client = runningClient(this.client(), this.log);
    if (!client) return;
    const document = editor.document;
    const range = new vscode.Range(editor.selection.start, editor.selection.end);
    const version = document.version;
    const params: FillRangeParams = {
      textDocument: { uri: client.code2ProtocolConverter.asUri(document.uri) },
      range: client.code2ProtocolConverter.asRange(range),
    };
    const result = await requestWithProgress<FillRangeResult>(
      client,
      this.log,
      'Fill Selection',
      'Unmask: filling the selection…',
      FillRangeRequest,
      params,
    );
    if (!result) return;
    if (result.text.trim().length === 0) {
      const why = result.error ?? 'the model produced nothing for this selection';
      void vscode.window.showWarningMessage(`Unmask: nothing to fill (${why}).`);
      return;
    }
    this.log.info(`Fill Selection: ${result.text.length} characters in ${Math.round(result.latencyMs)} ms.`);

    const filled =
      document.getText(new vscode.Range(new vscode.Position(0, 0), range.start)) +
      result.text +
      document.getText(new vscode.Range(range.end, document.lineAt(document.lineCount - 1).range.end));
    const decision = await this.preview.show(document, {
      filled,
      label: 'Unmask fill',
      question: 'apply the fill shown in the diff?',
    });
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
}
