/**
 * "Unmask: Fill All Holes" and "Unmask: Show Unmasking Order" in a running VS Code, through the `vscode` API, against
 * the real language server and the shipped model. The model may leave holes empty, so the assertions are about the
 * markers and the rest of the file, never about the generated text.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { UnmaskApi } from '../../../client/extension';
import { waitFor } from './wait';

const HOLES = ['def area(width, height):', '    return {{hole:8}}', '', '', 'def perimeter(width, height):', '    {{hole:16}}', '', '# {{hole}}', ''].join('\n');

const previewOpen = (): boolean =>
  vscode.window.tabGroups.all
    .flatMap((group) => group.tabs)
    .some((tab) => tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.scheme === 'unmask-preview');

describe('Fill All Holes and the unmasking order in VS Code', () => {
  let uri: vscode.Uri;
  let document: vscode.TextDocument;

  /** Writes the file with its three holes afresh (through an edit and a save, so that the open document follows). */
  async function reset(): Promise<void> {
    const edit = new vscode.WorkspaceEdit();
    edit.replace(uri, new vscode.Range(0, 0, document.lineCount, 0), HOLES);
    assert.ok(await vscode.workspace.applyEdit(edit));
    assert.ok(await document.save());
  }

  before(async () => {
    const api = await vscode.extensions.getExtension<UnmaskApi>('unmask.unmask')!.activate();
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the test workspace is open');
    uri = vscode.Uri.joinPath(folder.uri, 'fill_holes_suite.py');
    await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(HOLES));
    document = await vscode.workspace.openTextDocument(uri);
    await waitFor('the server to load the model', 180_000, () => {
      const status = api.serverStatus();
      if (status?.state === 'error') throw new Error(`server error: ${status.message}`);
      return status?.state === 'ready' || status?.state === 'busy';
    });
  });

  after(async () => {
    if (!document) return;
    await reset();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.workspace.fs.delete(uri);
  });

  it('previews the filled file and, on accept, replaces every marker in one undoable edit', async () => {
    await vscode.window.showTextDocument(document);
    const run = vscode.commands.executeCommand('unmask.fillHoles');
    // The diff's tab can appear before its document reaches the extension host: wait for both.
    await waitFor('the fill preview', 90_000, previewOpen);
    const preview = await waitFor('the preview document', 10_000, () =>
      vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'unmask-preview' && d.uri.path === uri.path),
    );
    const previewed = preview.getText();
    assert.ok(!previewed.includes('{{hole'), `the preview has no markers left: ${JSON.stringify(previewed)}`);
    assert.equal(document.getText(), HOLES, 'nothing is applied before the user accepts');

    await vscode.commands.executeCommand('unmask.acceptFill');
    await run;
    assert.equal(document.getText(), previewed, 'accepting applies exactly the previewed text');
    assert.equal(previewOpen(), false, 'the preview is closed');

    await vscode.window.showTextDocument(document);
    await vscode.commands.executeCommand('undo');
    assert.equal(document.getText(), HOLES, 'one undo brings every marker back');
    await document.save();
  });

  it('applies nothing when the document changed while the preview was shown', async () => {
    await reset();
    await vscode.window.showTextDocument(document);
    const run = vscode.commands.executeCommand('unmask.fillHoles');
    await waitFor('the fill preview', 90_000, previewOpen);
    const edit = new vscode.WorkspaceEdit();
    edit.insert(uri, new vscode.Position(0, 0), '# edited meanwhile\n');
    assert.ok(await vscode.workspace.applyEdit(edit));

    await vscode.commands.executeCommand('unmask.acceptFill');
    await run;
    assert.equal(document.getText(), `# edited meanwhile\n${HOLES}`, 'the fill was refused; the user\'s edit stays');
  });

  it('opens the unmasking-order view once, beside the editor, however often the command runs', async () => {
    const views = (): vscode.Tab[] =>
      vscode.window.tabGroups.all
        .flatMap((group) => group.tabs)
        .filter((tab) => tab.input instanceof vscode.TabInputWebview && tab.input.viewType.endsWith('unmask.unmaskingOrder'));
    await vscode.window.showTextDocument(document);
    await vscode.commands.executeCommand('unmask.showUnmaskingOrder');
    const [view] = await waitFor('the unmasking-order view', 15_000, () => (views().length > 0 ? views() : undefined));
    assert.equal(view.label, 'Unmasking Order');
    const editorGroup = vscode.window.tabGroups.all.find((group) =>
      group.tabs.some((tab) => tab.input instanceof vscode.TabInputText && tab.input.uri.toString() === uri.toString()),
    );
    assert.ok(editorGroup && view.group.viewColumn !== editorGroup.viewColumn, 'the view opens beside the editor');
    await vscode.commands.executeCommand('unmask.showUnmaskingOrder');
    assert.equal(views().length, 1, 'the command reveals the open view instead of opening another');
  });
});
