/**
 * The inline completion middleware: vscode-languageclient 11 registers the LSP inline completion provider itself
 * and calls this before every `textDocument/inlineCompletion` request. Each concern lives in its own pure module;
 * this file only connects them to the `vscode` API, in the order that avoids work:
 * on/off and language -> no trigger right after a deletion -> the pinned candidates of "Regenerate with N
 * Candidates" -> cache (exact or typed-along; automatic requests only) -> trigger mode (manual: automatic requests
 * stop here) -> debounce (fixed, or adaptive to typing speed and server latency: debouncePolicy.ts) -> server.
 *
 * Several items for one request are VS Code's alternatives, cycled with Alt+] / Alt+[; they come from the pinned list
 * or from the server, which answers an explicit request with the ranked candidates of one batch.
 */
import * as vscode from 'vscode';
import type { Middleware } from 'vscode-languageclient/node';
import { CompletionCache, type CacheQuery, type Completion } from './cache';
import {
  extendSelection,
  isUseful,
  toCompletion,
  toCompletionWithSelection,
  toShownItem,
  type PlainItem,
  type SelectedSuggestion,
  type ShownItem,
} from './completionShape';
import type { UnmaskConfig } from './config';
import { quietPeriod } from './debounce';
import type { AdaptiveDebounce } from './debouncePolicy';
import type { EditTracker } from './editTracker';
import type { Enablement } from './enablement';
import type { PinnedCandidates } from './pinnedCandidates';
import { inlineRoute } from './triggerPolicy';

export interface InlineDependencies {
  readonly config: () => UnmaskConfig;
  readonly enablement: Enablement;
  readonly edits: EditTracker;
  readonly cache: CompletionCache;
  readonly pinned: PinnedCandidates;
  readonly debounce: AdaptiveDebounce;
  readonly log: vscode.LogOutputChannel;
}

/** Characters of text around the cursor that identify a cache entry. */
const CACHE_CONTEXT_CHARS = 2000;

type Provide = NonNullable<Middleware['provideInlineCompletionItems']>;

export function inlineCompletionMiddleware(deps: InlineDependencies): Provide {
  return async (document, position, context, token, next) => {
    const config = deps.config();
    const automatic = context.triggerKind === vscode.InlineCompletionTriggerKind.Automatic;
    const where = `${document.uri.path.split('/').pop()}:${position.line + 1}:${position.character + 1} v${document.version}`;
    const off = deps.enablement.offReason(config, document.languageId, Date.now());
    if (off !== undefined) {
      deps.log.trace(`inline ${where}: off (${off})`);
      return null;
    }
    const uri = document.uri.toString();
    // Every automatic request is a keystroke (or a cursor move) the adaptive debounce learns the typing speed from.
    if (automatic) deps.debounce.keystroke(Date.now());
    if (automatic && deps.edits.lastEditWasDeletion(uri, document.version)) {
      deps.log.trace(`inline ${where}: skipped after a deletion`);
      return null;
    }

    const lineText = document.lineAt(position.line).text;
    const selected = plainSelection(context.selectedCompletionInfo);
    const pinned = selected ? undefined : deps.pinned.get(uri, document.version, position.line, position.character);
    if (pinned) {
      const completions = pinned.map((text) => toCompletion({ insertText: text }, position, lineText)).filter((c): c is Completion => c !== undefined && isUseful(c));
      deps.log.trace(`inline ${where}: ${completions.length} pinned candidate(s)`);
      return shown(completions, lineText, position, undefined);
    }
    // While the suggest widget shows a selected item the server completes as if it were accepted; such results
    // depend on the item, so they bypass the cache. An explicit request (Ctrl+Alt+\, or Alt+] / Alt+[ asking for the
    // alternatives) bypasses it too: the cache may hold the single completion of an automatic request.
    const query = selected ? undefined : cacheQuery(document, position);
    const cached = query && automatic ? deps.cache.get(query) : undefined;
    if (cached) {
      deps.log.trace(`inline ${where}: ${cached.length} from the cache`);
      return shown(cached, lineText, position, undefined);
    }
    // Manual trigger mode: only an explicit request runs the model (triggerPolicy.ts).
    if (inlineRoute(config.triggerMode, automatic) === 'cache') {
      deps.log.trace(`inline ${where}: manual trigger mode; not asking the model unasked`);
      return null;
    }

    const wait =
      config.debounceMode === 'fixed'
        ? config.debounceMs
        : deps.debounce.waitMs({ charBefore: lineText.charAt(position.character - 1), atLineEnd: lineText.slice(position.character).trim() === '' }, config.debounceMs);
    if (automatic && !(await quietPeriod(wait, token))) {
      deps.log.trace(`inline ${where}: superseded while debouncing (${wait} ms)`);
      return null;
    }
    const asked = Date.now();
    const result = await next(document, position, context, token);
    if (token.isCancellationRequested || !result) {
      deps.log.trace(`inline ${where}: ${token.isCancellationRequested ? 'cancelled' : 'no result'}`);
      return null;
    }
    // Only requests made as you type: an explicit one ranks more rows without a latency budget and takes longer.
    if (automatic) deps.debounce.answered(Date.now() - asked);

    const items = Array.isArray(result) ? result : result.items;
    const completions: Completion[] = [];
    for (const item of items) {
      const plain = plainItem(item);
      const completion =
        plain &&
        (selected ? toCompletionWithSelection(plain, position, lineText, selected) : toCompletion(plain, position, lineText));
      if (completion && isUseful(completion)) completions.push(completion);
      else if (!completion) deps.log.debug(`Inline item not expressible at the cursor; dropped: ${JSON.stringify(plain)}`);
    }
    // Empty answers are not cached: they may only mean that the model was still loading.
    if (query && completions.length > 0) deps.cache.set(query, completions);
    deps.log.trace(`inline ${where}: ${completions.length} of ${items.length} item(s) from the server`);
    return shown(completions, lineText, position, selected);
  };
}

function cacheQuery(document: vscode.TextDocument, position: vscode.Position): CacheQuery {
  const offset = document.offsetAt(position);
  const before = document.positionAt(Math.max(0, offset - CACHE_CONTEXT_CHARS));
  const after = document.positionAt(offset + CACHE_CONTEXT_CHARS);
  return {
    uri: document.uri.toString(),
    offset,
    prefix: document.getText(new vscode.Range(before, position)),
    suffix: document.getText(new vscode.Range(position, after)),
  };
}

function plainItem(item: vscode.InlineCompletionItem): PlainItem | undefined {
  // Snippets would need VS Code's snippet engine to compare against the document; the server sends plain text.
  if (typeof item.insertText !== 'string') return undefined;
  if (!item.range) return { insertText: item.insertText };
  const { start, end } = item.range;
  return {
    insertText: item.insertText,
    range: {
      start: { line: start.line, character: start.character },
      end: { line: end.line, character: end.character },
    },
  };
}

function plainSelection(info: vscode.SelectedCompletionInfo | undefined): SelectedSuggestion | undefined {
  if (!info) return undefined;
  const { start, end } = info.range;
  return {
    text: info.text,
    range: {
      start: { line: start.line, character: start.character },
      end: { line: end.line, character: end.character },
    },
  };
}

function shown(
  completions: readonly Completion[],
  lineText: string,
  position: vscode.Position,
  selected: SelectedSuggestion | undefined,
): vscode.InlineCompletionItem[] {
  const linePrefix = lineText.slice(0, position.character);
  const items: vscode.InlineCompletionItem[] = [];
  for (const completion of completions) {
    const item: ShownItem | undefined = selected
      ? extendSelection(completion, selected)
      : toShownItem(completion, linePrefix, position.character);
    if (!item) continue;
    const range = new vscode.Range(position.line, item.startCharacter, position.line, item.endCharacter);
    items.push(new vscode.InlineCompletionItem(item.insertText, range));
  }
  return items;
}
