/**
 * Syntax checks of candidate fills with tree-sitter (web-tree-sitter, WebAssembly): how many syntax errors a file
 * has once a candidate is inserted at a position. The reranker (engine/rerank.ts) turns the counts into a score.
 *
 * This is where the parser and its grammars load (I/O): the runtime's tree-sitter.wasm and one grammar .wasm per
 * language, which esbuild.mjs copies from node_modules into dist/tree-sitter/ (see GRAMMAR_FILES). A grammar loads on
 * the first request for its language; one that fails to load is logged once and its language is treated as having
 * no parser, so ranking falls back to the likelihood alone rather than failing the request.
 *
 * The grammars are made for highlighting and accept some code a compiler rejects (an empty Python block, mismatched
 * JSX tags), so 0 means "no error that tree-sitter sees"; what they do reject is broken for certain.
 *
 * Each request parses the text without the insertion once and reparses it incrementally for every candidate (an
 * insertion is one edit). A long file is checked in a window around the insertion (checkedWindow): a full parse grows
 * with the file (measured: 50 KB of Python 10-20 ms, 500 KB 150 ms), and inline completions rank candidates on every
 * keystroke. The ranking only compares candidates' counts (rerank.ts), and errors outside the window are the same for
 * every candidate.
 */
import { Language, Parser, type Point, type Tree } from 'web-tree-sitter';

/** The runtime's own WebAssembly file (it must match the web-tree-sitter version that is bundled). */
export const RUNTIME_FILE = 'tree-sitter.wasm';

/** VS Code language id -> grammar file (from @vscode/tree-sitter-wasm). JavaScript's grammar includes JSX. */
export const GRAMMAR_FILES: Readonly<Record<string, string>> = Object.freeze({
  python: 'tree-sitter-python.wasm',
  typescript: 'tree-sitter-typescript.wasm',
  typescriptreact: 'tree-sitter-tsx.wasm',
  javascript: 'tree-sitter-javascript.wasm',
  javascriptreact: 'tree-sitter-javascript.wasm',
});

/** At most this much text on each side of the insertion is parsed (less: the window ends at a top-level line). */
export const CHECK_WINDOW_CHARS = 16_000;

/** Whether a line starts a top-level statement: no indentation, and not the closing bracket of a block. */
function isTopLevelLine(text: string, lineStart: number): boolean {
  const c = text[lineStart];
  return c !== undefined && !/[\s)\]}]/.test(c);
}

/**
 * The text around an insertion that is parsed: all of it when each side is at most CHECK_WINDOW_CHARS long, else a
 * window that starts and ends at top-level lines (where a cut leaves whole statements in most code) within that many
 * characters of the insertion, or at a plain line start when there is none.
 */
export function checkedWindow(before: string, after: string): { before: string; after: string } {
  let start = 0;
  if (before.length > CHECK_WINDOW_CHARS) {
    const earliest = before.length - CHECK_WINDOW_CHARS;
    const firstLine = before.indexOf('\n', earliest - 1) + 1 || before.length;
    start = firstLine;
    for (let line = firstLine; line > 0 && line < before.length; line = before.indexOf('\n', line) + 1) {
      if (isTopLevelLine(before, line)) {
        start = line;
        break;
      }
    }
  }
  let end = after.length;
  if (after.length > CHECK_WINDOW_CHARS) {
    const lastLine = after.lastIndexOf('\n', CHECK_WINDOW_CHARS - 1) + 1;
    end = lastLine;
    // Line starts only: index 0 continues the cursor's line. Stop after 1, since lastIndexOf with a negative start
    // searches from 0 and would find the newline at 0 again (an endless loop when `after` begins with one).
    for (let line = lastLine; line > 0; line = line > 1 ? after.lastIndexOf('\n', line - 2) + 1 : 0) {
      if (isTopLevelLine(after, line)) {
        end = line;
        break;
      }
    }
  }
  return { before: before.slice(start), after: after.slice(0, end) };
}

/** The path of one of the .wasm files named above. */
export type LocateFile = (file: string) => string;

let runtimeReady: Promise<void> | undefined;

/** The end of `text` as a tree-sitter point (row, UTF-16 column), starting from `start`. */
function advance(start: Point, text: string): Point {
  const lastBreak = text.lastIndexOf('\n');
  if (lastBreak === -1) return { row: start.row, column: start.column + text.length };
  let rows = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) rows++;
  return { row: start.row + rows, column: text.length - lastBreak - 1 };
}

/** ERROR and MISSING nodes in a tree; subtrees without errors are skipped. */
function countErrors(tree: Tree): number {
  let errors = 0;
  const stack = [tree.rootNode];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (node.isError || node.isMissing) errors++;
    if (!node.hasError) continue;
    for (let i = 0; i < node.childCount; i++) {
      const child = node.child(i);
      if (child) stack.push(child);
    }
  }
  return errors;
}

export class SyntaxChecker {
  private readonly languages = new Map<string, Promise<Language | undefined>>();
  private readonly parsers = new Map<string, Parser>();
  /** The last file parsed without an insertion, kept so that repeated requests at one place parse it once. */
  private base?: { languageId: string; before: string; after: string; tree: Tree };

  constructor(
    private readonly locate: LocateFile,
    private readonly log: (line: string) => void,
  ) {}

  /** Whether a grammar exists for the language (it may still fail to load). */
  supports(languageId: string): boolean {
    return Object.hasOwn(GRAMMAR_FILES, languageId);
  }

  /**
   * For each text, the syntax errors of `before + text + after` (of its window around the insertion when the file is
   * long: checkedWindow); undefined when the language has no parser (or its grammar failed to load).
   */
  async errorsWithInsertions(languageId: string, wholeBefore: string, wholeAfter: string, texts: readonly string[]): Promise<number[] | undefined> {
    if (!this.supports(languageId)) return undefined;
    const parser = await this.parserFor(languageId);
    if (!parser) return undefined;
    const { before, after } = checkedWindow(wholeBefore, wholeAfter);
    const base = this.baseTree(parser, languageId, before, after);
    const start = advance({ row: 0, column: 0 }, before);
    return texts.map((text) => {
      const edited = base.copy();
      edited.edit({
        startIndex: before.length,
        oldEndIndex: before.length,
        newEndIndex: before.length + text.length,
        startPosition: start,
        oldEndPosition: start,
        newEndPosition: advance(start, text),
      });
      const tree = parser.parse(before + text + after, edited);
      edited.delete();
      if (!tree) throw new Error(`tree-sitter returned no tree for a ${languageId} file`);
      const errors = countErrors(tree);
      tree.delete();
      return errors;
    });
  }

  /**
   * For each fill (one text per hole), the syntax errors of the file `segments` make with those texts in the holes
   * between them (segments.length = holes + 1), checked from a window before the first hole to one after the last
   * (checkedWindow); undefined when the language has no parser (or its grammar failed to load).
   */
  async errorsWithFills(languageId: string, segments: readonly string[], fills: readonly (readonly string[])[]): Promise<number[] | undefined> {
    if (!this.supports(languageId)) return undefined;
    const parser = await this.parserFor(languageId);
    if (!parser) return undefined;
    const { before, after } = checkedWindow(segments[0], segments[segments.length - 1]);
    const between = segments.slice(1, -1);
    return fills.map((texts) => {
      if (texts.length !== segments.length - 1) throw new Error(`${texts.length} texts for ${segments.length - 1} holes`);
      const tree = parser.parse(before + texts.map((t, i) => t + (between[i] ?? '')).join('') + after);
      if (!tree) throw new Error(`tree-sitter returned no tree for a ${languageId} file`);
      const errors = countErrors(tree);
      tree.delete();
      return errors;
    });
  }

  dispose(): void {
    this.base?.tree.delete();
    this.base = undefined;
    for (const parser of this.parsers.values()) parser.delete();
    this.parsers.clear();
  }

  private baseTree(parser: Parser, languageId: string, before: string, after: string): Tree {
    const base = this.base;
    if (base && base.languageId === languageId && base.before === before && base.after === after) return base.tree;
    const tree = parser.parse(before + after);
    if (!tree) throw new Error(`tree-sitter returned no tree for a ${languageId} file`);
    base?.tree.delete();
    this.base = { languageId, before, after, tree };
    return tree;
  }

  private async parserFor(languageId: string): Promise<Parser | undefined> {
    const file = GRAMMAR_FILES[languageId];
    let language = this.languages.get(file);
    if (!language) {
      language = this.loadLanguage(file);
      this.languages.set(file, language);
    }
    const loaded = await language;
    if (!loaded) return undefined;
    let parser = this.parsers.get(file);
    if (!parser) {
      parser = new Parser();
      parser.setLanguage(loaded);
      this.parsers.set(file, parser);
    }
    return parser;
  }

  private async loadLanguage(file: string): Promise<Language | undefined> {
    const started = performance.now();
    try {
      runtimeReady ??= Parser.init({ locateFile: () => this.locate(RUNTIME_FILE) });
      await runtimeReady;
      const language = await Language.load(this.locate(file));
      this.log(`syntax: loaded ${file} in ${(performance.now() - started).toFixed(0)} ms`);
      return language;
    } catch (err) {
      this.log(`syntax: could not load ${file} (${(err as Error).message}); candidates in its languages rank without a syntax check`);
      return undefined;
    }
  }
}
