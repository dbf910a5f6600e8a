/**
 * An LRU cache of inline completions keyed by (document, cursor offset, hash of the text around the cursor).
 *
 * Besides exact hits it serves "typing along": when the user types the first characters of a completion that is
 * still cached, the document now holds the old prefix plus those characters, and the cache answers with the rest
 * of the completion instead of asking the model again (Tabby and Copilot do the same). It does not import `vscode`.
 */

/** What the cache is asked about: the text around the cursor, already windowed by the caller. */
export interface CacheQuery {
  readonly uri: string;
  /** Offset of the cursor in the document. */
  readonly offset: number;
  /** Text before the cursor (its tail is what matters). */
  readonly prefix: string;
  /** Text after the cursor (its head is what matters). */
  readonly suffix: string;
}

/** One completion, relative to the cursor: insert `text` there, replacing `replaceAfter` characters after it. */
export interface Completion {
  readonly text: string;
  readonly replaceAfter: number;
}

interface Entry {
  readonly uri: string;
  readonly offset: number;
  readonly prefixTail: string;
  readonly suffixHead: string;
  readonly completions: readonly Completion[];
}

/** cyrb53: a fast 53-bit string hash; good enough for a cache key, and the key's texts are compared on a hit. */
export function hashText(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

export interface CacheOptions {
  /** Most entries kept; the least recently used one is dropped first. */
  readonly maxEntries: number;
  /** Characters of prefix (tail) and suffix (head) that identify the cursor's context. */
  readonly contextChars: number;
}

export class CompletionCache {
  /** Insertion order of a Map is its LRU order: a hit is deleted and re-inserted at the end. */
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: CacheOptions = { maxEntries: 100, contextChars: 2000 }) {}

  get size(): number {
    return this.entries.size;
  }

  /** Remembers the completions returned for a query; empty lists are remembered too (the model had nothing). */
  set(query: CacheQuery, completions: readonly Completion[]): void {
    const entry = this.entryFor(query, completions);
    const key = this.keyOf(entry);
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /**
   * The completions for this cursor context: an exact hit, or the remainders of a completion the user has been
   * typing along. `undefined` means nothing cached applies and the model must be asked.
   */
  get(query: CacheQuery): readonly Completion[] | undefined {
    const probe = this.entryFor(query, []);
    const key = this.keyOf(probe);
    const exact = this.entries.get(key);
    if (exact && exact.prefixTail === probe.prefixTail && exact.suffixHead === probe.suffixHead) {
      this.touch(key, exact);
      return exact.completions;
    }
    for (const [entryKey, entry] of [...this.entries].reverse()) {
      const remainders = this.typedAlong(entry, probe);
      if (remainders) {
        this.touch(entryKey, entry);
        return remainders;
      }
    }
    return undefined;
  }

  /** Forgets everything about one document (closed) or everything (settings or model changed). */
  clear(uri?: string): void {
    if (uri === undefined) {
      this.entries.clear();
      return;
    }
    for (const [key, entry] of this.entries) if (entry.uri === uri) this.entries.delete(key);
  }

  private typedAlong(entry: Entry, probe: Entry): Completion[] | undefined {
    const typedLength = probe.offset - entry.offset;
    if (entry.uri !== probe.uri || typedLength <= 0 || entry.suffixHead !== probe.suffixHead) return undefined;
    const typed = probe.prefixTail.slice(-typedLength);
    if (typed.length !== typedLength) return undefined;
    // The text before what was typed must still be the text the completion was made for.
    const before = probe.prefixTail.slice(0, -typedLength);
    const overlap = Math.min(before.length, entry.prefixTail.length);
    if (overlap > 0 && before.slice(-overlap) !== entry.prefixTail.slice(-overlap)) return undefined;
    const remainders = entry.completions
      .filter((c) => c.text.length > typedLength && c.text.startsWith(typed))
      .map((c) => ({ text: c.text.slice(typedLength), replaceAfter: c.replaceAfter }));
    return remainders.length > 0 ? remainders : undefined;
  }

  private touch(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
  }

  private entryFor(query: CacheQuery, completions: readonly Completion[]): Entry {
    const n = this.options.contextChars;
    return {
      uri: query.uri,
      offset: query.offset,
      // Copies, not slices: a slice would keep the whole document text of that keystroke alive per entry.
      prefixTail: detachedCopy(query.prefix.length > n ? query.prefix.slice(-n) : query.prefix),
      suffixHead: detachedCopy(query.suffix.length > n ? query.suffix.slice(0, n) : query.suffix),
      completions,
    };
  }

  private keyOf(entry: Entry): string {
    return `${entry.uri}\u0000${entry.offset}\u0000${hashText(entry.prefixTail)}\u0000${hashText(entry.suffixHead, 1)}`;
  }
}

/** A copy of `text` that does not keep the string it was sliced from alive (as the server's line cache does). */
function detachedCopy(text: string): string {
  return (' ' + text).slice(1);
}
