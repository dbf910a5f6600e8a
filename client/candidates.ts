/**
 * "Unmask: Regenerate with N Candidates": asks the server for N alternatives at the cursor (`unmask/candidates`: one
 * batched generation, ranked by syntax validity and likelihood), pins them for the inline provider so Alt+] / Alt+[
 * cycles through the same list, shows them in the candidates panel, and inserts the one the user accepts, as one
 * edit at the original position, and only if the document has not changed since the request.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { CandidatesRequest, type CandidatesParams, type CandidatesResult } from '../server/protocol/messages';
import { CandidatesPanel } from './candidatesPanel';
import { panelModel, surroundings } from './candidateView';
import type { UnmaskConfig } from './config';
import type { PinnedCandidates } from './pinnedCandidates';
import { requestWithProgress, runningClient } from './serverRequest';

/** Where the candidates were generated: the document as it was then. */
interface Origin {
  readonly document: vscode.TextDocument;
  readonly version: number;
  readonly position: vscode.Position;
  readonly viewColumn: vscode.ViewColumn | undefined;
}

export class RegenerateCandidates implements vscode.Disposable {
  private readonly panel: CandidatesPanel;

  constructor(
    private readonly client: () => LanguageClient | undefined,
    private readonly config: () => UnmaskConfig,
    private readonly pinned: PinnedCandidates,
    extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.panel = new CandidatesPanel(extensionUri);
  }

  async run(editor: vscode.TextEditor | undefined = vscode.window.activeTextEditor): Promise<void> {
    if (!editor) {
      void vscode.window.showInformationMessage('Unmask: open a file and place the cursor where the candidates should go.');
      return;
    }
    const client = runningClient(this.client(), this.log);
    if (!client) return;
    const origin: Origin = {
      document: editor.document,
      version: editor.document.version,
      position: editor.selection.active,
      viewColumn: editor.viewColumn,
    };
    const count = this.config().candidates;
    const params: CandidatesParams = {
      textDocument: { uri: client.code2ProtocolConverter.asUri(origin.document.uri) },
      position: client.code2ProtocolConverter.asPosition(origin.position),
      count,
    };
    const result = await requestWithProgress<CandidatesResult>(
      client,
      this.log,
      'Regenerate with N Candidates',
      `Unmask: generating ${count} candidate${count === 1 ? '' : 's'}…`,
      CandidatesRequest,
      params,
    );
    if (!result) return;
    this.log.info(
      `Candidates: ${result.candidates.length} distinct of ${result.batch} in ${result.modelCalls} model calls, ${Math.round(result.latencyMs)} ms` +
        (result.error ? ` (${result.error})` : ''),
    );
    if (origin.document.isClosed || origin.document.version !== origin.version) {
      void vscode.window.showWarningMessage('Unmask: the document changed while the candidates were generated; run the command again.');
      return;
    }

    const { document, position } = origin;
    this.pinned.pin({
      uri: document.uri.toString(),
      version: origin.version,
      line: position.line,
      character: position.character,
      texts: result.candidates.map((c) => c.text),
    });
    const model = panelModel(result, surroundings(document.getText(), document.offsetAt(position)), {
      fileName: document.uri.path.split('/').pop() ?? 'document',
      line: position.line,
      character: position.character,
    });
    this.panel.show(model, {
      accept: (index) => void this.accept(origin, result.candidates[index].text),
      closed: () => void this.returnTo(origin),
    });
  }

  dispose(): void {
    this.panel.dispose();
  }

  private async accept(origin: Origin, text: string): Promise<void> {
    const { document, position } = origin;
    if (document.isClosed || document.version !== origin.version) {
      const message = 'the document changed since these candidates were generated, so nothing was inserted. Run "Regenerate with N Candidates" again.';
      this.panel.markStale(message);
      void vscode.window.showWarningMessage(`Unmask: ${message}`);
      return;
    }
    const edit = new vscode.WorkspaceEdit();
    edit.insert(document.uri, position, text);
    if (!(await vscode.workspace.applyEdit(edit))) {
      void vscode.window.showErrorMessage('Unmask: VS Code refused the edit; nothing was inserted.');
      return;
    }
    this.log.info(`Candidates: inserted ${text.length} characters at ${position.line + 1}:${position.character + 1}.`);
    this.panel.close();
    const end = document.positionAt(document.offsetAt(position) + text.length);
    await vscode.window.showTextDocument(document, { viewColumn: origin.viewColumn, selection: new vscode.Range(end, end) });
  }

  /** Back to the editor after the panel closed without a choice, with the cursor where the candidates belong. */
  private async returnTo(origin: Origin): Promise<void> {
    if (origin.document.isClosed) return;
    const unchanged = origin.document.version === origin.version;
    await vscode.window.showTextDocument(origin.document, {
      viewColumn: origin.viewColumn,
      ...(unchanged ? { selection: new vscode.Range(origin.position, origin.position) } : {}),
    });
  }
}
