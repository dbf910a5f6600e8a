/**
 * Remembers, per document, whether its latest edit only deleted text. Automatic inline completions are not
 * triggered right after a backspace or delete: the user is taking text away, and a suggestion to put some back is
 * the "too eager" complaint (Tabby #2840). An explicit trigger (Invoke) is still honoured. No `vscode` import: the
 * caller feeds it the fields of TextDocumentChangeEvent it needs.
 */

/** The shape of one vscode.TextDocumentContentChangeEvent that matters here. */
export interface ContentChange {
  readonly rangeLength: number;
  readonly text: string;
}

export class EditTracker {
  /** Document version after its last edit -> whether that edit was a pure deletion. */
  private readonly last = new Map<string, { version: number; deletion: boolean }>();

  /** Records a document change (one event may hold several changes, e.g. multi-cursor edits). */
  record(uri: string, version: number, changes: readonly ContentChange[]): void {
    if (changes.length === 0) return; // Dirty-state or metadata events change no text.
    const deletion = changes.every((c) => c.text === '' && c.rangeLength > 0);
    this.last.set(uri, { version, deletion });
  }

  /** True when the document, at exactly this version, was last changed by deleting text. */
  lastEditWasDeletion(uri: string, version: number): boolean {
    const entry = this.last.get(uri);
    return entry !== undefined && entry.version === version && entry.deletion;
  }

  forget(uri: string): void {
    this.last.delete(uri);
  }
}
