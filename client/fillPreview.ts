/**
 * The preview that every fill command shows before it edits anything: the document beside the document as it would
 * be after the fill, in a diff editor, with Accept / Reject in the diff's title bar, in a notification and in the
 * command palette (Ctrl+Alt+Enter, the key that asked for the fill, accepts). One preview is pending at a time; a new
 * one rejects the one before.
 */
import * as vscode from 'vscode';

export const PREVIEW_SCHEME = 'unmask-preview';
/** Context key that is true while a fill preview waits for accept or reject (shows the diff's title buttons). */
const PENDING_CONTEXT_KEY = 'unmask.fillPreviewActive';

export type Decision = 'accept' | 'reject';

export interface PreviewText {
  /** The whole document as it would be after the fill. */
  readonly filled: string;
  /** Names the preview in the diff's title ("main.py ↔ <label> (preview)"). */
  readonly label: string;
  /** The question of the notification, for example "apply the fill shown in the diff?". */
  readonly question: string;
}

interface PendingPreview {
  readonly previewUri: vscode.Uri;
  readonly decide: (decision: Decision) => void;
}

export class FillPreview implements vscode.Disposable, vscode.TextDocumentContentProvider {
  private readonly previews = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private pending: PendingPreview | undefined;
  private counter = 0;
  private readonly registration: vscode.Disposable;

  constructor() {
    this.registration = vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, this);
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.previews.get(uri.toString()) ?? '';
  }

  /** Resolves the pending preview (from the diff editor's title buttons or the command palette). */
  decide(decision: Decision): void {
    this.pending?.decide(decision);
  }

  /** Shows the filled document beside the original and waits for accept or reject; then closes the diff. */
  async show(document: vscode.TextDocument, preview: PreviewText): Promise<Decision> {
    this.pending?.decide('reject');
    const previewUri = vscode.Uri.from({
      scheme: PREVIEW_SCHEME,
      path: document.uri.path,
      query: `fill=${++this.counter}`,
    });
    this.previews.set(previewUri.toString(), preview.filled);

    let decide: (decision: Decision) => void = () => undefined;
    const decision = new Promise<Decision>((resolve) => {
      decide = resolve;
    });
    this.pending = { previewUri, decide };
    await vscode.commands.executeCommand('setContext', PENDING_CONTEXT_KEY, true);
    const name = document.uri.path.split('/').pop() ?? 'document';
    await vscode.commands.executeCommand('vscode.diff', document.uri, previewUri, `${name} ↔ ${preview.label} (preview)`, {
      preview: true,
    });
    void vscode.window
      .showInformationMessage(`Unmask: ${preview.question}`, 'Accept', 'Reject')
      .then((pick) => decide(pick === 'Accept' ? 'accept' : 'reject'));

    const result = await decision;
    this.previews.delete(previewUri.toString());
    // A preview that a newer one replaced leaves the context key and the focus to the newer one.
    const current = this.pending?.previewUri === previewUri;
    if (current) this.pending = undefined;
    await this.closePreviewTabs(previewUri);
    if (current) {
      await vscode.commands.executeCommand('setContext', PENDING_CONTEXT_KEY, false);
      await vscode.window.showTextDocument(document, { preview: false });
    }
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
