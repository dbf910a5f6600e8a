/**
 * The status bar item: server state, device and last latency (from `unmask/status`) plus the client's on/off state
 * for the active editor. Clicking it opens the Unmask menu (a quick pick). The wording lives in statusText.ts.
 */
import * as vscode from 'vscode';
import type { StatusParams } from '../server/protocol/messages';
import { describeStatus, type ClientSide } from './statusText';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private server: StatusParams | undefined;
  private client: ClientSide = {};

  constructor(menuCommand: string) {
    this.item = vscode.window.createStatusBarItem('unmask.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Unmask';
    this.item.command = menuCommand;
    this.render();
    this.item.show();
  }

  get serverStatus(): StatusParams | undefined {
    return this.server;
  }

  setServer(status: StatusParams | undefined): void {
    this.server = status;
    this.render();
  }

  setClient(client: ClientSide): void {
    this.client = client;
    this.render();
  }

  dispose(): void {
    this.item.dispose();
  }

  private render(): void {
    const view = describeStatus(this.server, this.client);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.error
      ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : view.warning
        ? new vscode.ThemeColor('statusBarItem.warningBackground')
        : undefined;
  }
}
