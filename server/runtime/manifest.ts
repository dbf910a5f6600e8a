/**
 * Loads and validates `models/<id>/manifest.json`, the index of a model folder (models/README.md).
 *
 * Shape accepted (what models/recipe/scripts/export_onnx.py writes; unknown keys are ignored so the recipe can add facts without
 * breaking older runtimes):
 * ```json
 * {
 *   "format": 1,                       // optional; the manifest format, 1 is the only one
 *   "id": "unmask-coder-base",
 *   "kind": "mdm",                     // mdm | disc | ar
 *   "default_file": "model.int8.onnx", // optional; the denoiser to load when no precision is asked for
 *   "cached_context": {"int8": {"context": "context.int8.onnx", "step": "step.int8.onnx"}, "fp32": {…}},
 *                                      // optional; a cached-context denoiser's two graphs per precision (then
 *                                      // there is no single-graph denoiser)
 *   "files": [{"name": "model.int8.onnx", "sha256": "…", "bytes": 123, "role": "denoiser-int8"}, …],
 *                                      // or {"model.int8.onnx": {"sha256": "…"}, "tokenizer.json": "…sha256…"}
 *   "facts": {"unmask.vocab_size": "8192", …},  // optional copy of the ONNX metadata_props ("metadata" also read)
 *   "discriminator": {"default_file": "disc.int8.onnx", "facts": {…}},  // optional; the reward model's facts
 *                                      // (export_disc.py; its files have roles "discriminator-…")
 *   "special_tokens": {"mask": "<|mask|>", "eos": "…", "file": "…", "lang:python": "…"}  // optional
 * }
 * ```
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export type ModelKind = 'mdm' | 'disc' | 'ar';

export interface ManifestFile {
  /** Path relative to the model folder. */
  readonly path: string;
  readonly sha256?: string;
  readonly bytes?: number;
  /** What the file is for ("denoiser-int8", "tokenizer", "discriminator-int8", ...), when the manifest says. */
  readonly role?: string;
}

export interface Manifest {
  readonly dir: string;
  readonly id: string;
  readonly kind: ModelKind;
  readonly files: readonly ManifestFile[];
  /** The ONNX metadata_props as the recipe copied them (may be empty when the manifest does not repeat them). */
  readonly metadata: Readonly<Record<string, string>>;
  /** The denoiser file the manifest names as its default, if any. */
  readonly defaultFile?: string;
  /** Special token strings by role (mask, eos, pad, file, lang:python, ...), when the manifest names them. */
  readonly specialTokens: Readonly<Record<string, string>>;
  /** A cached-context denoiser's context and step graph files per precision; absent for a single-graph model. */
  readonly cachedContext?: Readonly<Partial<Record<GraphPrecision, CachedGraphNames>>>;
  /** The discriminator's copy of its ONNX metadata ("discriminator.facts"); empty when the manifest has none. */
  readonly discriminatorFacts: Readonly<Record<string, string>>;
}

/** The two graphs of a cached-context denoiser (models/README.md), as file names inside the model folder. */
export interface CachedGraphNames {
  readonly context: string;
  readonly step: string;
}

/** Which graph files a denoiser loads: one full-attention graph, or a cached-context model's two graphs (paths). */
export type DenoiserGraphs =
  | { readonly kind: 'single'; readonly model: string }
  | { readonly kind: 'cached'; readonly context: string; readonly step: string };

/** File names a denoiser may ship as, most preferred first for each precision. */
const DENOISER_FILES = { int8: 'model.int8.onnx', fp32: 'model.onnx' } as const;
type GraphPrecision = keyof typeof DENOISER_FILES;
export type Precision = 'auto' | GraphPrecision;
const FILE_PRECISION: Readonly<Record<string, string>> = { [DENOISER_FILES.int8]: 'int8', [DENOISER_FILES.fp32]: 'fp32' };

function fail(manifestPath: string, what: string): never {
  throw new Error(`Invalid model manifest ${manifestPath}: ${what}`);
}

function parseFiles(manifestPath: string, raw: unknown): ManifestFile[] {
  const entries: ManifestFile[] = [];
  const add = (name: unknown, spec: unknown): void => {
    if (typeof name !== 'string' || name === '') fail(manifestPath, `a file entry has no path`);
    if (path.isAbsolute(name) || name.split(/[\\/]/).includes('..')) {
      fail(manifestPath, `file "${name}" must be a path inside the model folder`);
    }
    let sha256: unknown;
    let bytes: unknown;
    let role: unknown;
    if (typeof spec === 'string') sha256 = spec;
    else if (spec && typeof spec === 'object') ({ sha256, bytes, role } = spec as { sha256?: unknown; bytes?: unknown; role?: unknown });
    if (sha256 !== undefined && (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(sha256))) {
      fail(manifestPath, `file "${name}" has a sha256 that is not 64 hex digits`);
    }
    if (bytes !== undefined && (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < 0)) {
      fail(manifestPath, `file "${name}" has a byte count that is not a non-negative integer`);
    }
    entries.push({ path: name, sha256: sha256?.toLowerCase(), bytes: bytes as number | undefined, ...(typeof role === 'string' ? { role } : {}) });
  };
  if (Array.isArray(raw)) {
    for (const item of raw) {
      const o = (item ?? {}) as { path?: unknown; name?: unknown };
      add(o.path ?? o.name, item);
    }
  } else if (raw && typeof raw === 'object') {
    for (const [name, spec] of Object.entries(raw)) add(name, spec);
  } else {
    fail(manifestPath, `"files" must list the folder's files (an object or an array)`);
  }
  return entries;
}

function stringRecord(manifestPath: string, key: string, raw: unknown): Record<string, string> {
  if (raw === undefined) return {};
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail(manifestPath, `"${key}" must be an object`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    // The recipe may write numbers and JSON values unquoted; compare them as ONNX metadata strings.
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

function parseCachedContext(manifestPath: string, raw: unknown): Partial<Record<GraphPrecision, CachedGraphNames>> | undefined {
  if (raw === undefined) return undefined;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail(manifestPath, '"cached_context" must be an object of precision -> {context, step}');
  const out: Partial<Record<GraphPrecision, CachedGraphNames>> = {};
  for (const [precision, names] of Object.entries(raw)) {
    if (precision !== 'int8' && precision !== 'fp32') fail(manifestPath, `"cached_context" has precision "${precision}"; expected int8 or fp32`);
    const { context, step } = (names ?? {}) as { context?: unknown; step?: unknown };
    if (typeof context !== 'string' || typeof step !== 'string' || context === '' || step === '') {
      fail(manifestPath, `"cached_context.${precision}" must name a "context" and a "step" file`);
    }
    out[precision] = Object.freeze({ context, step });
  }
  if (Object.keys(out).length === 0) fail(manifestPath, '"cached_context" names no graphs');
  return Object.freeze(out);
}

/** Reads `<dir>/manifest.json`; throws an Error that names the folder and the first problem. */
export function loadManifest(dir: string): Manifest {
  const manifestPath = path.join(dir, 'manifest.json');
  if (!fs.existsSync(dir)) throw new Error(`Model folder not found: ${dir}`);
  if (!fs.existsSync(manifestPath)) throw new Error(`Model folder ${dir} has no manifest.json`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`Invalid model manifest ${manifestPath}: not JSON (${(err as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail(manifestPath, 'expected a JSON object');
  if (raw.format !== undefined && raw.format !== 1 && raw.format !== '1') {
    fail(manifestPath, `manifest format ${JSON.stringify(raw.format)} is not supported (expected 1)`);
  }
  if (typeof raw.id !== 'string' || raw.id.trim() === '') fail(manifestPath, '"id" must be a non-empty string');
  const kind = raw.kind ?? 'mdm';
  if (kind !== 'mdm' && kind !== 'disc' && kind !== 'ar') {
    fail(manifestPath, `"kind" is ${JSON.stringify(kind)}; expected "mdm", "disc" or "ar"`);
  }
  return Object.freeze({
    dir,
    id: raw.id,
    kind,
    files: Object.freeze(parseFiles(manifestPath, raw.files)),
    metadata: Object.freeze(
      raw.facts !== undefined ? stringRecord(manifestPath, 'facts', raw.facts) : stringRecord(manifestPath, 'metadata', raw.metadata),
    ),
    ...(typeof raw.default_file === 'string' ? { defaultFile: raw.default_file } : {}),
    specialTokens: Object.freeze(stringRecord(manifestPath, 'special_tokens', raw.special_tokens)),
    ...(raw.cached_context !== undefined ? { cachedContext: parseCachedContext(manifestPath, raw.cached_context) } : {}),
    discriminatorFacts: Object.freeze(stringRecord(manifestPath, 'discriminator.facts', (raw.discriminator as { facts?: unknown } | undefined)?.facts)),
  });
}

/**
 * The denoiser file to load: int8 by default (the shipped format), fp32 when asked or when it is the only one.
 * A file counts when the manifest lists it and it exists on disk.
 */
export function denoiserFile(manifest: Manifest, precision: Precision = 'auto'): string {
  const listed = new Set(manifest.files.map((f) => f.path));
  const preferred = manifest.defaultFile && manifest.defaultFile in FILE_PRECISION ? [manifest.defaultFile] : [];
  const order =
    precision === 'auto' ? [...new Set([...preferred, DENOISER_FILES.int8, DENOISER_FILES.fp32])] : [DENOISER_FILES[precision]];
  for (const name of order) {
    if (listed.has(name) && fs.existsSync(path.join(manifest.dir, name))) return path.join(manifest.dir, name);
  }
  const missing = order.map((n) => (listed.has(n) ? `${n} (listed but missing on disk)` : `${n} (not listed)`));
  throw new Error(`Model ${manifest.id} in ${manifest.dir} has no denoiser: ${missing.join(', ')}`);
}

/**
 * The graph files to load: a cached-context model's context and step graphs when the manifest names them under
 * "cached_context" (int8 by default, fp32 when asked or when it is the only one), else the single denoiser
 * (`denoiserFile`). Both graphs of a pair must be listed and on disk; a manifest whose facts say
 * `unmask.attention = context_only` must name the pair.
 */
export function denoiserGraphs(manifest: Manifest, precision: Precision = 'auto'): DenoiserGraphs {
  const cached = manifest.cachedContext;
  if (!cached) {
    if (manifest.metadata['unmask.attention'] === 'context_only') {
      throw new Error(
        `Model ${manifest.id} in ${manifest.dir} has unmask.attention "context_only" but its manifest names no "cached_context" ` +
          'graphs (a context_only denoiser ships as a context graph and a step graph; see models/README.md)',
      );
    }
    return { kind: 'single', model: denoiserFile(manifest, precision) };
  }
  const listed = new Set(manifest.files.map((f) => f.path));
  const order: GraphPrecision[] = precision === 'auto' ? ['int8', 'fp32'] : [precision];
  const problems: string[] = [];
  for (const p of order) {
    const names = cached[p];
    if (!names) {
      problems.push(`no ${p} pair`);
      continue;
    }
    const missing = [names.context, names.step].flatMap((name) =>
      !listed.has(name) ? [`${name} (not listed)`] : !fs.existsSync(path.join(manifest.dir, name)) ? [`${name} (listed but missing on disk)`] : [],
    );
    if (missing.length === 0) return { kind: 'cached', context: path.join(manifest.dir, names.context), step: path.join(manifest.dir, names.step) };
    problems.push(`${p}: ${missing.join(', ')}`);
  }
  throw new Error(`Model ${manifest.id} in ${manifest.dir} has no usable cached-context graphs: ${problems.join('; ')}`);
}

/** Path of a listed file, or an Error naming it when it is missing. */
export function requireFile(manifest: Manifest, name: string): string {
  const file = path.join(manifest.dir, name);
  if (!fs.existsSync(file)) throw new Error(`Model ${manifest.id} in ${manifest.dir} is missing ${name}`);
  return file;
}

/** Whether a listed file belongs to the optional discriminator (role "discriminator-…", export_disc.py). */
export function isDiscriminatorFile(entry: ManifestFile): boolean {
  return entry.role?.startsWith('discriminator') ?? false;
}

/**
 * Checks the size (always; cheap) and the sha256 (when `hash` is set; ~50 ms per 20 MB) of one listed file. Throws
 * naming the file when it is missing or differs.
 */
export function verifyFile(manifest: Manifest, entry: ManifestFile, hash: boolean): void {
  const file = path.join(manifest.dir, entry.path);
  if (!fs.existsSync(file)) throw new Error(`Model ${manifest.id}: listed file ${entry.path} is missing`);
  const size = fs.statSync(file).size;
  if (entry.bytes !== undefined && entry.bytes !== size) {
    throw new Error(`Model ${manifest.id}: ${entry.path} is ${size} bytes, the manifest says ${entry.bytes} (corrupt or partial copy)`);
  }
  if (hash && entry.sha256) {
    const actual = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    if (actual !== entry.sha256) {
      throw new Error(`Model ${manifest.id}: ${entry.path} has sha256 ${actual.slice(0, 12)}…, the manifest says ${entry.sha256.slice(0, 12)}… (corrupt or replaced file)`);
    }
  }
}

/** Whether a listed file is a test fixture (role "parity-fixture"): the runtime never reads it and the VSIX leaves it out. */
export function isFixtureFile(entry: ManifestFile): boolean {
  return entry.role?.endsWith('parity-fixture') ?? false;
}

/**
 * Checks every listed file the denoiser needs (verifyFile); throws on the first mismatch. The discriminator's files
 * are left to discriminator.ts: a model folder whose reward model is broken still completes, ranked without it. Test
 * fixtures (parity.json) are not needed to run and are not checked.
 */
export function verifyFiles(manifest: Manifest, hash: boolean): void {
  for (const entry of manifest.files) {
    if (!isDiscriminatorFile(entry) && !isFixtureFile(entry)) verifyFile(manifest, entry, hash);
  }
}
