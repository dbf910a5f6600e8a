/**
 * The ranked candidates of the last "Regenerate with N Candidates", kept for the inline completion provider: at the
 * same position of the same document version it answers with them, in rank order, so that VS Code's next/previous
 * inline suggestion commands (Alt+] / Alt+[) cycle through exactly the list the panel shows, without a new
 * generation. Any edit changes the version and retires the list. It does not import `vscode`.
 */

export interface PinnedList {
  readonly uri: string;
  readonly version: number;
  readonly line: number;
  readonly character: number;
  /** Texts to insert at the position, best first. */
  readonly texts: readonly string[];
}

export class PinnedCandidates {
  private pinned: PinnedList | undefined;

  /** Replaces the list (only the latest request's candidates are kept). */
  pin(list: PinnedList): void {
    this.pinned = list.texts.length > 0 ? list : undefined;
  }

  /** The texts pinned for exactly this document version and position, or undefined. */
  get(uri: string, version: number, line: number, character: number): readonly string[] | undefined {
    const p = this.pinned;
    if (!p || p.uri !== uri) return undefined;
    if (p.version !== version) {
      // The text changed under the list, so it can never match again.
      this.pinned = undefined;
      return undefined;
    }
    return p.line === line && p.character === character ? p.texts : undefined;
  }

  /** Drops the list of a closed document (a reopened one starts its versions anew). */
  forget(uri: string): void {
    if (this.pinned?.uri === uri) this.pinned = undefined;
  }
}
