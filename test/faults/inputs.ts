/**
 * Seeded generators of the fault suite's inputs: documents of every shape a user can open (code, the long-body shape
 * of issue 15, huge, binary, minified, odd line breaks and surrogates), positions valid and not, and junk values for
 * any field. Seeded, so a failing run replays exactly (the seed is printed).
 */
import { Mulberry32 } from '../../server/engine/rng';

export class Gen {
  private readonly rng: Mulberry32;

  constructor(seed: number) {
    this.rng = new Mulberry32(seed);
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rng.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.rng.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }
}

export const LANGUAGES = ['python', 'typescript', 'typescriptreact', 'javascript', 'javascriptreact', 'plaintext', 'rust', ''];

const WORDS = ['x', 'y', 'total', 'items', 'self', 'return', 'if', 'for', 'in', 'def', 'const', 'let', '=', '+', '(', ')', '[', ']', '{', '}', ':', ',', '.', '"s"', '1', '0.5'];

/** A line of code-like tokens. */
function codeLine(g: Gen): string {
  return Array.from({ length: g.int(0, 12) }, () => g.pick(WORDS)).join(g.pick([' ', ' ', '']));
}

/** Lines indented under one top-level line, `chars` characters or more: a long function body. */
export function longBody(chars: number): string {
  const lines: string[] = [];
  for (let i = 0, size = 0; size < chars; i++) {
    const line = `    y${i} = x + ${i}\n`;
    lines.push(line);
    size += line.length;
  }
  return lines.join('');
}

export interface Doc {
  readonly shape: string;
  readonly text: string;
  readonly languageId: string;
}

/** A document of a random shape. Huge ones are rare (they cost memory and time on every request). */
export function randomDocument(g: Gen): Doc {
  const languageId = g.pick(LANGUAGES);
  const roll = g.int(0, 99);
  if (roll < 50) {
    const eol = g.pick(['\n', '\n', '\r\n', '\r']);
    const lines = Array.from({ length: g.int(1, 200) }, () => ' '.repeat(g.pick([0, 0, 2, 4, 8])) + codeLine(g));
    return { shape: 'code', text: lines.join(eol) + (g.chance(0.5) ? eol : ''), languageId };
  }
  if (roll < 64) {
    // Issue 15's hang: the cursor ends a line and more than 16 KB without a top-level line follow.
    return { shape: 'long body', text: `def f(x):\n    y = x${'\n'}${longBody(g.int(16_500, 30_000))}`, languageId: g.pick(['python', 'typescript', 'javascript']) };
  }
  if (roll < 72) return { shape: 'empty', text: g.pick(['', '\n', '\r\n', ' ']), languageId };
  if (roll < 80) {
    const bytes = Array.from({ length: g.int(1, 4000) }, () => String.fromCharCode(g.int(0, 255)));
    return { shape: 'binary', text: bytes.join(''), languageId };
  }
  if (roll < 86) return { shape: 'minified', text: Array.from({ length: Math.floor(g.int(3000, 60_000) / 4) }, () => g.pick(['a', ';', '(', ')'])).join('').repeat(4), languageId };
  if (roll < 98) {
    const pieces = ['é', '😀', '\ud83d', '\ude00', '\u200b', '\t', '\r', '\n', '\r\n', '\u2028', 'x', ' ', '{{hole}}', '{{hole:9999}}'];
    return { shape: 'unicode', text: Array.from({ length: g.int(1, 2000) }, () => g.pick(pieces)).join(''), languageId };
  }
  // Up to 2 MB of code: the windows and the syntax check must keep requests bounded.
  const block = Array.from({ length: 50 }, () => codeLine(g)).join('\n') + '\n';
  return { shape: 'huge', text: block.repeat(Math.ceil((g.int(300_000, 2_000_000)) / block.length)), languageId };
}

/** The lines of a text as LSP counts them (\n, \r\n and \r end a line). */
export function lineLengths(text: string): number[] {
  return text.split(/\r\n|\r|\n/).map((line) => line.length);
}

/** A valid position in `text`, or (with probability `invalid`) one of the invalid kinds; says which. */
export function randomPosition(g: Gen, text: string, invalid: number): { position: unknown; valid: boolean } {
  const lengths = lineLengths(text);
  if (!g.chance(invalid)) {
    const line = g.chance(0.3) ? 0 : g.int(0, lengths.length - 1);
    return { position: { line, character: g.chance(0.5) ? lengths[line] : g.int(0, lengths[line]) }, valid: true };
  }
  const line = g.int(0, lengths.length - 1);
  const bad: unknown[] = [
    { line: -1, character: 0 },
    { line: 0, character: -g.int(1, 100) },
    { line: line + 0.5, character: 0 },
    { line, character: 0.25 },
    { line: lengths.length + g.int(0, 10), character: 0 },
    { line, character: lengths[line] + g.int(1, 1000) },
    { line: 2 ** 53, character: 2 ** 53 },
    { line: '1', character: 0 },
    { line: null, character: null },
    { line: 0 },
    null,
    'here',
    [0, 0],
  ];
  return { position: g.pick(bad), valid: false };
}

/** A value of any JSON type (and undefined), from empty to large and deeply nested. */
export function junk(g: Gen, depth = 0): unknown {
  const roll = g.int(0, depth > 2 ? 8 : 11);
  switch (roll) {
    case 0:
      return null;
    case 1:
      return undefined;
    case 2:
      return g.pick([0, -1, 1.5, 2 ** 31, -(2 ** 53), 1e308, Number.MAX_SAFE_INTEGER + 2]);
    case 3:
      return g.pick(['', 'x', 'file:///nowhere.py', '\u0000', '../../etc/passwd', 'é😀']);
    case 4:
      return 'y'.repeat(g.int(1000, 200_000));
    case 5:
      return g.chance(0.5);
    case 6:
      return { line: junk(g, depth + 1), character: junk(g, depth + 1) };
    case 7:
      return { textDocument: { uri: junk(g, depth + 1) }, position: junk(g, depth + 1) };
    case 8:
      return {};
    case 9:
      return Array.from({ length: g.int(0, 5) }, () => junk(g, depth + 1));
    case 10:
      return { range: { start: junk(g, depth + 1), end: junk(g, depth + 1) }, holes: junk(g, depth + 1), count: junk(g, depth + 1) };
    default:
      // Own keys that shadow Object.prototype (a literal __proto__ would set the prototype instead).
      return JSON.parse(`{"__proto__": ${JSON.stringify(junk(g, depth + 1)) ?? 'null'}, "constructor": 1, "toString": "x"}`);
  }
}
