/**
 * The webview panel that lists the ranked candidates of "Regenerate with N Candidates" (the page is
 * candidatesHtml.ts with media/candidates.js and .css). One panel is reused for every run. It only reports the
 * user's choice: inserting is the caller's job, so that the document is edited in one place.
 */
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import { candidatesHtml } from './candidatesHtml';
import type { PanelModel } from './candidateView';

export interface PanelHandlers {
  /** The user chose the candidate at this index of the model's entries. */
  readonly accept: (index: number) => void;
  /** The user closed the panel (Esc or the tab's close button). */
  readonly closed: () => void;
}

export class CandidatesPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private handlers: PanelHandlers | undefined;
  private entries = 0;

  constructor(private readonly extensionUri: vscode.Uri) {}

  /** Shows `model` beside the editor, focused so that its keys work at once; replaces what the panel showed. */
  show(model: PanelModel, handlers: PanelHandlers): void {
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    if (!this.panel) {
      this.panel = vscode.window.createWebviewPanel(
        'unmask.candidates',
        'Unmask Candidates',
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: false },
        { enableScripts: true, localResourceRoots: [media] },
      );
      this.panel.webview.onDidReceiveMessage((message: unknown) => this.receive(message));
      this.panel.onDidDispose(() => {
        this.panel = undefined;
        const handlers = this.handlers;
        this.handlers = undefined;
        handlers?.closed();
      });
    } else {
      this.panel.reveal(vscode.ViewColumn.Beside, false);
    }
    this.handlers = handlers;
    this.entries = model.entries.length;
    const webview = this.panel.webview;
    this.panel.title = `Unmask: ${model.entries.length} Candidate${model.entries.length === 1 ? '' : 's'}`;
    webview.html = candidatesHtml(
      {
        cspSource: webview.cspSource,
        nonce: crypto.randomBytes(16).toString('base64'),
        scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'candidates.js')).toString(),
        styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'candidates.css')).toString(),
      },
      model,
    );
  }

  /** Tells the page that its candidates no longer fit the document, so choosing one is refused. */
  markStale(message: string): void {
    void this.panel?.webview.postMessage({ type: 'stale', message });
  }

  /** Closes the panel without reporting it as closed by the user. */
  close(): void {
    this.handlers = undefined;
    this.panel?.dispose();
  }

  dispose(): void {
    this.close();
  }

  /** The page's messages (media/candidates.js): {type: 'accept', index} or {type: 'close'}; others are ignored. */
  private receive(message: unknown): void {
    const m = (message ?? {}) as { type?: unknown; index?: unknown };
    if (m.type === 'close') {
      this.panel?.dispose();
    } else if (m.type === 'accept' && typeof m.index === 'number' && Number.isInteger(m.index) && m.index >= 0 && m.index < this.entries) {
      this.handlers?.accept(m.index);
    }
  }
}
