/**
 * "Unmask: Fill All Holes": finds every {{hole}} / {{hole:N}} marker of the active file (holeMarker.ts), asks the
 * server to fill them all in one joint denoising run (`unmask/fillHoles`: one canvas, so the holes see each other's
 * tokens as they are committed), previews the filled file as a diff (fillPreview.ts) and, only when the user
 * accepts and the document did not change in the meantime, replaces the markers in one undoable edit.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { FillHolesRequest, type FillHolesParams, type FillHolesResult } from '../server/protocol/messages';
import type { FillPreview } from './fillPreview';
import { applyReplacements, holeAsks, holeReplacements } from './holeFill';
import { findHoles, holeMarker } from './holeMarker';
import { requestWithProgress, runningClient } from './serverRequest';

const CHANGED_MESSAGE = 'Unmask: the document changed while the holes were being filled; nothing was applied.';

export class FillHoles {
  constructor(
    private readonly client: () => LanguageClient | undefined,
    private readonly log: vscode.LogOutputChannel,
    private readonly preview: FillPreview,
  ) {}

  async run(editor: vscode.TextEditor | undefined = vscode.window.activeTextEditor): Promise<void> {
    if (!editor) {
      void vscode.window.showInformationMessage(`Unmask: open a file with ${holeMarker()} markers first.`);
      return;
    }
    const document = editor.document;
    const text = document.getText();
    const holes = findHoles(text);
    if (holes.length === 0) {
      void vscode.window.showInformationMessage(
        `Unmask: this file has no holes. Write ${holeMarker()} where code should go, or ${holeMarker(16)} for about 16 tokens.`,
      );
      return;
    }
    const client = runningClient(this.client(), this.log);
    if (!client) return;
    const version = document.version;
    const range = (start: number, end: number): vscode.Range => new vscode.Range(document.positionAt(start), document.positionAt(end));
    const params: FillHolesParams = {
      textDocument: { uri: client.code2ProtocolConverter.asUri(document.uri) },
      holes: holeAsks(holes).map((ask) => ({
        range: client.code2ProtocolConverter.asRange(range(ask.start, ask.end)),
        ...(ask.maxTokens !== undefined ? { maxTokens: ask.maxTokens } : {}),
      })),
    };
    const count = holes.length === 1 ? 'the hole' : `${holes.length} holes`;
    const result = await requestWithProgress<FillHolesResult>(
      client,
      this.log,
      'Fill All Holes',
      `Unmask: filling ${count}…`,
      FillHolesRequest,
      params,
    );
    if (!result) return;
    if (result.texts.length !== holes.length) {
      void vscode.window.showWarningMessage(`Unmask: nothing to fill (${result.error ?? `the server answered for ${result.texts.length} of ${holes.length} holes`}).`);
      return;
    }
    // A preview of a text that is no longer the document's would show an edit that cannot be applied.
    if (document.isClosed || document.version !== version) {
      void vscode.window.showWarningMessage(CHANGED_MESSAGE);
      return;
    }
    this.log.info(`Fill All Holes: ${holes.length} hole(s), ${result.texts.join('').length} characters in ${Math.round(result.latencyMs)} ms.`);

    const replacements = holeReplacements(holes, result.texts);
    const allEmpty = result.texts.every((t) => t.trim() === '');
    const decision = await this.preview.show(document, {
      filled: applyReplacements(text, replacements),
      label: 'Unmask holes',
      question: allEmpty
        ? `the model left ${holes.length === 1 ? 'the hole' : `all ${holes.length} holes`} empty; remove the markers as shown in the diff?`
        : `apply the fill of ${count} shown in the diff?`,
    });
    if (decision !== 'accept') return;
    if (document.isClosed || document.version !== version) {
      void vscode.window.showWarningMessage(CHANGED_MESSAGE);
      return;
    }
    const edit = new vscode.WorkspaceEdit();
    for (const r of replacements) edit.replace(document.uri, range(r.start, r.end), r.text);
    if (!(await vscode.workspace.applyEdit(edit))) {
      void vscode.window.showErrorMessage('Unmask: VS Code refused the edit; nothing was applied.');
    }
  }
}
