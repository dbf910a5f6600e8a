/**
 * The command line: the server's engine on a model, without an editor (bundled as dist/cli.js).
 *
 *   npm start -- src/app.py --line 12 --col 5            complete at line 12, column 5 (both 1-based)
 *   npm start -- src/app.py --line 12 --col 5 --json     the same as JSON (completion, candidates, trace, timings)
 *   npm start -- --batch tasks.jsonl --out results.jsonl   fill {prefix, suffix, language} tasks, one JSON per line
 *
 * Prints the completion and the unmasking order (which tokens were committed at which step). With --candidates N the
 * alternatives are ranked as the extension ranks them (likelihood, tree-sitter syntax errors of the file with each
 * one inserted, the discriminator's reward when the model folder ships one; near-duplicates merged), best first, and
 * the completion is the best. Run with --help for every flag. Exit codes: 0 done, 1 a model or I/O failure, 2 bad
 * arguments.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import type { GateFeatures } from './engine/gate-features';
import type { InfillHooks, InfillResult, Trace } from './engine/infill';
import { MAX_CACHE_ORDER, MIN_CACHE_ORDER } from './engine/ngram-cache';
import { DEFAULT_SAMPLER_OPTIONS, resolveSamplerOptions } from './engine/options';
import type { SamplerOptions } from './engine/types';
import { completionGate, rankedCompletions, withCopyCandidate } from './protocol/candidates';
import { COPY_LEAD_MIN_MATCH, COPY_MIN_MATCH, type CopySource, copyMatch, withCopyRow } from './protocol/copy-candidate';
import { type CompletionQuery, complete, MIN_LINE_CONFIDENCE, MULTILINE_MODES, type MultilineMode } from './protocol/completion';
import { defaultConfig } from './protocol/config';
import { RELATED_TOKENS, relatedExcerpt, SNIPPET_DOCUMENTS, withinBudget } from './protocol/document-tokens';
import type { CandidateItem } from './protocol/messages';
import { describeGate, gateScore, worthShowing } from './protocol/gate';
import { DEFAULT_MODEL_DIR, relatedContextNote } from './protocol/model-host';
import { wallClockMs } from './runtime/clock';
import { unsuitableReason, windowAround } from './protocol/window';
import { type LoadedModel, loadModel } from './runtime/model';
import { DEVICE_SETTINGS, type DeviceSetting } from './runtime/providers';
import { SyntaxChecker } from './runtime/syntax';

/** unmask.cacheNgramOpenDocuments's maximum (package.json). */
const MAX_OPEN_DOCUMENTS = 8;

const HELP = `Usage:
  unmask <file> --line L --col C [options]        complete at a position (1-based line and column)
  unmask --batch tasks.jsonl --out results.jsonl   fill JSONL tasks {id?, prefix, suffix, language, max_tokens?,
                                                   before?, after?, related?} (before/after: the whole file around
                                                   the hole, for the candidates' syntax check; default prefix/suffix;
                                                   related: texts of other open files, most recent first, for the
                                                   cache n-gram model, the copy candidate and the snippets)

Options:
  --line N             line of the cursor, 1-based
  --col N              column of the cursor, 1-based (UTF-16 code units, as editors count)
  --language ID        VS Code language id (default: from the file extension; "other" tag when unknown)
  --model DIR          model folder with manifest.json (default: the shipped ${DEFAULT_MODEL_DIR})
  --precision P        auto | int8 | fp32 (default auto: int8 when shipped)
  --device D           ${DEVICE_SETTINGS.join(' | ')} (default auto)
  --threads N          CPU threads for inference (default: onnxruntime's choice)
  --max-tokens N       span length to fill (default ${defaultConfig().maxSpanTokens}; rounded up to a span bucket)
  --steps N            denoising steps (default ${defaultConfig().steps})
  --strategy S         confidence | margin | entropy | random (default ${defaultConfig().strategy})
  --threshold X        also commit tokens above this confidence (default ${defaultConfig().confidenceThreshold})
  --temperature X      sampling temperature (default ${defaultConfig().temperature})
  --top-p X            nucleus mass (default ${defaultConfig().topP})
  --candidates N       alternatives in one batch, 1-16 (default 1), ranked as in the editor
  --copy-min-match N   offer the copy candidate when a run of N characters before the cursor recurs in the file
                       (default ${COPY_MIN_MATCH}, as in the editor; first from a run of ${COPY_LEAD_MIN_MATCH} or when the best row agrees,
                       else second; 0: the model's rows alone)
  --cache-ngram on|off mix the cache n-gram model of the document's tokens into the sampler (unmask.cacheNgram;
                       default ${defaultConfig().cacheNgram ? 'on' : 'off'}); in batch mode it counts a task's before/after when given
  --cache-ngram-weight X  the most weight the cache gets, 0 to 1 (default ${DEFAULT_SAMPLER_OPTIONS.cacheNgramWeight})
  --cache-ngram-order N   its longest n-gram, ${MIN_CACHE_ORDER} to ${MAX_CACHE_ORDER} (default ${DEFAULT_SAMPLER_OPTIONS.cacheNgramOrder})
  --cache-ngram-open-documents N  how many of a task's related texts the cache counts and the copy candidate looks in, 0 to ${MAX_OPEN_DOCUMENTS}, as the
                       editor's other open documents (unmask.cacheNgramOpenDocuments; default ${defaultConfig().cacheNgramOpenDocuments})
  --related-context-tokens N  canvas tokens that snippets of other files may take, out of the text's (the chunks most
                       like the code before the cursor, from the first ${SNIPPET_DOCUMENTS} related texts; unmask.relatedContextTokens;
                       default ${defaultConfig().relatedContextTokens}; 0: none). Only a model trained with them (unmask.related_context) uses them
  --related FILE       another open file (repeatable, most recent first): for the cache n-gram model, the copy
                       candidate and the snippets, as a batch task's related texts
  --seed N             random seed (default 0)
  --context-tokens N   tokens of context around the cursor (default ${defaultConfig().contextTokens})
  --latency-budget MS  cut the denoising steps so that each completion is done about MS ms after its task
                       started, the last step committing every remaining token (unmask.latencyBudgetMs; default 0:
                       every step runs)
  --multiline M        auto | always | never: lines a completion may have (unmask.multiline; default
                       ${defaultConfig().multiline}: one line when the cursor's line holds code before the cursor)
  --min-line-confidence X
                       under auto at a line start, keep the lines after the first only while each one's least token
                       probability is at least X, 0 to 1 (default ${MIN_LINE_CONFIDENCE}; 0 keeps every line)
  --json               print JSON instead of text
  --batch FILE         JSONL tasks to fill ("-" reads stdin)
  --out FILE           where batch results go ("-" or absent: stdout)
  --canvases           batch mode: add each answer's finished canvases ("rows": text and canvas token ids per
                       ranked model candidate, as the sampler left them), the span positions and the healed text
                       (the recipe's scripts/data_reward.py writes them as inserted and trains the reward model on them)
  --help               this text`;

class UsageError extends Error {}

const EXTENSION_LANGUAGES: Readonly<Record<string, string>> = {
  '.py': 'python',
  '.pyi': 'python',
  '.ts': 'typescript',
  '.mts': 'typescript',
  '.cts': 'typescript',
  '.tsx': 'typescriptreact',
  '.js': 'javascript',
  '.mjs': 'javascript',
  '.cjs': 'javascript',
  '.jsx': 'javascriptreact',
};

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        line: { type: 'string' },
        col: { type: 'string' },
        language: { type: 'string' },
        model: { type: 'string' },
        precision: { type: 'string' },
        device: { type: 'string' },
        threads: { type: 'string' },
        'max-tokens': { type: 'string' },
        steps: { type: 'string' },
        strategy: { type: 'string' },
        threshold: { type: 'string' },
        temperature: { type: 'string' },
        'top-p': { type: 'string' },
        candidates: { type: 'string' },
        'copy-min-match': { type: 'string' },
        'cache-ngram': { type: 'string' },
        'cache-ngram-weight': { type: 'string' },
        'cache-ngram-order': { type: 'string' },
        'cache-ngram-open-documents': { type: 'string' },
        'related-context-tokens': { type: 'string' },
        related: { type: 'string', multiple: true },
        seed: { type: 'string' },
        'context-tokens': { type: 'string' },
        'latency-budget': { type: 'string' },
        multiline: { type: 'string' },
        'min-line-confidence': { type: 'string' },
        json: { type: 'boolean' },
        canvases: { type: 'boolean' },
        batch: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
type Args = ReturnType<typeof parse>['values'];

function integer(args: Args, name: keyof Args, min: number, max: number): number | undefined {
  const raw = args[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw.trim()) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  }
  return value;
}

function decimal(args: Args, name: keyof Args): number | undefined {
  const raw = args[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${name} must be a number (got ${JSON.stringify(raw)})`);
  return value;
}

function onOff(args: Args, name: keyof Args): boolean | undefined {
  const raw = args[name];
  if (raw === undefined) return undefined;
  if (raw !== 'on' && raw !== 'off') throw new UsageError(`--${name} must be on or off (got ${JSON.stringify(raw)})`);
  return raw === 'on';
}

function samplerOptions(args: Args): SamplerOptions {
  const d = defaultConfig();
  const strategy = args.strategy ?? d.strategy;
  try {
    return resolveSamplerOptions({
      steps: integer(args, 'steps', 1, 1024) ?? d.steps,
      strategy: strategy as SamplerOptions['strategy'],
      confidenceThreshold: decimal(args, 'threshold') ?? d.confidenceThreshold,
      temperature: decimal(args, 'temperature') ?? d.temperature,
      topP: decimal(args, 'top-p') ?? d.topP,
      candidates: integer(args, 'candidates', 1, 16) ?? 1,
      seed: integer(args, 'seed', 0, 0xffffffff) ?? 0,
      contextTokens: integer(args, 'context-tokens', 0, 1 << 20) ?? d.contextTokens,
      latencyBudgetMs: decimal(args, 'latency-budget') ?? 0,
      cacheNgram: onOff(args, 'cache-ngram') ?? d.cacheNgram,
      cacheNgramWeight: decimal(args, 'cache-ngram-weight'),
      cacheNgramOrder: integer(args, 'cache-ngram-order', MIN_CACHE_ORDER, MAX_CACHE_ORDER),
      relatedContextTokens: integer(args, 'related-context-tokens', 0, 1 << 20) ?? d.relatedContextTokens,
    });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
}

function openDocuments(args: Args): number {
  return integer(args, 'cache-ngram-open-documents', 0, MAX_OPEN_DOCUMENTS) ?? defaultConfig().cacheNgramOpenDocuments;
}

/**
 * What a task's related texts (other open files, most recent first) give a request, as the server hands them over
 * (document-tokens.ts: each one's start, as for a document opened and not edited; RELATED_TOKENS in all): token ids of
 * the first `documents` to the cache n-gram model (none when the cache is off), the first SNIPPET_DOCUMENTS as the
 * snippets' sources when the model reads snippets and --related-context-tokens is not 0, and the first `documents`
 * as text to the copy candidate (DocumentTokens.relatedTexts). Each text is encoded once.
 */
function relatedQuery(
  model: LoadedModel,
  options: SamplerOptions,
  texts: readonly string[],
  documents: number,
): { query: Pick<CompletionQuery, 'related' | 'snippetSources'>; others: string[] } {
  const cached = options.cacheNgram ? documents : 0;
  const snippets = model.facts.relatedContext && (options.relatedContextTokens ?? 0) > 0 ? SNIPPET_DOCUMENTS : 0;
  const excerpts = texts.slice(0, Math.max(documents, snippets)).map((text) => relatedExcerpt(model.codec, text));
  const within = (count: number): Int32Array[] =>
    withinBudget(
      excerpts.slice(0, count).flatMap((excerpt) => excerpt ?? []),
      RELATED_TOKENS,
    );
  const related = within(cached);
  const snippetSources = within(snippets);
  const others = excerpts.slice(0, documents).flatMap((excerpt) => (excerpt ? [model.codec.decode(Array.from(excerpt.ids))] : []));
  return { query: { ...(related.length > 0 ? { related } : {}), ...(snippetSources.length > 0 ? { snippetSources } : {}) }, others };
}

/** The texts of the --related files, read before the model loads so that a bad path is a usage error. */
function relatedFiles(args: Args): string[] {
  return (args.related ?? []).map((file) => {
    requireFile(file, '--related file');
    const text = fs.readFileSync(file, 'utf8');
    if (text.includes('\u0000')) throw new UsageError(`--related ${file} contains NUL bytes (binary content)`);
    return text;
  });
}

/**
 * Says on stderr whether the model reads snippets of other files, when it does or when they were asked for on the
 * command line (the shipped model, trained without them, would otherwise say so on every run).
 */
function noteRelatedContext(model: LoadedModel, options: SamplerOptions, args: Args): void {
  if (!model.facts.relatedContext && args['related-context-tokens'] === undefined && args.related === undefined) return;
  const note = relatedContextNote(model.manifest.id, model.facts, options.relatedContextTokens ?? 0);
  if (note) process.stderr.write(`${note}\n`);
}

function multiline(args: Args): MultilineMode {
  const raw = args.multiline ?? defaultConfig().multiline;
  if (!MULTILINE_MODES.includes(raw as MultilineMode)) throw new UsageError(`--multiline must be one of ${MULTILINE_MODES.join(', ')} (got ${JSON.stringify(raw)})`);
  return raw as MultilineMode;
}

function minLineConfidence(args: Args): number {
  const value = decimal(args, 'min-line-confidence') ?? MIN_LINE_CONFIDENCE;
  if (value < 0 || value > 1) throw new UsageError(`--min-line-confidence must be from 0 to 1 (got ${value})`);
  return value;
}

function copyMinMatch(args: Args): number {
  return integer(args, 'copy-min-match', 0, 1 << 20) ?? COPY_MIN_MATCH;
}

async function openModel(args: Args, quiet: boolean): Promise<LoadedModel> {
  const root = path.resolve(__dirname, '..');
  const dir = args.model ? path.resolve(args.model) : path.join(root, DEFAULT_MODEL_DIR);
  const device = (args.device ?? 'auto') as DeviceSetting;
  if (!DEVICE_SETTINGS.includes(device)) throw new UsageError(`--device must be one of ${DEVICE_SETTINGS.join(', ')}`);
  const precision = args.precision ?? 'auto';
  if (precision !== 'auto' && precision !== 'int8' && precision !== 'fp32') throw new UsageError('--precision must be auto, int8 or fp32');
  return loadModel(dir, {
    device,
    precision,
    threads: integer(args, 'threads', 0, 256) ?? 0,
    log: quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
  });
}

/** UTF-16 offset of a 1-based line and column, or a UsageError naming what is out of range. */
function offsetOf(text: string, line: number, col: number): number {
  let start = 0;
  for (let l = 1; l < line; l++) {
    const next = text.indexOf('\n', start);
    if (next < 0) throw new UsageError(`--line ${line} is past the end of the file (it has ${l} lines)`);
    start = next + 1;
  }
  const end = text.indexOf('\n', start);
  const length = (end < 0 ? text.length : end) - start - (text[end - 1] === '\r' ? 1 : 0);
  if (col > length + 1) throw new UsageError(`--col ${col} is past the end of line ${line} (it has ${length} characters)`);
  return start + col - 1;
}

/** Refuses a path that is missing or a folder, before anything is loaded (a raw EISDIR would exit 1). */
function requireFile(file: string, what: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new UsageError(`${what} not found: ${file}`);
  }
  if (!stat.isFile()) throw new UsageError(`${what} ${file} is a folder, not a file`);
}

/**
 * Opens the --out file before the model loads, so that a path that cannot be written is a usage error and not an
 * unhandled stream error (a stack trace) after the first task. Later write errors fail the batch with their message.
 */
function openOut(file: string): fs.WriteStream {
  let fd: number;
  try {
    fd = fs.openSync(file, 'w');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'its folder does not exist' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new UsageError(`cannot write --out ${file}: ${why}`);
  }
  const stream = fs.createWriteStream(file, { fd });
  // Each write's callback reports its error; without a listener the stream's 'error' event would crash the process.
  stream.on('error', () => undefined);
  return stream;
}

/** Per step, the hole-relative indices and texts of the tokens committed then. */
function unmaskingOrder(trace: Trace): { step: number; tokens: { hole: number; index: number; text: string; confidence: number; eos: boolean }[] }[] {
  const steps = new Map<number, { hole: number; index: number; text: string; confidence: number; eos: boolean }[]>();
  for (const t of trace.tokens) {
    if (t.filled) continue;
    const list = steps.get(t.step) ?? [];
    list.push({ hole: t.hole, index: t.index, text: t.text, confidence: t.confidence, eos: t.eos });
    steps.set(t.step, list);
  }
  return [...steps.entries()].sort((a, b) => a[0] - b[0]).map(([step, tokens]) => ({ step, tokens }));
}

/** A completion as the CLI reports it: ranked candidates carry their score and what it was made of. */
type Candidate = Pick<CandidateItem, 'text' | 'logProb' | 'meanConfidence' | 'syntaxErrors' | 'reward' | 'source'> & { score?: number };

/**
 * The completions at a query, best first: with one candidate the engine's text; with several, the alternatives ranked
 * as the extension's "Regenerate with N Candidates" ranks them (the syntax check reads `file`, the whole document
 * around the hole, with the grammars the build puts in dist/tree-sitter).
 */
async function generate(
  model: LoadedModel,
  query: CompletionQuery,
  file: CopySource,
  options: SamplerOptions,
  syntax: SyntaxChecker,
  copyMinMatch: number,
  /** The clock of --latency-budget, and when this completion's task started on it. */
  hooks: Pick<InfillHooks, 'now' | 'startedAt'>,
): Promise<{ candidates: readonly Candidate[]; result: InfillResult; gate: GateFeatures | undefined; modelRows: readonly ModelRow[] }> {
  if (options.candidates > 1) {
    const ranked = await rankedCompletions(model, query, file, options, hooks, syntax, (line) => process.stderr.write(`${line}\n`));
    const modelRows = ranked.candidates.map(({ text }, i) => ({ text, row: ranked.rows[i] }));
    return { ...withCopyCandidate(ranked, file, copyMinMatch), result: ranked.result, modelRows };
  }
  const outcome = await complete(model, query, options, hooks);
  const rows = outcome.texts.map((text, i): Candidate => {
    const c = outcome.result.candidates[outcome.candidateIndex[i]];
    return { text, logProb: c.logProb, meanConfidence: c.meanConfidence };
  });
  const copy = copyMatch(file, copyMinMatch);
  const candidates = withCopyRow(rows, copy, (c) => c.text, (text): Candidate => ({ text, logProb: 0, meanConfidence: 1, source: 'copy' }));
  const modelRows = outcome.texts.map((text, i) => ({ text, row: outcome.candidateIndex[i] }));
  return { candidates, result: outcome.result, gate: completionGate(outcome, copy, file.before), modelRows };
}

/** One of the model's own candidates (not the copy) and its row in InfillResult.candidates. */
interface ModelRow {
  readonly text: string;
  readonly row: number;
}

function newSyntaxChecker(): SyntaxChecker {
  const root = path.resolve(__dirname, '..');
  return new SyntaxChecker((file) => path.join(root, 'dist', 'tree-sitter', file), (line) => process.stderr.write(`${line}\n`));
}

function candidateJson(c: Candidate) {
  return {
    text: c.text,
    ...(c.score !== undefined ? { score: c.score } : {}),
    log_prob: c.logProb,
    mean_confidence: c.meanConfidence,
    ...(c.syntaxErrors !== undefined ? { syntax_errors: c.syntaxErrors } : {}),
    ...(c.reward !== undefined ? { reward: c.reward } : {}),
    ...(c.source !== undefined ? { source: c.source } : {}),
  };
}

/** The gate's numbers for the first completion (gate-features.ts) and its score (gate.ts), as the recipe's calibration reads them. */
function gateJson(gate: GateFeatures) {
  return {
    source: gate.source,
    copy_run: gate.copyRun,
    copy_agrees: gate.copyAgrees,
    mid_line: gate.midLine,
    agreement: round6(gate.agreement),
    first_line_min: round6(gate.firstLineMin),
    first_line_mean: round6(gate.firstLineMean),
    score: round6(gateScore(gate)),
  };
}

/**
 * --canvases: what the reward model reads for each of the model's ranked candidates (near-duplicates merged, blank
 * rows dropped, as ranking sees them; the text as in `candidates`), the span positions of the first hole, and the text
 * token healing took off the context.
 */
function canvasesJson(result: InfillResult, modelRows: readonly ModelRow[]) {
  const hole = result.holes[0];
  return {
    span: hole ? Array.from({ length: hole.length }, (_, k) => hole.start + k) : [],
    healed: result.healed[0] ?? '',
    rows: modelRows.map(({ text, row }) => ({ text, canvas: Array.from(result.candidates[row].canvas) })),
  };
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

function timings(outcome: { result: InfillResult }, totalMs: number) {
  const r = outcome.result;
  return {
    latency_ms: round(totalMs),
    engine_ms: round(r.totalMs),
    model_ms: round(r.modelMs),
    model_calls: r.modelCalls,
    cut_by_deadline: r.cutByDeadline,
    canvas_tokens: r.canvasTokens,
    // Canvas tokens of snippets of other files, [FILE] tokens included (0: none placed).
    related_tokens: r.relatedTokens,
  };
}

const round = (x: number): number => Math.round(x * 10) / 10;

async function single(args: Args, file: string): Promise<void> {
  if (args.line === undefined || args.col === undefined) throw new UsageError('give the cursor with --line and --col (1-based)');
  const line = integer(args, 'line', 1, Number.MAX_SAFE_INTEGER)!;
  const col = integer(args, 'col', 1, Number.MAX_SAFE_INTEGER)!;
  requireFile(file, 'file');
  const buffer = fs.readFileSync(file);
  const text = buffer.toString('utf8');
  const offset = offsetOf(text, line, col);
  const options = samplerOptions(args);
  const maxTokens = integer(args, 'max-tokens', 1, 4096) ?? defaultConfig().maxSpanTokens;
  const languageId = args.language ?? EXTENSION_LANGUAGES[path.extname(file).toLowerCase()] ?? 'plaintext';
  const window = windowAround(text, offset);
  const unsuitable = unsuitableReason(window);
  if (unsuitable) throw new UsageError(`will not complete ${file} at ${line}:${col}: ${unsuitable}`);

  const others = relatedFiles(args);

  const model = await openModel(args, Boolean(args.json));
  noteRelatedContext(model, options, args);
  const syntax = newSyntaxChecker();
  try {
    // Like the editor's other open documents, not timed: their tokens are ready before a request (document-tokens.ts).
    const related = relatedQuery(model, options, others, openDocuments(args));
    const started = performance.now();
    const query = { prefix: window.prefix, suffix: window.suffix, languageId, maxTokens, multiline: multiline(args), minLineConfidence: minLineConfidence(args), ...related.query };
    const clock = { now: wallClockMs, startedAt: wallClockMs() };
    const source = { before: text.slice(0, offset), after: text.slice(offset), ...(related.others.length > 0 ? { others: related.others } : {}) };
    const outcome = await generate(model, query, source, options, syntax, copyMinMatch(args), clock);
    const totalMs = performance.now() - started;
    const order = unmaskingOrder(outcome.result.trace);
    if (args.json) {
      const result = {
        file,
        line,
        col,
        language: languageId,
        model: model.manifest.id,
        device: model.device,
        load_ms: round(model.loadMs),
        completion: outcome.candidates[0]?.text ?? '',
        candidates: outcome.candidates.map(candidateJson),
        // The gate on suggestions made as you type (unmask.minConfidence): its numbers and score for the completion.
        ...(outcome.gate ? { gate: gateJson(outcome.gate) } : {}),
        order,
        local_arness: outcome.result.trace.localArness,
        global_arness: outcome.result.trace.globalArness,
        ...timings(outcome, totalMs),
      };
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    const r = outcome.result;
    const out: string[] = [];
    const files = model.contextFile ? `${path.basename(model.contextFile)} + ${path.basename(model.modelFile)}` : path.basename(model.modelFile);
    out.push(`model ${model.manifest.id} (${files}) on ${model.device}, loaded in ${model.loadMs.toFixed(0)} ms`);
    out.push(
      `${languageId} at ${line}:${col}: ${r.trace.holeLengths[0]}-token span, ${r.modelCalls} model calls${r.cutByDeadline ? ' (cut by --latency-budget)' : ''}, ` +
        `${totalMs.toFixed(0)} ms (${r.modelMs.toFixed(0)} ms in the model), canvas ${r.canvasTokens} tokens` +
        (r.relatedTokens > 0 ? ` (${r.relatedTokens} of them snippets of other files)` : ''),
    );
    if (outcome.candidates.length === 0) out.push('', '(no completion: the model ended the span at once)');
    for (const [i, c] of outcome.candidates.entries()) {
      const why =
        c.score === undefined
          ? ''
          : ` (score ${c.score.toFixed(2)}${c.syntaxErrors === undefined ? '' : `, ${c.syntaxErrors} syntax error${c.syntaxErrors === 1 ? '' : 's'}`})`;
      out.push('', outcome.candidates.length > 1 || c.score !== undefined ? `--- candidate ${i + 1}${why} ---` : '--- completion ---', c.text);
    }
    if (outcome.gate) {
      const threshold = defaultConfig().minConfidence;
      const shown = worthShowing(outcome.gate, threshold, false) ? 'shown' : 'withheld';
      out.push('', `${describeGate(outcome.gate)} (as you type at the default unmask.minConfidence ${threshold}: ${shown})`);
    }
    out.push('', '--- unmasking order (step: token@index confidence) ---');
    for (const { step, tokens } of order) {
      const shown = tokens.map((t) => `${t.eos ? '<eos>' : JSON.stringify(t.text)}@${t.index} ${t.confidence.toFixed(2)}`);
      out.push(`step ${String(step + 1).padStart(2)}: ${shown.join('  ')}`);
    }
    const fmt = (xs: readonly number[]): string => xs.map((x) => (Number.isFinite(x) ? x.toFixed(2) : '-')).join(' ');
    out.push(`AR-ness@1..8 local: ${fmt(r.trace.localArness)}   global: ${fmt(r.trace.globalArness)}`);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    syntax.dispose();
    await model.dispose();
  }
}

interface Task {
  id?: unknown;
  prefix?: unknown;
  suffix?: unknown;
  language?: unknown;
  max_tokens?: unknown;
  before?: unknown;
  after?: unknown;
  related?: unknown;
}

async function batch(args: Args): Promise<void> {
  const source = args.batch!;
  if (source !== '-') requireFile(source, 'batch file');
  const options = samplerOptions(args);
  const defaultMax = integer(args, 'max-tokens', 1, 4096) ?? defaultConfig().maxSpanTokens;
  const copyMin = copyMinMatch(args);
  const lines = multiline(args);
  const lineConfidence = minLineConfidence(args);
  const documents = openDocuments(args);
  const out = args.out && args.out !== '-' ? openOut(args.out) : process.stdout;
  let model: LoadedModel;
  try {
    model = await openModel(args, false);
  } catch (err) {
    if (out !== process.stdout) (out as fs.WriteStream).destroy();
    throw err;
  }
  noteRelatedContext(model, options, args);
  const syntax = newSyntaxChecker();
  const write = (record: object): Promise<void> =>
    new Promise((resolve, reject) => out.write(`${JSON.stringify(record)}\n`, (err) => (err ? reject(err) : resolve())));
  const input = readline.createInterface({ input: source === '-' ? process.stdin : fs.createReadStream(source), crlfDelay: Infinity });
  let lineNo = 0;
  let done = 0;
  let failed = 0;
  try {
    for await (const raw of input) {
      lineNo += 1;
      if (raw.trim() === '') continue;
      let task: Task;
      try {
        task = JSON.parse(raw) as Task;
      } catch (err) {
        failed += 1;
        await write({ line: lineNo, error: `not JSON: ${(err as Error).message}` });
        continue;
      }
      // JSON that is not an object (null, a number, a list) is a bad line, not the end of the batch.
      if (task === null || typeof task !== 'object' || Array.isArray(task)) {
        failed += 1;
        await write({ line: lineNo, error: `a task must be a JSON object {prefix, suffix, ...}, got ${task === null ? 'null' : Array.isArray(task) ? 'a list' : typeof task}` });
        continue;
      }
      const id = task.id ?? lineNo;
      const problems: string[] = [];
      if (typeof task.prefix !== 'string') problems.push('"prefix" must be a string');
      if (typeof task.suffix !== 'string') problems.push('"suffix" must be a string');
      if (task.language !== undefined && typeof task.language !== 'string') problems.push('"language" must be a string');
      const maxTokens = task.max_tokens ?? defaultMax;
      if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) problems.push('"max_tokens" must be a positive integer');
      for (const side of ['before', 'after'] as const) {
        if (task[side] !== undefined && typeof task[side] !== 'string') problems.push(`"${side}" must be a string`);
      }
      if (task.related !== undefined && !(Array.isArray(task.related) && task.related.every((text) => typeof text === 'string'))) {
        problems.push('"related" must be a list of strings');
      }
      // Binary content is refused here as in single-file mode and in the editor.
      if (
        (['prefix', 'suffix', 'before', 'after'] as const).some((k) => typeof task[k] === 'string' && task[k].includes('\u0000')) ||
        (Array.isArray(task.related) && task.related.some((text) => typeof text === 'string' && text.includes('\u0000')))
      ) {
        problems.push('the text contains NUL bytes (binary content)');
      }
      if (problems.length) {
        failed += 1;
        await write({ id, line: lineNo, error: problems.join('; ') });
        continue;
      }
      try {
        // In the editor the other documents' tokens are ready before a request (document-tokens.ts): not timed.
        const related = Array.isArray(task.related) ? relatedQuery(model, options, task.related as string[], documents) : { query: {}, others: [] };
        const started = performance.now();
        const clock = { now: wallClockMs, startedAt: wallClockMs() };
        const prefix = task.prefix as string;
        const suffix = task.suffix as string;
        const file = {
          before: (task.before as string | undefined) ?? prefix,
          after: (task.after as string | undefined) ?? suffix,
          ...(related.others.length > 0 ? { others: related.others } : {}),
        };
        // The cache n-gram model counts the file around the hole as far as the editor's window reaches.
        const around = windowAround(file.before + file.after, file.before.length);
        const document = file.before.endsWith(prefix) && file.after.startsWith(suffix) ? { before: around.prefix, after: around.suffix } : undefined;
        const outcome = await generate(
          model,
          {
            prefix,
            suffix,
            languageId: (task.language as string) ?? 'other',
            maxTokens: maxTokens as number,
            multiline: lines,
            minLineConfidence: lineConfidence,
            ...(document ? { document } : {}),
            ...related.query,
          },
          file,
          options,
          syntax,
          copyMin,
          clock,
        );
        const totalMs = performance.now() - started;
        await write({
          id,
          completion: outcome.candidates[0]?.text ?? '',
          // The gate on the shown suggestion (issue 14: show a suggestion only when likely right): what it reads and its
          // score (gate.ts); mean_confidence is the gate before it.
          ...(outcome.candidates[0] ? { mean_confidence: outcome.candidates[0].meanConfidence } : {}),
          ...(outcome.candidates[0]?.source ? { source: outcome.candidates[0].source } : {}),
          ...(outcome.gate ? { gate: gateJson(outcome.gate) } : {}),
          ...(options.candidates > 1 ? { candidates: outcome.candidates.map(candidateJson) } : {}),
          // Per step, the positions (within the span) committed then: the decoding order for AR-ness.
          order: unmaskingOrder(outcome.result.trace).map((s) => s.tokens.map((t) => t.index)),
          ...timings(outcome, totalMs),
          ...(args.canvases ? canvasesJson(outcome.result, outcome.modelRows) : {}),
        });
        done += 1;
      } catch (err) {
        failed += 1;
        await write({ id, line: lineNo, error: (err as Error).message });
      }
    }
  } finally {
    syntax.dispose();
    await model.dispose();
    if (out !== process.stdout) await new Promise<void>((resolve) => (out as fs.WriteStream).end(resolve));
  }
  process.stderr.write(`batch: ${done} tasks filled, ${failed} failed${args.out && args.out !== '-' ? `, results in ${args.out}` : ''}\n`);
}

async function main(argv: string[]): Promise<number> {
  try {
    const { values: args, positionals } = parse(argv);
    if (args.help) {
      process.stdout.write(`${HELP}\n`);
      return 0;
    }
    if (args.batch !== undefined) {
      if (positionals.length) throw new UsageError('--batch takes no file argument');
      await batch(args);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError(positionals.length ? 'give one file' : 'give a file and --line/--col, or --batch (see --help)');
    await single(args, positionals[0]);
    return 0;
  } catch (err) {
    process.stderr.write(`unmask: ${(err as Error).message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
