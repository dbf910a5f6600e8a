/**
 * "Unmask: Show Unmasking Order": a webview panel that replays the last generation step by step (media/visualizer.js
 * draws it; visualizerModel.ts computes what to draw). It starts from the newest trace this extension has seen,
 * written into the page (the server's last trace, `unmask/lastTrace`, when it has seen none), and follows new
 * generations live through the `unmask/trace` notifications, which the extension forwards here.
 *
 * The page keeps its replay position with the webview's getState/setState instead of retaining a hidden webview, so
 * a hidden panel costs no memory and resumes where it was when shown again; a serializer restores it after a reload.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { LastTraceRequest, type ServerState, type TraceParams } from '../server/protocol/messages';
import { messageOf } from './languageServer';
import { visualizerHtml } from './visualizerHtml';
import { type Replay, replayOf } from './visualizerModel';

export const VISUALIZER_VIEW_TYPE = 'unmask.unmaskingOrder';

/** What the page sends: "ready" once its script runs (again after each reload), "rendered" after drawing. */
type FromPage = { type: 'ready' } | { type: 'rendered' };
/** What the page gets: the replay to show (null: no generation yet); `initial` answers "ready". */
export interface ToPage {
  type: 'replay';
  replay: Replay | null;
  initial: boolean;
}

export class UnmaskingOrderView implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  /** The newest trace the server sent, partial or final. */
  private latest: TraceParams | undefined;
  /** True when the generation of a partial `latest` ended without a final trace (it was cancelled). */
  private stopped = false;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly client: () => LanguageClient | undefined,
    private readonly log: vscode.LogOutputChannel,
    traces: vscode.Event<TraceParams>,
  ) {
    this.disposables.push(
      traces((trace) => this.onTrace(trace)),
      vscode.window.registerWebviewPanelSerializer(VISUALIZER_VIEW_TYPE, {
        deserializeWebviewPanel: async (panel) => this.attach(panel, performance.now()),
      }),
    );
  }

  /** Opens the panel beside the editor (or reveals it), leaving the focus in the editor. */
  show(): void {
    const openedAt = performance.now();
    if (this.panel) {
      this.panel.reveal(undefined, true);
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      VISUALIZER_VIEW_TYPE,
      'Unmasking Order',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      this.webviewOptions(),
    );
    this.attach(panel, openedAt);
  }

  private webviewOptions(): vscode.WebviewOptions {
    return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'media')] };
  }

  private attach(panel: vscode.WebviewPanel, openedAt: number): void {
    if (this.panel && this.panel !== panel) this.panel.dispose();
    this.panel = panel;
    const webview = panel.webview;
    webview.options = this.webviewOptions();
    const media = (file: string): string => webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', file)).toString();
    // The page draws the newest trace it is written with at once; its "ready" asks again for anything newer (and the
    // server's last trace when this extension has seen none).
    const initial = this.latest ? replayOf(this.latest, this.stopped) : null;
    webview.html = visualizerHtml(
      {
        cspSource: webview.cspSource,
        nonce: randomBytes(16).toString('base64'),
        scriptUri: media('visualizer.js'),
        styleUri: media('visualizer.css'),
      },
      initial,
    );
    let timed = false;
    const subscriptions = [
      webview.onDidReceiveMessage(async (message: FromPage) => {
        if (message?.type === 'ready') {
          const trace = this.latest ?? (await this.lastTrace());
          this.post(panel, { type: 'replay', replay: trace ? replayOf(trace, this.stopped) : null, initial: true });
        } else if (message?.type === 'rendered' && !timed) {
          timed = true;
          this.log.info(`Unmasking order: first render ${Math.round(performance.now() - openedAt)} ms after opening.`);
        }
      }),
      panel.onDidDispose(() => {
        if (this.panel === panel) this.panel = undefined;
        for (const subscription of subscriptions) subscription.dispose();
      }),
    ];
  }

  private onTrace(trace: TraceParams): void {
    this.latest = trace;
    this.stopped = false;
    if (this.panel?.visible) this.post(this.panel, { type: 'replay', replay: replayOf(trace), initial: false });
  }

  /**
   * Called with every server state. A generation sends its final trace before the server stops being busy, so a
   * partial trace that is still the newest once the server is no longer busy belongs to a cancelled generation
   * (typing on aborts the previous inline request): the view then says so instead of "running".
   */
  serverState(state: ServerState): void {
    if (state === 'busy' || !this.latest?.partial || this.stopped) return;
    this.stopped = true;
    if (this.panel?.visible) this.post(this.panel, { type: 'replay', replay: replayOf(this.latest, true), initial: false });
  }

  /** The server's last finished generation; null when there is none or the server cannot say. */
  private async lastTrace(): Promise<TraceParams | null> {
    const client = this.client();
    if (!client?.isRunning()) return null;
    try {
      const trace = await client.sendRequest<TraceParams | null>(LastTraceRequest);
      // A live trace that arrived while the request was under way is newer.
      return this.latest ?? trace;
    } catch (error) {
      this.log.warn(`Unmasking order: could not fetch the last trace: ${messageOf(error)}`);
      return null;
    }
  }

  private post(panel: vscode.WebviewPanel, message: ToPage): void {
    void panel.webview.postMessage(message).then(undefined, (error: unknown) => {
      this.log.warn(`Unmasking order: could not update the view: ${messageOf(error)}`);
    });
  }

  dispose(): void {
    this.panel?.dispose();
    for (const disposable of this.disposables) disposable.dispose();
  }
}
