// Type check of single TypeScript files with the real TypeScript checker, for the RL rewards (rewards.py starts one
// process per run and keeps it; syntax_check.mjs does the parse-only check).
//
// Run: node models/recipe/node/ts_typecheck.mjs < requests.jsonl > results.jsonl
// Each input line is {"id": any, "text": "...", "path": "src/a.ts"}; each output line, in input order, is
// {"id": ..., "errors": n, "diagnostics": ["TS2304 Cannot find name 'x'.", ...]} (messages without positions, so the
// caller can compare a filled file with its original: a completion "compiles" when it adds no diagnostic).
// The file is checked alone: default ES2022 + DOM libraries, no module resolution (imports are `any` and report
// "Cannot find module", in the original too), not strict. One language service serves every request, so the
// library files are parsed once per process rather than once per file.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(resolve(here, "../../../package.json"));
const ts = require("typescript");

const OPTIONS = {
  target: ts.ScriptTarget.ES2022,
  lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
  noResolve: true,
  noEmit: true,
  skipLibCheck: true,
  allowJs: true,
  checkJs: false,
  jsx: ts.JsxEmit.Preserve,
  types: [],
};
const EXTENSIONS = [".tsx", ".mts", ".cts", ".ts", ".jsx", ".mjs", ".cjs", ".js"];

// The one in-memory file: its name changes with the dialect, its version with every request.
let current = { name: "file.ts", text: "", version: 0 };
const libCache = new Map();
const host = {
  getScriptFileNames: () => [current.name],
  getScriptVersion: (name) => (name === current.name ? String(current.version) : "0"),
  getScriptSnapshot: (name) => {
    if (name === current.name) return ts.ScriptSnapshot.fromString(current.text);
    if (!libCache.has(name)) {
      const text = ts.sys.readFile(name);
      libCache.set(name, text === undefined ? undefined : ts.ScriptSnapshot.fromString(text));
    }
    return libCache.get(name);
  },
  getCurrentDirectory: () => "/",
  getCompilationSettings: () => OPTIONS,
  getDefaultLibFileName: (options) => ts.getDefaultLibFilePath(options),
  fileExists: (name) => name === current.name || ts.sys.fileExists(name),
  readFile: (name) => (name === current.name ? current.text : ts.sys.readFile(name)),
};
const service = ts.createLanguageService(host, ts.createDocumentRegistry());

function check(request) {
  const path = typeof request.path === "string" ? request.path.toLowerCase() : "";
  const ext = EXTENSIONS.find((e) => path.endsWith(e)) ?? (request.language === "javascript" ? ".js" : ".ts");
  current = { name: `/file${ext}`, text: String(request.text ?? ""), version: current.version + 1 };
  const diagnostics = [...service.getSyntacticDiagnostics(current.name), ...service.getSemanticDiagnostics(current.name)];
  return {
    errors: diagnostics.length,
    diagnostics: diagnostics.map((d) => `TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`),
  };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") continue;
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    process.stdout.write(JSON.stringify({ id: null, errors: -1, diagnostics: [`bad request: ${error.message}`] }) + "\n");
    continue;
  }
  let result;
  try {
    result = check(request);
  } catch (error) {
    result = { errors: -1, diagnostics: [`checker failed: ${error.message}`] };
  }
  process.stdout.write(JSON.stringify({ id: request.id ?? null, ...result }) + "\n");
}
