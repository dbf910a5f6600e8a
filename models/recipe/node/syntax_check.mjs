// Syntax check of TypeScript / JavaScript files with the real TypeScript parser, in batch, for the eval harness.
//
// Run: node models/recipe/node/syntax_check.mjs < requests.jsonl > results.jsonl
// Each input line is {"id": any, "text": "...", "path": "src/a.tsx"} (the path's extension picks the dialect:
// .ts .tsx .mts .cts .d.ts .js .jsx .mjs .cjs; "language" may stand in for a path). Each output line, in input
// order, is {"id": ..., "ok": true|false, "errors": n, "first": "message at line:col" | null}.
// One process serves a whole eval (eval_heldout.py starts it once), because starting Node and loading typescript costs
// far more than parsing one file.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// Resolve typescript from the repository's node_modules, whatever the caller's working directory.
const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(resolve(here, "../../../package.json"));
const ts = require("typescript");

const EXTENSIONS = [".d.ts", ".d.mts", ".d.cts", ".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs"];
const DEFAULT_BY_LANGUAGE = { typescript: ".ts", typescriptreact: ".tsx", javascript: ".js", javascriptreact: ".jsx" };

/** The file name whose extension tells the parser the dialect (TS or JS, with or without JSX, declaration file). */
function fileNameFor(request) {
  const path = typeof request.path === "string" ? request.path.toLowerCase() : "";
  const ext = EXTENSIONS.find((e) => path.endsWith(e)) ?? DEFAULT_BY_LANGUAGE[request.language];
  if (ext === undefined) throw new Error(`cannot tell the dialect of ${JSON.stringify(request.path ?? request.language)}`);
  return `file${ext}`;
}

// A single-file program without libraries or module resolution: only the syntactic diagnostics are asked for,
// which is what `tsc` reports as "error TS1xxx" before any type checking (including the JS-only checks such as
// type annotations in a .js file).
const OPTIONS = { noLib: true, noResolve: true, allowJs: true, jsx: ts.JsxEmit.Preserve, target: ts.ScriptTarget.Latest, types: [] };

function check(request) {
  const fileName = fileNameFor(request);
  const source = ts.createSourceFile(fileName, request.text, ts.ScriptTarget.Latest, false);
  const host = ts.createCompilerHost(OPTIONS);
  host.getSourceFile = (name) => (name === fileName ? source : undefined);
  host.fileExists = (name) => name === fileName;
  host.readFile = (name) => (name === fileName ? request.text : undefined);
  const program = ts.createProgram({ rootNames: [fileName], options: OPTIONS, host });
  const diagnostics = program.getSyntacticDiagnostics(source);
  let first = null;
  if (diagnostics.length > 0) {
    const d = diagnostics[0];
    const { line, character } = source.getLineAndCharacterOfPosition(d.start ?? 0);
    first = `${ts.flattenDiagnosticMessageText(d.messageText, " ")} at ${line + 1}:${character + 1}`;
  }
  return { ok: diagnostics.length === 0, errors: diagnostics.length, first };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") continue;
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    // A malformed request line cannot carry an id; answer it anyway so the caller's line count stays aligned.
    process.stdout.write(JSON.stringify({ id: null, ok: false, errors: -1, first: `bad request: ${error.message}` }) + "\n");
    continue;
  }
  let result;
  try {
    result = check(request);
  } catch (error) {
    result = { ok: false, errors: -1, first: `checker failed: ${error.message}` };
  }
  process.stdout.write(JSON.stringify({ id: request.id ?? null, ...result }) + "\n");
}
