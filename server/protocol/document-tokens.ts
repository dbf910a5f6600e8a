/**
 * Token ids of the open documents, made ready off the request path for the cache n-gram model (issue 14,
 * docs/cache-ngram.md). One background pass per opened or edited document does two things:
 *
 * 1. Warming. A request's cache counts the window around the cursor (24K characters before it, 8K after:
 *    window.ts), encoded through the tokenizer's line cache (runtime/tokenizer.ts), which encodes only lines it has
 *    not seen. In a file the server has not seen that is 25-30K characters encoded cold: 100-400 ms on a loaded
 *    2-core machine, all of it inside unmask.latencyBudgetMs. A pass encodes the same window (around the last edit;
 *    the first OPENED_WARM_CHARS characters of a document opened and not yet edited) one line-cache piece at a time,
 *    in slices of at most `sliceMs` on the event loop and never while a generation is in flight (`hold`), so the
 *    request finds its lines in the cache. A request never waits for a pass: what is not warm yet it encodes itself,
 *    as it did before; it may wait for one slice that has already started. Typing inside the warm window starts no
 *    pass (the request encodes the edited line, as always): one runs when the document has been quiet for
 *    REFRESH_AFTER_MS, or at once when an edit lands near the window's edge or pastes a lot.
 * 2. Other open documents (unmask.cacheNgramOpenDocuments). The pass keeps the document's ids around its last edit
 *    (RELATED_FILE_TOKENS, three quarters of them before it; the start of a document not yet edited), so that a
 *    request in another document of the same language family hands the cache the most recently edited few
 *    documents' tokens (`related`, RELATED_TOKENS in all) without encoding anything.
 *
 * Bounded: the line cache has its own cap; passes run for the PASS_DOCUMENTS most recently touched documents only;
 * ids are kept for the KEPT_EXCERPTS most recently touched; a pass holds one version of one document while it runs.
 * No LSP types here: the server hands in a lookup of its open documents and the loaded model's codec.
 */
import type { TextCodec } from '../engine/types';
import { splitAtLineStarts } from '../runtime/tokenizer';
import { PREFIX_WINDOW_CHARS, SUFFIX_WINDOW_CHARS, unsuitableReason } from './window';

/** Characters warmed from the start of a document opened and not yet edited (where its cursor is, is not known). */
export const OPENED_WARM_CHARS = PREFIX_WINDOW_CHARS + SUFFIX_WINDOW_CHARS;
/** Longest slice of a pass, in ms, before it yields to the event loop. */
export const SLICE_MS = 4;
/** Token ids kept per document for requests in other documents. */
export const RELATED_FILE_TOKENS = 4096;
/** Token ids of other documents handed to one request, in all. */
export const RELATED_TOKENS = 3 * RELATED_FILE_TOKENS;
/**
 * Other documents whose ids a request hands a model trained with snippets of other files (engine/related-context.ts;
 * the trainer drew its snippets from up to 3 other files of the package).
 */
export const SNIPPET_DOCUMENTS = 3;
/** Only the most recently touched documents get passes (the line cache holds about this many windows). */
export const PASS_DOCUMENTS = 8;
/** Documents whose ids are kept. */
export const KEPT_EXCERPTS = 16;
/**
 * An edit this far inside the window the last pass warmed needs no pass at once (the request encodes the edited
 * line itself, as it always did): the pass waits until the document has been quiet this long, to bring its ids up to
 * date. Typing then costs no pass per keystroke.
 */
export const REFRESH_AFTER_MS = 1000;
/** Characters from the warm window's edges within which an edit starts a pass at once (the window moves). */
export const WARM_EDGE_CHARS = 2048;
/** An edit that inserts more than this many characters starts a pass at once (a paste). */
export const LARGE_EDIT_CHARS = 1024;

/** An open document as the server holds it (vscode-languageserver-textdocument's TextDocument fits). */
export interface OpenText {
  readonly uri: string;
  readonly languageId: string;
  readonly version: number;
  getText(): string;
}

const JS_FAMILY = new Set(['javascript', 'javascriptreact', 'typescript', 'typescriptreact']);

/** The languages whose files feed each other's caches: JavaScript and TypeScript (and their React forms) are one. */
export function languageFamily(languageId: string): string {
  const id = languageId.toLowerCase();
  return JS_FAMILY.has(id) ? 'javascript' : id;
}

/** What a pass encodes of a document `length` characters long: the window around `anchor`, or its start. */
export function warmRange(length: number, anchor: number | undefined): [number, number] {
  if (anchor === undefined) return [0, Math.min(length, OPENED_WARM_CHARS)];
  const at = Math.max(0, Math.min(length, anchor));
  return [Math.max(0, at - PREFIX_WINDOW_CHARS), Math.min(length, at + SUFFIX_WINDOW_CHARS)];
}

/**
 * The line-cache pieces (splitAtLineStarts) that lie wholly inside text[start, end), as the tokenizer cuts the whole
 * text, and the index of the first one that starts at or after `anchor` (pieces.length when none does). A piece cut
 * by the range's edges is left out: a request's window cuts its own edges elsewhere.
 */
export function piecesIn(text: string, start: number, end: number, anchor = start): { pieces: string[]; anchorPiece: number } {
  const pieces = splitAtLineStarts(text.slice(start, end));
  let first = 0;
  let last = pieces.length;
  // A piece at the range's start is whole only when the range starts the text; the last one may run on past the end
  // (the boundary after it depends on the text that follows).
  if (start > 0) first = 1;
  if (end < text.length) last -= 1;
  let offset = start;
  let anchorPiece = -1;
  const kept: string[] = [];
  for (let i = 0; i < pieces.length; i++) {
    if (i >= first && i < last) {
      if (anchorPiece < 0 && offset >= anchor) anchorPiece = kept.length;
      kept.push(pieces[i]);
    }
    offset += pieces[i].length;
  }
  return { pieces: kept, anchorPiece: anchorPiece < 0 ? kept.length : anchorPiece };
}

/** At most `size` ids of `ids` around index `at`: three quarters before it where there are that many. */
export function excerptAround(ids: Int32Array, at: number, size: number): { ids: Int32Array; at: number } {
  if (ids.length <= size) return { ids, at };
  const before = Math.min(at, Math.max(Math.ceil(size * 0.75), size - (ids.length - at)));
  const start = at - before;
  return { ids: ids.subarray(start, start + size), at: before };
}

/**
 * What a pass over a document encodes: the pieces of its warm range (warmRange) and the first piece at or after
 * the anchor; undefined when the server would refuse to complete that text (binary, minified: window.ts), which is
 * then neither warmed nor handed to other requests.
 */
export function passPlan(text: string, anchor: number | undefined): { pieces: string[]; anchorPiece: number } | undefined {
  const [start, end] = warmRange(text.length, anchor);
  const at = anchor === undefined ? start : Math.max(start, Math.min(end, anchor));
  if (unsuitableReason({ prefix: text.slice(start, at), suffix: text.slice(at, end), cutBefore: start, cutAfter: text.length - end })) return undefined;
  return piecesIn(text, start, end, at);
}

/**
 * The ids a document offers requests in other documents, encoded in one go: what a finished pass keeps (the CLI's
 * batch mode hands its tasks' other files to the cache through this, as the editor's open documents).
 */
export function relatedExcerpt(codec: TextCodec, text: string, anchor?: number): { ids: Int32Array; at: number } | undefined {
  const plan = passPlan(text, anchor);
  if (!plan) return undefined;
  const ids: number[] = [];
  let at = 0;
  plan.pieces.forEach((piece, i) => {
    if (i === plan.anchorPiece) at = ids.length;
    for (const id of codec.encode(piece)) ids.push(id);
  });
  if (plan.anchorPiece >= plan.pieces.length) at = ids.length;
  const excerpt = excerptAround(Int32Array.from(ids), at, RELATED_FILE_TOKENS);
  return { ids: excerpt.ids.slice(), at: excerpt.at };
}

/** Excerpts (most wanted first) cut to `tokens` ids in all, each around its own anchor. */
export function withinBudget(excerpts: readonly { readonly ids: Int32Array; readonly at: number }[], tokens: number): Int32Array[] {
  const out: Int32Array[] = [];
  let room = tokens;
  for (const excerpt of excerpts) {
    if (room <= 0) break;
    const { ids } = excerptAround(excerpt.ids, excerpt.at, room);
    if (ids.length === 0) continue;
    out.push(ids);
    room -= ids.length;
  }
  return out;
}

export interface DocumentTokensOptions {
  /** The open document of a uri. */
  readonly lookup: (uri: string) => OpenText | undefined;
  /** The loaded model's codec; undefined while none is loaded (passes wait for `kick`). */
  readonly codec: () => TextCodec | undefined;
  /** Runs a callback on a later turn of the event loop (default setImmediate: incoming messages go first). */
  readonly schedule?: (run: () => void) => void;
  /** A clock in ms (default performance.now). */
  readonly now?: () => number;
  readonly sliceMs?: number;
  /** One line per pass over an opened document, or one that took more than a few slices (text the cache had not seen). */
  readonly log?: (line: string) => void;
  /** Runs a callback after `ms`; returns its cancel (default setTimeout, unref'd). */
  readonly delay?: (run: () => void, ms: number) => () => void;
}

interface Entry {
  readonly uri: string;
  /** Recency: a counter bumped when the document is opened or edited. */
  touched: number;
  /** Offset just after the last edit, or undefined for a document opened and not edited since. */
  anchor?: number;
  /** The document changed since its last pass. */
  dirty: boolean;
  /** The codec of its last pass (ids of codecs, see `codecId`). */
  passCodec: number;
  excerpt?: { readonly ids: Int32Array; readonly at: number; readonly codec: number };
  /** The range the last pass warmed, and whether it ran to the document's end then. */
  warm?: { readonly start: number; readonly end: number; readonly toEnd: boolean };
  /** Cancels the refresh armed by an edit inside the warm window. */
  cancelRefresh?: () => void;
}

interface Pass {
  readonly uri: string;
  readonly version: number;
  readonly codec: TextCodec;
  readonly pieces: string[];
  readonly anchorPiece: number;
  next: number;
  readonly ids: number[];
  anchorIndex: number;
  readonly started: number;
  readonly range: { readonly start: number; readonly end: number; readonly toEnd: boolean };
  /** Over a document opened and not edited yet. */
  readonly opened: boolean;
  workMs: number;
  slices: number;
}

export class DocumentTokens {
  private readonly entries = new Map<string, Entry>();
  /** Excerpts decoded to text (relatedTexts), kept while the excerpt is: a pass replaces it. */
  private readonly decoded = new WeakMap<NonNullable<Entry['excerpt']>, string>();
  private clock = 0;
  private pass?: Pass;
  private holds = 0;
  private scheduled = false;
  private readonly codecIds = new WeakMap<TextCodec, number>();
  private codecs = 0;
  private readonly schedule: (run: () => void) => void;
  private readonly now: () => number;
  private readonly sliceMs: number;
  private readonly delay: (run: () => void, ms: number) => () => void;
  /** What the passes did, for the tests and the bench. */
  readonly stats = { slices: 0, pieces: 0, passes: 0, longestSliceMs: 0 };

  constructor(private readonly options: DocumentTokensOptions) {
    this.schedule = options.schedule ?? ((run) => void setImmediate(run));
    this.now = options.now ?? (() => performance.now());
    this.sliceMs = options.sliceMs ?? SLICE_MS;
    this.delay =
      options.delay ??
      ((run, ms) => {
        const timer = setTimeout(run, ms);
        timer.unref?.();
        return () => clearTimeout(timer);
      });
  }

  /** A document was opened: a pass warms its start (its cursor is not known). */
  opened(uri: string): void {
    this.touch(uri, undefined);
  }

  /**
   * A document was edited; `anchor` is the offset just after the edit, where the cursor most likely is, `inserted`
   * the characters the edit inserted. An edit well inside the window the last pass warmed (typing) only arms a
   * refresh for when the document has been quiet for REFRESH_AFTER_MS; any other starts a pass.
   */
  edited(uri: string, anchor: number | undefined, inserted = 0): void {
    const entry = this.entries.get(uri);
    const codec = this.options.codec();
    const warm = entry?.warm;
    if (entry && warm && codec && entry.passCodec === this.codecId(codec) && anchor !== undefined && inserted <= LARGE_EDIT_CHARS) {
      const inside = (warm.start === 0 || anchor >= warm.start + WARM_EDGE_CHARS) && (warm.toEnd || anchor <= warm.end - WARM_EDGE_CHARS);
      if (inside) {
        entry.touched = ++this.clock;
        entry.anchor = anchor;
        entry.cancelRefresh?.();
        entry.cancelRefresh = this.delay(() => {
          entry.cancelRefresh = undefined;
          if (this.entries.get(uri) !== entry) return;
          entry.dirty = true;
          this.kick();
        }, REFRESH_AFTER_MS);
        return;
      }
    }
    this.touch(uri, anchor ?? entry?.anchor);
  }

  closed(uri: string): void {
    this.entries.get(uri)?.cancelRefresh?.();
    this.entries.delete(uri);
    if (this.pass?.uri === uri) this.pass = undefined;
  }

  /**
   * Holds the passes while a generation runs (its tokenizing, its model calls and its ranking share the CPU with
   * them); returns the release, which lets them go on.
   */
  hold(): () => void {
    this.holds += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds -= 1;
      this.kick();
    };
  }

  /** Schedules the next slice when there is work and nothing holds it (call when a model has been loaded). */
  kick(): void {
    if (this.scheduled || this.holds > 0 || !this.hasWork()) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      this.slice();
    });
  }

  /** Whether some document still needs a pass under the current codec. */
  hasWork(): boolean {
    const codec = this.options.codec();
    if (!codec) return false;
    return this.pass !== undefined || this.nextEntry(this.codecId(codec)) !== undefined;
  }

  /**
   * Token ids of up to `documents` other open documents of `languageId`'s family, most recently touched first, each as
   * kept by its last pass under the loaded codec (a document edited since gives its ids from before: close enough
   * for counting n-grams), `tokens` in all. Encodes nothing.
   */
  related(uri: string, languageId: string, documents: number, tokens = RELATED_TOKENS): Int32Array[] {
    const codec = this.options.codec();
    if (!codec) return [];
    return withinBudget(
      this.pickRelated(codec, uri, languageId, documents).map((entry) => entry.excerpt!),
      tokens,
    );
  }

  /**
   * The same documents' excerpts as text (what the copy candidate looks in, copy-candidate.ts), decoded once per pass
   * and kept with the excerpt, so a request decodes nothing it did before.
   */
  relatedTexts(uri: string, languageId: string, documents: number): string[] {
    const codec = this.options.codec();
    if (!codec) return [];
    return this.pickRelated(codec, uri, languageId, documents).map((entry) => {
      const excerpt = entry.excerpt!;
      let text = this.decoded.get(excerpt);
      if (text === undefined) {
        text = codec.decode(Array.from(excerpt.ids));
        this.decoded.set(excerpt, text);
      }
      return text;
    });
  }

  /** Up to `documents` other open documents of the language family with ids under the loaded codec, most recent first. */
  private pickRelated(codec: TextCodec, uri: string, languageId: string, documents: number): Entry[] {
    if (documents <= 0) return [];
    const current = this.codecId(codec);
    const family = languageFamily(languageId);
    return [...this.entries.values()]
      .filter((entry) => {
        if (entry.uri === uri || entry.excerpt?.codec !== current) return false;
        const document = this.options.lookup(entry.uri);
        return document !== undefined && languageFamily(document.languageId) === family;
      })
      .sort((a, b) => b.touched - a.touched)
      .slice(0, documents);
  }

  private touch(uri: string, anchor: number | undefined): void {
    let entry = this.entries.get(uri);
    if (!entry) {
      entry = { uri, touched: 0, dirty: true, passCodec: 0 };
      this.entries.set(uri, entry);
    }
    entry.touched = ++this.clock;
    entry.anchor = anchor;
    entry.dirty = true;
    entry.cancelRefresh?.();
    entry.cancelRefresh = undefined;
    this.kick();
  }

  private codecId(codec: TextCodec): number {
    let id = this.codecIds.get(codec);
    if (id === undefined) {
      id = ++this.codecs;
      this.codecIds.set(codec, id);
    }
    return id;
  }

  /** The most recently touched document among the PASS_DOCUMENTS most recent that needs a pass under `codec`. */
  private nextEntry(codec: number): Entry | undefined {
    let best: Entry | undefined;
    const recent = [...this.entries.values()].sort((a, b) => b.touched - a.touched).slice(0, PASS_DOCUMENTS);
    for (const entry of recent) {
      if ((entry.dirty || entry.passCodec !== codec) && this.options.lookup(entry.uri) && (!best || entry.touched > best.touched)) best = entry;
    }
    return best;
  }

  /** Starts a pass over the next document's range, or returns undefined when no document needs one. */
  private startPass(codec: TextCodec): Pass | undefined {
    const id = this.codecId(codec);
    for (;;) {
      const entry = this.nextEntry(id);
      if (!entry) return undefined;
      const document = this.options.lookup(entry.uri)!;
      const text = document.getText();
      const plan = passPlan(text, entry.anchor);
      if (!plan) {
        entry.dirty = false;
        entry.passCodec = id;
        entry.excerpt = undefined;
        entry.warm = undefined;
        continue;
      }
      const { pieces, anchorPiece } = plan;
      const [start, end] = warmRange(text.length, entry.anchor);
      const range = { start, end, toEnd: end === text.length };
      return { uri: entry.uri, version: document.version, codec, pieces, anchorPiece, next: 0, ids: [], anchorIndex: 0, started: this.now(), range, opened: entry.anchor === undefined, workMs: 0, slices: 0 };
    }
  }

  /** One slice: pieces of passes until `sliceMs` has gone by, then the next slice is scheduled. */
  private slice(): void {
    if (this.holds > 0) return;
    const codec = this.options.codec();
    if (!codec) {
      this.pass = undefined;
      return;
    }
    const started = this.now();
    let now = started;
    while (now - started < this.sliceMs) {
      if (this.pass && !this.stillCurrent(this.pass, codec)) this.pass = undefined;
      const pass = (this.pass ??= this.startPass(codec));
      if (!pass) break;
      if (pass.next === pass.anchorPiece) pass.anchorIndex = pass.ids.length;
      if (pass.next < pass.pieces.length) {
        for (const id of codec.encode(pass.pieces[pass.next])) pass.ids.push(id);
        pass.next += 1;
        this.stats.pieces += 1;
      }
      if (pass.next === pass.anchorPiece) pass.anchorIndex = pass.ids.length;
      const before = now;
      now = this.now();
      pass.workMs += now - before;
      if (pass.next >= pass.pieces.length) {
        this.finish(pass, codec);
        this.pass = undefined;
      }
    }
    const took = now - started;
    if (this.pass) this.pass.slices += 1;
    this.stats.slices += 1;
    this.stats.longestSliceMs = Math.max(this.stats.longestSliceMs, took);
    this.kick();
  }

  /** Whether a pass still matches its document (same version, still open) and the loaded codec. */
  private stillCurrent(pass: Pass, codec: TextCodec): boolean {
    return pass.codec === codec && this.entries.has(pass.uri) && this.options.lookup(pass.uri)?.version === pass.version;
  }

  private finish(pass: Pass, codec: TextCodec): void {
    const entry = this.entries.get(pass.uri);
    if (!entry) return;
    const id = this.codecId(codec);
    const all = Int32Array.from(pass.ids);
    const excerpt = excerptAround(all, pass.anchorIndex, RELATED_FILE_TOKENS);
    // A copy: the excerpt must not keep the whole window's ids alive.
    entry.excerpt = { ids: excerpt.ids.length === all.length ? all : excerpt.ids.slice(), at: excerpt.at, codec: id };
    entry.dirty = false;
    entry.passCodec = id;
    entry.warm = pass.range;
    this.stats.passes += 1;
    const kept = [...this.entries.values()].filter((e) => e.excerpt).sort((a, b) => b.touched - a.touched);
    for (const old of kept.slice(KEPT_EXCERPTS)) old.excerpt = undefined;
    // One line per opened document of some size, and per pass that took more than a few slices (text the line cache
    // had not seen); passes over warm lines after an edit take a slice or two and say nothing.
    const chars = pass.pieces.reduce((sum, piece) => sum + piece.length, 0);
    if ((pass.opened && chars >= 4096) || pass.workMs > 10 * this.sliceMs) {
      this.options.log?.(
        `cache n-gram: encoded ${Math.round(chars / 1000)}K characters (${all.length} tokens) of ${pass.uri} ahead of requests: ` +
          `${pass.workMs.toFixed(0)} ms of work in ${pass.slices + 1} slices over ${(this.now() - pass.started).toFixed(0)} ms`,
      );
    }
  }
}
