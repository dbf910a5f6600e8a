/**
 * The language server: wires LSP to the runtime and the engine. It syncs documents incrementally, pulls the "unmask"
 * settings with workspace/configuration, answers textDocument/inlineCompletion and the custom requests of
 * messages.ts, and reports status and traces. Every request ends in a result: errors become a status, a log line and
 * an empty answer, and the server keeps running.
 *
 * Cancellation: the LSP token and cancel-previous (a new request aborts the one of its kind before it, so typing,
 * or asking again for candidates or a fill, never queues more than one generation of each kind) both abort one
 * AbortSignal, which the engine checks between denoising steps. Positions and counts are checked first
 * (positions.ts): an invalid one is refused with a message, never clamped into a generation.
 */
import * as path from 'node:path';
import {
  type CancellationToken,
  type Connection,
  DidChangeConfigurationNotification,
  type InitializeResult,
  type InlineCompletionItem,
  InlineCompletionTriggerKind,
  ParameterStructures,
  RequestType,
  TextDocuments,
  TextDocumentSyncKind,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { CanvasError, isAbortError } from '../engine/errors';
import type { GateFeatures } from '../engine/gate-features';
import type { InfillHooks, InfillResult } from '../engine/infill';
import { MAX_CANDIDATES, resolveSamplerOptions } from '../engine/options';
import type { Trace } from '../engine/trace';
import { wallClockMs } from '../runtime/clock';
import type { FaultHooks } from '../fault-hooks';
import { type LoadedModel, loadModel } from '../runtime/model';
import { SyntaxChecker } from '../runtime/syntax';
import { BudgetReserve } from './budget-reserve';
import { bestHoleFill, completionGate, type HoleFill, rankedCompletions, withCopyCandidate } from './candidates';
import { copyMatch, type CopySource, withCopyRow } from './copy-candidate';
import { describeGate, gateScore, worthShowing } from './gate';
import { complete } from './completion';
import { DocumentTokens, SNIPPET_DOCUMENTS } from './document-tokens';
import { type ServerConfig, needsReload, parseConfig, samplerOverrides } from './config';
import { inlineItems, inlineSource } from './inline';
import {
  CandidatesRequest,
  type CandidatesParams,
  type CandidatesResult,
  FillHolesRequest,
  type FillHolesParams,
  type FillHolesResult,
  FillRangeRequest,
  type FillRangeParams,
  type FillRangeResult,
  LastTraceRequest,
  PingRequest,
  StatusNotification,
  TraceNotification,
  type TraceParams,
} from './messages';
import { ModelHost } from './model-host';
import { countProblem, positionProblem, rangeProblem } from './positions';
import { traceParams } from './trace';
import { unsuitableReason, windowAround } from './window';

export interface ServerOptions {
  /** The extension's folder: the default model lives in models/unmask-coder-base under it. */
  readonly extensionRoot: string;
  /** The fault suite's worker and deadline (server/fault-hooks.ts); absent or empty when not testing. */
  readonly faultHooks?: FaultHooks;
}

type RequestKind = TraceParams['kind'];

/**
 * A custom request typed as taking one parameter object by name. Registered by its bare method name, a request whose
 * params are a JSON array was spread over the handler's arguments (the token among them) and failed with a
 * TypeError; typed, vscode-jsonrpc refuses positional params with an InvalidParams error that says so.
 */
const oneParam = <P, R>(method: string): RequestType<P, R, void> => new RequestType<P, R, void>(method, ParameterStructures.byName);

/** The most tokens a request may ask for (maxTokens); the model's largest span bucket caps it further. */
const MAX_REQUEST_TOKENS = 4096;

export function startServer(connection: Connection, options: ServerOptions): void {
  const documents = new TextDocuments(TextDocument);
  const log = (line: string): void => connection.console.log(`[${new Date().toISOString().slice(11, 23)}] ${line}`);
  const hooks = options.faultHooks ?? {};
  const host = new ModelHost(
    options.extensionRoot,
    log,
    (status) => void connection.sendNotification(StatusNotification, status),
    (dir, loadOptions) => loadModel(dir, { ...loadOptions, ...hooks }),
  );
  let config: ServerConfig = parseConfig(undefined).config;
  let pullsConfiguration = false;
  /** The generation in flight of each kind, which the next request of that kind aborts. */
  const inFlight = new Map<RequestKind, AbortController>();
  let lastTrace: TraceParams | null = null;
  /** What inline requests spend after their generation, kept off the engine's share of the latency budget. */
  const reserve = new BudgetReserve();
  // esbuild.mjs copies the parser's and the grammars' .wasm files here.
  const syntax = new SyntaxChecker((file) => path.join(options.extensionRoot, 'dist', 'tree-sitter', file), log);
  /** The open documents' token ids, encoded off the request path for the cache n-gram model (document-tokens.ts). */
  const tokens = new DocumentTokens({ lookup: (uri) => documents.get(uri), codec: () => host.loaded?.codec, log });

  /** Pulls the "unmask" section; falls back to `pushed` (didChangeConfiguration settings) when pull is unsupported. */
  async function readConfig(pushed?: unknown): Promise<ServerConfig> {
    let raw: unknown = pushed;
    if (pullsConfiguration) {
      try {
        raw = await connection.workspace.getConfiguration('unmask');
      } catch (err) {
        log(`settings: workspace/configuration failed (${(err as Error).message}); keeping the current settings`);
        return config;
      }
    }
    const parsed = parseConfig(raw);
    for (const problem of parsed.problems) log(`settings: ${problem}`);
    return parsed.config;
  }

  connection.onInitialize((params): InitializeResult => {
    pullsConfiguration = params.capabilities.workspace?.configuration === true;
    const init = params.initializationOptions as { settings?: unknown } | undefined;
    if (init?.settings !== undefined) config = parseConfig(init.settings).config;
    return {
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        inlineCompletionProvider: true,
      },
      serverInfo: { name: 'unmask', version: '0.1.0' },
    };
  });

  connection.onInitialized(() => {
    if (Object.keys(hooks).length) log(`fault hooks in effect (test only): ${JSON.stringify(hooks)}`);
    void (async () => {
      if (pullsConfiguration) {
        config = await readConfig();
        // Ask to be told about changes; the client may also send them unasked (vscode-languageclient's synchronize).
        connection.client.register(DidChangeConfigurationNotification.type, { section: 'unmask' }).catch(() => undefined);
      }
      await host.load(config);
      tokens.kick();
    })();
  });

  connection.onDidChangeConfiguration((change) => {
    void (async () => {
      const pushed = (change.settings as { unmask?: unknown } | null | undefined)?.unmask;
      const next = await readConfig(pushed);
      const reload = needsReload(config, next);
      config = next;
      if (reload) await host.load(config);
      else host.configure(config); // unmask.idleUnloadMinutes and the like need no reload.
      tokens.kick();
    })();
  });

  /** The open document a request names, or why there is none (params without a uri string are refused, not thrown on). */
  function requestDocument(params: unknown): TextDocument | string {
    const uri = (params as { textDocument?: { uri?: unknown } } | null | undefined)?.textDocument?.uri;
    if (typeof uri !== 'string') return 'invalid request: textDocument.uri must be a string';
    return documents.get(uri) ?? `document ${uri} is not open`;
  }

  /**
   * Token ids of other open documents for the cache n-gram model of a request in `uri` (unmask.cacheNgramOpenDocuments),
   * as far as they are encoded already; undefined when there are none or the cache is off.
   */
  function relatedTokens(uri: string, languageId: string): readonly Int32Array[] | undefined {
    if (!config.cacheNgram || config.cacheNgramOpenDocuments === 0) return undefined;
    const related = tokens.related(uri, languageId, config.cacheNgramOpenDocuments);
    return related.length > 0 ? related : undefined;
  }

  /**
   * The document around the cursor with the texts of the other open documents the copy candidate also looks in
   * (copy-candidate.ts): the excerpts the cache n-gram model counts (unmask.cacheNgramOpenDocuments), as text, whatever
   * the cache's own setting.
   */
  function copySource(file: { readonly before: string; readonly after: string }, uri: string, languageId: string): CopySource {
    const others = tokens.relatedTexts(uri, languageId, config.cacheNgramOpenDocuments);
    return others.length > 0 ? { ...file, others } : file;
  }

  /**
   * Token ids of other open documents of the language family that snippets may come from, for a model trained with
   * them (unmask.relatedContextTokens, engine/related-context.ts), whatever the cache n-gram settings; undefined when
   * the model reads none, the setting is 0, or there are none yet.
   */
  function snippetSources(model: LoadedModel, uri: string, languageId: string): { snippetSources: readonly Int32Array[] } | undefined {
    if (!model.facts.relatedContext || config.relatedContextTokens === 0) return undefined;
    const sources = tokens.related(uri, languageId, SNIPPET_DOCUMENTS);
    return sources.length > 0 ? { snippetSources: sources } : undefined;
  }

  /** An AbortSignal tied to the LSP token and to the next request of the same kind (cancel-previous). */
  function signalFor(kind: RequestKind, token: CancellationToken): AbortController {
    const controller = new AbortController();
    inFlight.get(kind)?.abort();
    inFlight.set(kind, controller);
    if (token.isCancellationRequested) controller.abort();
    token.onCancellationRequested(() => controller.abort());
    return controller;
  }

  function traceHooks(uri: string, kind: RequestKind, signal: AbortSignal): InfillHooks {
    return {
      signal,
      onStep: (trace: Trace) => void connection.sendNotification(TraceNotification, traceParams(trace, uri, kind, true)),
    };
  }

  function finishTrace(trace: Trace, uri: string, kind: RequestKind, latencyMs: number): void {
    lastTrace = traceParams(trace, uri, kind, false, latencyMs);
    void connection.sendNotification(TraceNotification, lastTrace);
  }

  /**
   * Runs `work` on the loaded model with status, timing and error handling: cancellation gives `cancelled`, any
   * other error a status, a log line and `failed(message)`.
   */
  async function generate<T>(
    kind: RequestKind,
    token: CancellationToken,
    work: (model: LoadedModel, signal: AbortSignal) => Promise<T>,
    failed: (message: string) => T,
    cancelled: T,
  ): Promise<T> {
    const controller = signalFor(kind, token);
    // The background encoding of documents waits while a request is in hand (document-tokens.ts).
    const release = tokens.hold();
    try {
      const model = await host.current();
      if (!model) return failed(host.lastStatus.message ?? 'the model is not loaded');
      if (controller.signal.aborted) return cancelled;
      const end = host.beginWork();
      const started = performance.now();
      try {
        const result = await work(model, controller.signal);
        end({ latencyMs: performance.now() - started });
        return result;
      } catch (err) {
        if (isAbortError(err) || controller.signal.aborted) {
          end({});
          return cancelled;
        }
        const message = (err as Error).message ?? String(err);
        log(`error: ${kind} failed: ${message}`);
        end({ error: message });
        return failed(message);
      }
    } finally {
      if (inFlight.get(kind) === controller) inFlight.delete(kind);
      release();
    }
  }

  connection.languages.inlineCompletion.on(async (params, token): Promise<InlineCompletionItem[] | null> => {
    // The latency budget counts from here: reading the document and waiting for the model are part of the wait.
    const arrived = wallClockMs();
    const document = requestDocument(params);
    if (typeof document === 'string') {
      log(`inline: refused: ${document}`);
      return [];
    }
    const context = params.context ?? { triggerKind: InlineCompletionTriggerKind.Automatic };
    const selected = context.selectedCompletionInfo;
    const invalid =
      positionProblem(document, params.position, 'position') ?? (selected ? rangeProblem(document, selected.range, 'selectedCompletionInfo.range') : undefined);
    if (invalid) {
      log(`inline: refused for ${params.textDocument.uri}: ${invalid}`);
      return [];
    }
    const source = inlineSource(document, params.position, context);
    const unsuitable = unsuitableReason(source.window);
    if (unsuitable) {
      log(`inline: no completion for ${params.textDocument.uri}: ${unsuitable}`);
      return [];
    }
    // Every request ranks the rows of one batch: an explicit one (Ctrl+Alt+\, or Alt+] / Alt+[ asking for more) gets
    // unmask.candidates alternatives, one made as you type the best of unmask.inlineCandidates rows, so that a row
    // that comes out blank or broken gives way to one that does not. One row is the engine's text as it is.
    const explicit = context.triggerKind === InlineCompletionTriggerKind.Invoked;
    const rows = explicit ? config.candidates : config.inlineCandidates;
    // As you type, a suggestion is worth showing only on time (unmask.latencyBudgetMs); one asked for is waited for.
    const latencyBudgetMs = explicit ? 0 : reserve.engineBudgetMs(config.latencyBudgetMs);
    const uri = params.textDocument.uri;
    return generate(
      'inline',
      token,
      async (model, signal) => {
        const started = performance.now();
        const related = relatedTokens(uri, document.languageId);
        const query = {
          prefix: source.window.prefix,
          suffix: source.window.suffix,
          languageId: document.languageId,
          maxTokens: config.maxSpanTokens,
          multiline: config.multiline,
          ...(related ? { related } : {}),
          ...snippetSources(model, uri, document.languageId),
        };
        const hooks: InfillHooks = { ...traceHooks(uri, 'inline', signal), now: wallClockMs, startedAt: arrived };
        let texts: readonly string[];
        let result: InfillResult;
        let gate: GateFeatures | undefined;
        if (rows > 1) {
          const options = resolveSamplerOptions(samplerOverrides(config, { candidates: rows, latencyBudgetMs }));
          const ranked = await rankedCompletions(model, query, source.file, options, hooks, syntax, log);
          const inline = withCopyCandidate(ranked, copySource(source.file, uri, document.languageId));
          // As you type, the best row alone is shown; an explicit request lists them all for Alt+] / Alt+[.
          texts = inline.candidates.slice(0, explicit ? undefined : 1).map((c) => c.text);
          gate = inline.gate;
          result = ranked.result;
        } else {
          const outcome = await complete(model, query, resolveSamplerOptions(samplerOverrides(config, { latencyBudgetMs })), hooks);
          const copy = copyMatch(copySource(source.file, uri, document.languageId));
          texts = withCopyRow(outcome.texts, copy, (t) => t, (t) => t).slice(0, explicit ? undefined : 1);
          gate = completionGate(outcome, copy, source.file.before);
          result = outcome.result;
        }
        const latencyMs = performance.now() - started;
        if (!explicit) reserve.observe(latencyMs - result.totalMs);
        finishTrace(result.trace, uri, 'inline', latencyMs);
        if (!worthShowing(gate, config.minConfidence, explicit)) {
          if (gate) {
            log(`inline: suggestion withheld (${describeGate(gate)} < unmask.minConfidence ${config.minConfidence})`);
            host.noteSuggestion(`withheld, confidence ${gateScore(gate).toFixed(2)} < ${config.minConfidence} (unmask.minConfidence)`);
          }
          return [];
        }
        if (gate && !explicit) host.noteSuggestion(`shown, confidence ${gateScore(gate).toFixed(2)} >= ${config.minConfidence} (unmask.minConfidence)`);
        return inlineItems(texts, source, params.position);
      },
      () => [],
      null,
    );
  });

  connection.onRequest(oneParam<FillRangeParams, FillRangeResult>(FillRangeRequest), async (params, token): Promise<FillRangeResult> => {
    const started = performance.now();
    const empty = (error: string): FillRangeResult => ({ text: '', latencyMs: performance.now() - started, error });
    const document = requestDocument(params);
    if (typeof document === 'string') return empty(document);
    const invalid = rangeProblem(document, params.range, 'range') ?? countProblem(params.maxTokens, 'maxTokens', MAX_REQUEST_TOKENS);
    if (invalid) return empty(`invalid request: ${invalid}`);
    const text = document.getText();
    const start = document.offsetAt(params.range.start);
    const end = Math.max(start, document.offsetAt(params.range.end));
    const before = windowAround(text, start);
    const after = windowAround(text, end);
    const window = { prefix: before.prefix, suffix: after.suffix, cutBefore: before.cutBefore, cutAfter: after.cutAfter };
    const unsuitable = unsuitableReason(window);
    if (unsuitable) return empty(`cannot fill here: ${unsuitable}`);
    return generate(
      'fillRange',
      token,
      async (model, signal) => {
        const selected = text.slice(start, end);
        const maxTokens = params.maxTokens ?? fillLength(model, selected, config);
        // unmask.candidates rows of one batch, ranked as the candidates are; the preview shows the best.
        const related = relatedTokens(params.textDocument.uri, document.languageId);
        const ranked = await rankedCompletions(
          model,
          {
            prefix: window.prefix,
            suffix: window.suffix,
            languageId: document.languageId,
            maxTokens,
            ...(related ? { related } : {}),
            ...snippetSources(model, params.textDocument.uri, document.languageId),
          },
          { before: text.slice(0, start), after: text.slice(end) },
          resolveSamplerOptions(samplerOverrides(config, { candidates: config.candidates })),
          traceHooks(params.textDocument.uri, 'fillRange', signal),
          syntax,
          log,
        );
        const latencyMs = performance.now() - started;
        finishTrace(ranked.result.trace, params.textDocument.uri, 'fillRange', latencyMs);
        const best = ranked.candidates[0];
        return best ? { text: best.text, latencyMs } : { text: '', latencyMs, error: 'the model generated only whitespace' };
      },
      (message) => empty(message),
      empty('cancelled'),
    );
  });

  connection.onRequest(oneParam<FillHolesParams, FillHolesResult>(FillHolesRequest), async (params, token): Promise<FillHolesResult> => {
    const started = performance.now();
    const empty = (error: string): FillHolesResult => ({ texts: [], latencyMs: performance.now() - started, error });
    const document = requestDocument(params);
    if (typeof document === 'string') return empty(document);
    if (!Array.isArray(params.holes) || params.holes.length === 0) return empty('no holes to fill');
    const invalid = params.holes
      .map((h, i) =>
        typeof h !== 'object' || h === null
          ? `holes[${i}] must be {range, maxTokens?}`
          : (rangeProblem(document, h.range, `holes[${i}].range`) ?? countProblem(h.maxTokens, `holes[${i}].maxTokens`, MAX_REQUEST_TOKENS)),
      )
      .find((problem) => problem !== undefined);
    if (invalid) return empty(`invalid request: ${invalid}`);
    const text = document.getText();
    if (text.includes('\u0000')) return empty('the document contains NUL bytes (binary content)');
    const ranges = params.holes.map((h) => [document.offsetAt(h.range.start), document.offsetAt(h.range.end)]);
    if (ranges.some(([s, e], i) => e < s || (i > 0 && s < ranges[i - 1][1]))) return empty('holes must be in document order and must not overlap');
    const segments = ranges.map(([s], i) => text.slice(i === 0 ? 0 : ranges[i - 1][1], s));
    segments.push(text.slice(ranges[ranges.length - 1][1]));
    return generate(
      'fillHoles',
      token,
      async (model, signal) => {
        const related = relatedTokens(params.textDocument.uri, document.languageId);
        const request = {
          segments,
          holes: params.holes.map((h) => ({ maxTokens: h.maxTokens ?? config.maxSpanTokens })),
          languageId: document.languageId,
          ...(related ? { cacheRelated: related } : {}),
          ...snippetSources(model, params.textDocument.uri, document.languageId),
        };
        // unmask.candidates rows of one joint run; the preview shows the best (fewest blank holes, then the ranking).
        const options = resolveSamplerOptions(samplerOverrides(config, { candidates: config.candidates }));
        let fill: HoleFill;
        try {
          fill = await bestHoleFill(model, request, options, traceHooks(params.textDocument.uri, 'fillHoles', signal), syntax, log);
        } catch (err) {
          // Holes that together do not fit the model are the request's problem, not the server's: no error status.
          if (!(err instanceof CanvasError)) throw err;
          log(`fillHoles: ${err.message}`);
          return empty(`the holes do not fit the model: ${err.message} Use fewer holes or smaller length hints.`);
        }
        const latencyMs = performance.now() - started;
        finishTrace(fill.result.trace, params.textDocument.uri, 'fillHoles', latencyMs);
        // No candidate means every row ended every hole at once: that is the model's answer (empty holes), not a failure.
        return { texts: fill.texts ? [...fill.texts] : params.holes.map(() => ''), latencyMs };
      },
      (message) => empty(message),
      empty('cancelled'),
    );
  });

  connection.onRequest(oneParam<CandidatesParams, CandidatesResult>(CandidatesRequest), async (params, token): Promise<CandidatesResult> => {
    const started = performance.now();
    const empty = (error: string): CandidatesResult => ({ candidates: [], batch: 0, modelCalls: 0, latencyMs: performance.now() - started, error });
    const document = requestDocument(params);
    if (typeof document === 'string') return empty(document);
    const count = params.count ?? config.candidates;
    if (!Number.isInteger(count) || count < 1 || count > MAX_CANDIDATES) return empty(`count must be a whole number from 1 to ${MAX_CANDIDATES}`);
    const invalid = positionProblem(document, params.position, 'position') ?? countProblem(params.maxTokens, 'maxTokens', MAX_REQUEST_TOKENS);
    if (invalid) return empty(`invalid request: ${invalid}`);
    const text = document.getText();
    const offset = document.offsetAt(params.position);
    const window = windowAround(text, offset);
    const unsuitable = unsuitableReason(window);
    if (unsuitable) return empty(`cannot complete here: ${unsuitable}`);
    return generate(
      'candidates',
      token,
      async (model, signal) => {
        // A fresh seed each time: the user asked to regenerate, so the alternatives should not repeat the last ones.
        const related = relatedTokens(params.textDocument.uri, document.languageId);
        const ranked = await rankedCompletions(
          model,
          {
            prefix: window.prefix,
            suffix: window.suffix,
            languageId: document.languageId,
            maxTokens: params.maxTokens ?? config.maxSpanTokens,
            multiline: config.multiline,
            ...(related ? { related } : {}),
            ...snippetSources(model, params.textDocument.uri, document.languageId),
          },
          { before: text.slice(0, offset), after: text.slice(offset) },
          resolveSamplerOptions(samplerOverrides(config, { candidates: count, seed: Math.floor(Math.random() * 0xffffffff) })),
          traceHooks(params.textDocument.uri, 'candidates', signal),
          syntax,
          log,
        );
        const latencyMs = performance.now() - started;
        finishTrace(ranked.result.trace, params.textDocument.uri, 'candidates', latencyMs);
        log(`candidates: ${ranked.candidates.length} distinct of ${count} in one batch, ${ranked.result.modelCalls} model calls, ${latencyMs.toFixed(0)} ms`);
        return { candidates: [...ranked.candidates], batch: count, modelCalls: ranked.result.modelCalls, latencyMs };
      },
      (message) => empty(message),
      empty('cancelled'),
    );
  });

  connection.onRequest(LastTraceRequest, () => lastTrace);
  connection.onRequest(PingRequest, () => ({}));

  connection.onShutdown(async () => {
    for (const controller of inFlight.values()) controller.abort();
    syntax.dispose();
    await host.dispose();
  });

  documents.onDidOpen(({ document }) => tokens.opened(document.uri));
  documents.onDidClose(({ document }) => tokens.closed(document.uri));
  documents.listen(withEdits(connection, (uri, anchor, inserted) => tokens.edited(uri, anchor, inserted), (uri) => documents.get(uri)));
  connection.listen();
}

/**
 * The connection as TextDocuments listens to it, with `edited` told after each change where its last edit ends (an
 * offset in the updated document; undefined for a whole-text replacement) and how many characters it inserted:
 * TextDocuments' own change event does not say where the text changed, and the cursor is most likely there.
 */
function withEdits(
  connection: Connection,
  edited: (uri: string, anchor: number | undefined, inserted: number) => void,
  lookup: (uri: string) => TextDocument | undefined,
): Parameters<TextDocuments<TextDocument>['listen']>[0] {
  return {
    onDidOpenTextDocument: (handler) => connection.onDidOpenTextDocument(handler),
    onDidChangeTextDocument: (handler) =>
      connection.onDidChangeTextDocument((event) => {
        handler(event);
        const document = lookup(event.textDocument.uri);
        const last = event.contentChanges.at(-1);
        if (!document || !last) return;
        const anchor = 'range' in last && last.range ? document.offsetAt(last.range.start) + last.text.length : undefined;
        edited(document.uri, anchor, event.contentChanges.reduce((sum, change) => sum + change.text.length, 0));
      }),
    onDidCloseTextDocument: (handler) => connection.onDidCloseTextDocument(handler),
    onWillSaveTextDocument: (handler) => connection.onWillSaveTextDocument(handler),
    onWillSaveTextDocumentWaitUntil: (handler) => connection.onWillSaveTextDocumentWaitUntil(handler),
    onDidSaveTextDocument: (handler) => connection.onDidSaveTextDocument(handler),
  };
}

/**
 * Tokens to generate for a range fill: about as many as the selection holds (rewrites are rarely much longer), at
 * least the inline span setting, at most the model's largest span.
 */
function fillLength(model: LoadedModel, selected: string, config: ServerConfig): number {
  const largest = model.facts.spanBuckets[model.facts.spanBuckets.length - 1];
  const selectedTokens = selected.length > 0 ? model.codec.encode(selected.slice(0, largest * 32)).length : 0;
  return Math.min(largest, Math.max(config.maxSpanTokens, Math.ceil(selectedTokens * 1.25)));
}
