/**
 * A small model of VS Code's keybinding `when` clauses, enough to tell whether two bindings of one key can be active
 * at the same moment: a parser for `!`, `&&`, `||`, parentheses, `key == value` and `key != value`, and an exhaustive
 * search over the context keys the two clauses name (under a few facts about VS Code's focus keys). Used by
 * client-keybindings.test.ts.
 */

type Expr =
  | { kind: 'key'; name: string }
  | { kind: 'const'; value: boolean }
  | { kind: 'not'; expr: Expr }
  | { kind: 'and' | 'or'; left: Expr; right: Expr };

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const re = /\s*(&&|\|\||==|!=|!|\(|\)|[^\s!&|()=]+)/gy;
  let match: RegExpExecArray | null;
  while ((match = re.exec(text)) !== null) tokens.push(match[1]);
  if (tokens.join('') !== text.replace(/\s+/g, '')) throw new Error(`cannot read when clause ${text}`);
  return tokens;
}

export function parseWhen(text: string | undefined): Expr {
  if (!text || !text.trim()) return { kind: 'const', value: true };
  const tokens = tokenize(text);
  let at = 0;
  const peek = (): string | undefined => tokens[at];
  const take = (): string => {
    const token = tokens[at++];
    if (token === undefined) throw new Error(`when clause ends early: ${text}`);
    return token;
  };
  const or = (): Expr => {
    let left = and();
    while (peek() === '||') {
      take();
      left = { kind: 'or', left, right: and() };
    }
    return left;
  };
  const and = (): Expr => {
    let left = unary();
    while (peek() === '&&') {
      take();
      left = { kind: 'and', left, right: unary() };
    }
    return left;
  };
  const unary = (): Expr => {
    const token = take();
    if (token === '!') return { kind: 'not', expr: unary() };
    if (token === '(') {
      const inner = or();
      if (take() !== ')') throw new Error(`unbalanced parentheses: ${text}`);
      return inner;
    }
    if (token === 'true' || token === 'false') return { kind: 'const', value: token === 'true' };
    if (peek() === '==' || peek() === '!=') {
      const op = take();
      const atom: Expr = { kind: 'key', name: `${token}==${take()}` };
      return op === '==' ? atom : { kind: 'not', expr: atom };
    }
    return { kind: 'key', name: token };
  };
  const expr = or();
  if (at !== tokens.length) throw new Error(`unexpected ${tokens[at]} in ${text}`);
  return expr;
}

function keysOf(expr: Expr, into: Set<string>): Set<string> {
  if (expr.kind === 'key') into.add(expr.name);
  else if (expr.kind === 'not') keysOf(expr.expr, into);
  else if (expr.kind === 'and' || expr.kind === 'or') {
    keysOf(expr.left, into);
    keysOf(expr.right, into);
  }
  return into;
}

function evaluate(expr: Expr, context: ReadonlyMap<string, boolean>): boolean {
  switch (expr.kind) {
    case 'const':
      return expr.value;
    case 'key':
      return context.get(expr.name) ?? false;
    case 'not':
      return !evaluate(expr.expr, context);
    case 'and':
      return evaluate(expr.left, context) && evaluate(expr.right, context);
    case 'or':
      return evaluate(expr.left, context) || evaluate(expr.right, context);
  }
}

/** Context keys that cannot be true together: where the keyboard focus is. */
const EXCLUSIVE_FOCUS = ['editorTextFocus', 'listFocus', 'terminalFocus', 'findInputFocussed', 'replaceInputFocussed'];
/** Keys that another key implies. */
const IMPLIES: Record<string, string[]> = {
  editorTextFocus: ['editorFocus', 'textInputFocus'],
  notebookCellListFocused: ['notebookEditorFocused'],
  // The accessible view and chat code blocks show read-only editors.
  accessibleViewInCodeBlock: ['editorReadonly'],
};

function possible(context: ReadonlyMap<string, boolean>): boolean {
  if (EXCLUSIVE_FOCUS.filter((key) => context.get(key)).length > 1) return false;
  for (const [key, implied] of Object.entries(IMPLIES)) {
    if (context.get(key) && implied.some((other) => context.has(other) && !context.get(other))) return false;
  }
  // `key == a` and `key == b` exclude each other.
  const values = new Map<string, number>();
  for (const [atom, on] of context) {
    const eq = atom.indexOf('==');
    if (eq > 0 && on) values.set(atom.slice(0, eq), (values.get(atom.slice(0, eq)) ?? 0) + 1);
  }
  return [...values.values()].every((count) => count <= 1);
}

/** A context in which both clauses hold, or undefined when they can never hold together. */
export function overlap(a: string | undefined, b: string | undefined): Record<string, boolean> | undefined {
  const left = parseWhen(a);
  const right = parseWhen(b);
  const keys = [...keysOf(right, keysOf(left, new Set<string>()))];
  for (const implied of Object.values(IMPLIES).flat()) if (!keys.includes(implied)) keys.push(implied);
  if (keys.length > 20) throw new Error('too many context keys to search');
  for (let bits = 0; bits < 1 << keys.length; bits++) {
    const context = new Map(keys.map((key, i) => [key, (bits & (1 << i)) !== 0]));
    if (possible(context) && evaluate(left, context) && evaluate(right, context)) return Object.fromEntries(context);
  }
  return undefined;
}

/** A key chord in one spelling: lower case, modifiers in a fixed order ("ctrl+alt+\\", "shift+tab"). */
export function normaliseKey(key: string): string {
  const order = ['ctrl', 'shift', 'alt', 'cmd', 'meta'];
  return key
    .toLowerCase()
    .split(' ')
    .map((chord) => {
      const parts = chord.split('+');
      // "ctrl++" would split badly; no binding here uses "+" as the key.
      const mods = parts.slice(0, -1).sort((x, y) => order.indexOf(x) - order.indexOf(y));
      return [...mods, parts[parts.length - 1]].join('+');
    })
    .join(' ');
}

export type Platform = 'linux' | 'win' | 'mac';
export interface Binding {
  command: string;
  key?: string;
  mac?: string;
  linux?: string;
  win?: string;
  when?: string;
}

/** The chord a binding has on a platform (package.json rules: the platform's own key, else `key`). */
export function keyOn(binding: Binding, platform: Platform): string | undefined {
  const key = binding[platform] ?? binding.key;
  return key === undefined ? undefined : normaliseKey(key);
}
