/**
 * The extension in a running VS Code, through the `vscode` API, against the real language server and the shipped
 * model. The workspace folder holds main.py (scripts/e2e.mjs and test/e2e/runElectron.mjs create it).
 */
import * as assert from 'node:assert/strict';
import { describe, it, before, after } from 'mocha';
import * as vscode from 'vscode';
import type { UnmaskApi } from '../../../client/extension';
import { waitFor } from './wait';

const EXTENSION_ID = 'unmask.unmask';

function mainPy(): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the test workspace is open');
  return vscode.Uri.joinPath(folder.uri, 'main.py');
}

/** Replaces the whole document text through an edit (the test's own typing). */
async function setText(editor: vscode.TextEditor, text: string): Promise<void> {
  const document = editor.document;
  const all = new vscode.Range(0, 0, document.lineCount, 0);
  assert.ok(await editor.edit((edit) => edit.replace(all, text)));
}

describe('Unmask in VS Code', () => {
  let api: UnmaskApi;
  let editor: vscode.TextEditor;
  let original: string;
  let opened = false;

  before(async () => {
    const extension = vscode.extensions.getExtension<UnmaskApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is installed`);
    api = await extension.activate();
    const document = await vscode.workspace.openTextDocument(mainPy());
    original = document.getText();
    editor = await vscode.window.showTextDocument(document);
    opened = true;
    await waitFor('the server to load the model', 180_000, () => {
      const status = api.serverStatus();
      if (status?.state === 'error') throw new Error(`server error: ${status.message}`);
      return status?.state === 'ready' || status?.state === 'busy';
    });
  });

  after(async () => {
    if (!opened) return; // before() failed early; there is nothing to restore.
    await setText(editor, original);
    await editor.document.save();
  });

  it('registers every command it contributes', async () => {
    const manifest = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as {
      contributes: { commands: { command: string }[] };
    };
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const { command } of manifest.contributes.commands) assert.ok(registered.has(command), command);
  });

  it('reports the model and device once ready', () => {
    const status = api.serverStatus();
    assert.ok(status?.modelId, 'a model id');
    assert.ok(status?.device, 'a device');
  });

  /**
   * Writes `text`, triggers an inline completion at its end and accepts it; returns the document text afterwards.
   * The text is written afresh every time: VS Code does not ask providers again for the same document version and
   * position, so a retry without a new version would only replay the previous answer.
   */
  async function triggerAndAccept(text: string, waitMs: number): Promise<string> {
    const document = editor.document;
    if (document.getText() === text) await setText(editor, '');
    await setText(editor, text);
    const end = document.positionAt(text.length);
    editor.selection = new vscode.Selection(end, end);
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
    return document.getText();
  }

  const PROMPT = 'def add(a, b):\n    return ';

  it('completes at the cursor from the model, and accepting inserts the completion there', async () => {
    const after = await waitFor('an accepted inline completion', 90_000, async () => {
      const text = await triggerAndAccept(PROMPT, 1500);
      return text !== PROMPT ? text : undefined;
    });
    assert.ok(after.startsWith(PROMPT), `text before the cursor is kept: ${JSON.stringify(after)}`);
    assert.ok(after.length > PROMPT.length);
  });

  it('does not complete while turned off, and completes again when turned back on', async () => {
    // The same spot as above, where the model is known to complete (and the client has it cached).
    await vscode.commands.executeCommand('unmask.toggle');
    try {
      assert.equal(vscode.workspace.getConfiguration('unmask').get('enable'), false);
      for (let attempt = 0; attempt < 3; attempt++) {
        assert.equal(await triggerAndAccept(PROMPT, 2000), PROMPT, 'nothing is inserted while off');
      }
    } finally {
      await vscode.commands.executeCommand('unmask.toggle');
    }
    assert.equal(vscode.workspace.getConfiguration('unmask').get('enable'), true);
    await waitFor('a completion once back on', 60_000, async () => ((await triggerAndAccept(PROMPT, 1500)) !== PROMPT ? true : undefined));
  });

  it('previews Fill Selection and changes the document only on accept, as one undoable edit', async () => {
    const text = 'def mean(values):\n    total = 0\n    for v in values:\n        total += v\n    return total / len(values)\n';
    await setText(editor, text);
    await editor.document.save();
    const selection = new vscode.Selection(1, 0, 3, 18);
    const previewOpen = () =>
      vscode.window.tabGroups.all
        .flatMap((group) => group.tabs)
        .some((tab) => tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.scheme === 'unmask-preview');

    editor.selection = selection;
    const rejected = vscode.commands.executeCommand('unmask.fillSelection');
    await waitFor('the fill preview', 90_000, previewOpen);
    await vscode.commands.executeCommand('unmask.rejectFill');
    await rejected;
    assert.equal(editor.document.getText(), text, 'reject leaves the document alone');
    assert.equal(editor.document.isDirty, false);

    editor = await vscode.window.showTextDocument(editor.document);
    editor.selection = selection;
    const accepted = vscode.commands.executeCommand('unmask.fillSelection');
    await waitFor('the fill preview', 90_000, previewOpen);
    // The diff tab names the preview document; the workspace may not list it among its documents yet.
    const previewTab = vscode.window.tabGroups.all
      .flatMap((group) => group.tabs)
      .find((tab) => tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.scheme === 'unmask-preview');
    assert.ok(previewTab, 'the preview is shown');
    const preview = await vscode.workspace.openTextDocument((previewTab.input as vscode.TabInputTextDiff).modified);
    const previewed = preview.getText();
    await vscode.commands.executeCommand('unmask.acceptFill');
    await accepted;
    const filled = editor.document.getText();
    assert.equal(filled, previewed, 'accepting applies exactly the previewed text');
    const head = text.slice(0, editor.document.offsetAt(selection.start));
    const tail = text.slice(text.indexOf('\n    return'));
    assert.ok(filled.startsWith(head) && filled.endsWith(tail), `only the selection changed: ${JSON.stringify(filled)}`);
    assert.equal(previewOpen(), false, 'the preview is closed');

    editor = await vscode.window.showTextDocument(editor.document);
    await vscode.commands.executeCommand('undo');
    assert.equal(editor.document.getText(), text, 'one undo restores the text');
  });
});
