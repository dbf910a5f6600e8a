import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { afterIndentation, complete, cutUnsureLines, dropRepeatedLines, limitLines, splitIndentation } from '../../server/protocol/completion';
import { resolveSamplerOptions } from '../../server/engine/options';
import { CharCodec, FACTS, textModel } from './engine-mocks';
import { defaultConfig, needsReload, parseConfig, samplerOverrides } from '../../server/protocol/config';
import { inlineItems, inlineSource } from '../../server/protocol/inline';
import { LONG_LINE_CHARS, unsuitableReason, windowAround } from '../../server/protocol/window';
import packageJson from '../../package.json';

const AUTOMATIC = { triggerKind: 2 as const };

describe('server settings', () => {
  it('default to the values package.json declares', () => {
    const props = Object.assign({}, ...packageJson.contributes.configuration.map((section) => section.properties)) as Record<string, { default: unknown }>;
    const config = defaultConfig();
    assert.equal(config.steps, props['unmask.steps'].default);
    assert.equal(config.strategy, props['unmask.strategy'].default);
    assert.equal(config.device, props['unmask.device'].default);
    assert.equal(config.contextTokens, props['unmask.contextTokens'].default);
    assert.ok(Object.isFrozen(config));
  });

  it('take valid values and report every invalid one, keeping its default', () => {
    const { config, problems } = parseConfig({ steps: 16, strategy: 'sideways', temperature: 5, threads: 2.5, device: 'cpu', modelPath: 42 });
    assert.equal(config.steps, 16);
    assert.equal(config.device, 'cpu');
    assert.equal(config.strategy, 'confidence');
    assert.equal(config.temperature, 0);
    assert.equal(config.threads, 0);
    assert.equal(config.modelPath, '');
    assert.deepEqual(problems, [
      'unmask.strategy must be one of confidence, margin, entropy, random (got "sideways"); using the default "confidence"',
      'unmask.temperature must be at most 2 (got 5); using the default 0',
      'unmask.modelPath must be a string (got 42); using the default ""',
      'unmask.threads must be a whole number (got 2.5); using the default 0',
    ]);
  });

  it('take unmask.cacheNgramOpenDocuments as a whole number from 0 to 8, needing no reload', () => {
    assert.equal(defaultConfig().cacheNgramOpenDocuments, 3);
    assert.equal(parseConfig({ cacheNgramOpenDocuments: 0 }).config.cacheNgramOpenDocuments, 0);
    const { config, problems } = parseConfig({ cacheNgramOpenDocuments: 2.5 });
    assert.equal(config.cacheNgramOpenDocuments, 3);
    assert.deepEqual(problems, ['unmask.cacheNgramOpenDocuments must be a whole number (got 2.5); using the default 3']);
    assert.match(parseConfig({ cacheNgramOpenDocuments: 9 }).problems[0], /must be at most 8/);
    assert.equal(needsReload(defaultConfig(), parseConfig({ cacheNgramOpenDocuments: 0 }).config), false);
  });

  it('take unmask.relatedContextTokens as a whole number from 0 to 128 and pass it to the engine, needing no reload', () => {
    assert.equal(defaultConfig().relatedContextTokens, 64);
    assert.equal(resolveSamplerOptions(samplerOverrides(defaultConfig())).relatedContextTokens, 64);
    assert.equal(samplerOverrides(parseConfig({ relatedContextTokens: 0 }).config).relatedContextTokens, 0);
    assert.equal(parseConfig({ relatedContextTokens: 128 }).config.relatedContextTokens, 128);
    for (const [value, problem] of [
      [129, /unmask\.relatedContextTokens must be at most 128 \(got 129\); using the default 64/],
      [-1, /must be at least 0/],
      [12.5, /must be a whole number/],
      ['64', /must be a number/],
    ] as const) {
      const { config, problems } = parseConfig({ relatedContextTokens: value });
      assert.equal(config.relatedContextTokens, 64);
      assert.match(problems[0], problem);
    }
    assert.equal(needsReload(defaultConfig(), parseConfig({ relatedContextTokens: 0 }).config), false);
  });

  it('pass unmask.cacheNgram to the engine and refuse a value that is not true or false', () => {
    assert.equal(samplerOverrides(parseConfig({ cacheNgram: true }).config).cacheNgram, true);
    const { config, problems } = parseConfig({ cacheNgram: 'yes' });
    assert.equal(config.cacheNgram, defaultConfig().cacheNgram);
    assert.deepEqual(problems, [`unmask.cacheNgram must be true or false (got "yes"); using the default ${defaultConfig().cacheNgram}`]);
    assert.equal(needsReload(defaultConfig(), parseConfig({ cacheNgram: !defaultConfig().cacheNgram }).config), false);
  });

  it('need a model reload only when the model path, device or threads change', () => {
    const base = defaultConfig();
    assert.equal(needsReload(base, parseConfig({ steps: 4 }).config), false);
    assert.equal(needsReload(base, parseConfig({ device: 'cpu' }).config), true);
    assert.equal(needsReload(base, parseConfig({ modelPath: '/m' }).config), true);
  });

  it('give the engine the latency budget only where the request passes it (inline requests as you type)', () => {
    const config = parseConfig({ latencyBudgetMs: 60 }).config;
    assert.equal(config.latencyBudgetMs, 60);
    assert.equal(samplerOverrides(config).latencyBudgetMs, 0);
    assert.equal(samplerOverrides(config, { latencyBudgetMs: 45 }).latencyBudgetMs, 45);
    assert.equal(needsReload(defaultConfig(), config), false);
  });
});

describe('the text window', () => {
  it('keeps everything of a small document', () => {
    assert.deepEqual(windowAround('abcdef', 3), { prefix: 'abc', suffix: 'def', cutBefore: 0, cutAfter: 0 });
  });

  it('cuts a huge document around the cursor before anything is tokenised', () => {
    const text = 'x'.repeat(1_000_000);
    const w = windowAround(text, 500_000, 100, 50);
    assert.equal(w.prefix.length, 100);
    assert.equal(w.suffix.length, 50);
    assert.equal(w.cutBefore + w.prefix.length + w.suffix.length + w.cutAfter, text.length);
  });

  it('clamps a cursor past the end and never splits a surrogate pair', () => {
    assert.equal(windowAround('abc', 99).prefix, 'abc');
    const w = windowAround('a🚀b', 4, 2, 2);
    assert.ok(!/[\ud800-\udbff]$|^[\udc00-\udfff]/.test(w.prefix));
  });

  it('refuses binary content, a very long cursor line and minified code', () => {
    assert.match(unsuitableReason(windowAround('ab\u0000cd', 2))!, /NUL bytes/);
    assert.match(unsuitableReason(windowAround('x'.repeat(LONG_LINE_CHARS + 10), 5))!, /cursor's line is \d+ characters long/);
    const minified = Array.from({ length: 20 }, () => 'var a=1;'.repeat(60)).join('\n');
    assert.match(unsuitableReason(windowAround(minified, 5))!, /minified/);
    assert.equal(unsuitableReason(windowAround('def f():\n    return 1\n', 10)), undefined);
  });
});

describe('completion clean-up', () => {
  it('drops trailing lines that repeat the lines below the cursor', () => {
    assert.equal(dropRepeatedLines('x = 1\n    return x\n}', '\n    return x\n}\n'), 'x = 1');
    assert.equal(dropRepeatedLines('x = 1\ny = 2', '\nz = 3'), 'x = 1\ny = 2');
  });

  it('leaves completions alone when text follows the cursor on its line', () => {
    assert.equal(dropRepeatedLines('a,\n  b', ')\n  b'), 'a,\n  b');
  });
});

describe('the line policy (unmask.multiline)', () => {
  const guessed = 'lueError):\n    """The URL scheme';
  it('auto: one line when the cursor follows code on its line, every line on an empty one', () => {
    assert.equal(limitLines(guessed, 'try:\n    x()\nexcept Va', 'auto'), 'lueError):');
    assert.equal(limitLines('x = 1\ny = 2', 'def f():\n    ', 'auto'), 'x = 1\ny = 2');
    assert.equal(limitLines('x = 1\ny = 2', 'def f():\n', 'auto'), 'x = 1\ny = 2');
    assert.equal(limitLines('x = 1\ny = 2', '', 'auto'), 'x = 1\ny = 2');
  });
  it('keeps the first line with code when the completion starts on the next line', () => {
    assert.equal(limitLines('\n    return x\n    junk', 'def f(x):', 'auto'), '\n    return x');
    assert.equal(limitLines('  \n', 'def f(x):', 'auto'), '  \n', 'a blank completion is left to the blank filter');
  });
  it('always keeps every line; never keeps one line everywhere; trailing spaces of the kept line go', () => {
    assert.equal(limitLines(guessed, 'except Va', 'always'), guessed);
    assert.equal(limitLines('x = 1  \ny = 2', '    ', 'never'), 'x = 1');
    assert.equal(limitLines('x = 1', 'y = ', 'never'), 'x = 1');
  });
  it('keeps the line break of a line written above code that follows the cursor, and that code its indentation', () => {
    assert.equal(limitLines('    y += 1\n    z', 'def f(y):\n', 'never', '    return y\n'), '    y += 1\n');
    assert.equal(limitLines('y += 1\nz', 'def f(y):\n    ', 'never', 'return y\n'), 'y += 1\n    ');
    assert.equal(limitLines('y += 1\nz', 'def f(y):\n    ', 'never', '\nreturn y'), 'y += 1', 'nothing after the cursor on its line');
    assert.equal(limitLines('y += 1', 'def f(y):\n', 'never', 'return y'), 'y += 1', 'no line break written, none added');
    assert.equal(limitLines('1\nz', 'y = ', 'never', 'x'), '1', 'mid-line: the rest of the line only');
  });
  it('is applied by complete() to every row, and not at all without a mode (Fill Selection)', async () => {
    const prefix = 'x = f(';
    const run = async (multiline?: 'auto') => {
      const { model } = textModel(1 + prefix.length, 'a)\nzz = 1');
      return complete(
        { run: model, codec: new CharCodec(), facts: FACTS },
        { prefix, suffix: '\n', languageId: 'python', maxTokens: 16, ...(multiline ? { multiline } : {}) },
        resolveSamplerOptions({ steps: 16 }),
      );
    };
    assert.deepEqual((await run('auto')).texts, ['a)']);
    assert.deepEqual((await run()).texts, ['a)\nzz = 1']);
  });
});

describe('unsure lines at a line start (unmask.multiline auto)', () => {
  it('keeps the lines after the first while the model was sure of each; the first line always stays', () => {
    assert.equal(cutUnsureLines('a = 1\nb = 2\nc = 3', [0.9, 0.8, 0.1], 0.4), 'a = 1\nb = 2');
    assert.equal(cutUnsureLines('a = 1\nb = 2', [0.05, 0.1], 0.4), 'a = 1', 'an unsure first line is the gate\'s to judge');
    assert.equal(cutUnsureLines('a = 1\nb = 2', [0.9, 0.5], 0.4), 'a = 1\nb = 2');
    assert.equal(cutUnsureLines('a = 1\nb = 2', [0.9, 0.1], 0), 'a = 1\nb = 2', '0 keeps every line');
    assert.equal(cutUnsureLines('a = 1\nb = 2', [0.9], 0.4), 'a = 1', 'a line the numbers do not cover goes too');
  });
  it('gives a kept line above code after the cursor its line break and the code its indentation', () => {
    assert.equal(cutUnsureLines('y += 1\nz', [0.9, 0.1], 0.4, 'def f(y):\n    ', 'return y\n'), 'y += 1\n    ');
  });
  it('is applied by complete() at a line start under auto, with the engine\'s numbers per line', async () => {
    const prefix = 'def f():\n';
    const text = '    a = 1\n    b = 2\n';
    const unsureAt = text.indexOf('b');
    const run = async (minLineConfidence?: number) => {
      const { model } = textModel(1 + prefix.length, text, (i) => (i === unsureAt ? 3 : 12));
      return complete(
        { run: model, codec: new CharCodec(), facts: FACTS },
        { prefix, suffix: '\n', languageId: 'python', maxTokens: 24, multiline: 'auto', ...(minLineConfidence !== undefined ? { minLineConfidence } : {}) },
        resolveSamplerOptions({ steps: 24, cacheNgram: false }),
      );
    };
    const cut = await run();
    assert.deepEqual(cut.texts, ['    a = 1']);
    const numbers = cut.result.candidates[0].lineConfidence;
    assert.ok(numbers[0] > 0.4 && numbers[1] < 0.4, JSON.stringify(numbers));
    assert.deepEqual((await run(0)).texts, ['    a = 1\n    b = 2']);
  });
});

describe('inline items', () => {
  const doc = TextDocument.create('file:///a.py', 'python', 1, 'def f(x):\n    return foo(x)\n');

  it('replace the line from column 0 to the cursor, repeating the text before the cursor', () => {
    const position = { line: 1, character: 11 };
    const source = inlineSource(doc, position, AUTOMATIC);
    assert.equal(source.window.prefix, 'def f(x):\n    return ');
    assert.equal(source.restOfLine, 'foo(x)');
    assert.deepEqual(source.file, { before: 'def f(x):\n    return ', after: 'foo(x)\n' });
    const [item] = inlineItems(['bar(x) + '], source, position);
    assert.deepEqual(item, {
      insertText: '    return bar(x) + ',
      range: { start: { line: 1, character: 0 }, end: { line: 1, character: 11 } },
    });
  });

  it('extend to the end of the line when the completion ends with what follows the cursor', () => {
    const position = { line: 1, character: 15 };
    const source = inlineSource(doc, position, AUTOMATIC);
    assert.equal(source.restOfLine, 'x)');
    const [item] = inlineItems(['y, x)'], source, position);
    assert.deepEqual(item.range!.end, { line: 1, character: 17 });
    assert.equal(item.insertText, '    return foo(y, x)');
  });

  it('take the selected IntelliSense item as typed, so the completion extends it', () => {
    const position = { line: 1, character: 13 };
    const context = { triggerKind: 2 as const, selectedCompletionInfo: { range: { start: { line: 1, character: 11 }, end: position }, text: 'format' } };
    const source = inlineSource(doc, position, context);
    assert.ok(source.window.prefix.endsWith('    return format'));
    assert.equal(source.linePrefix, '    return format');
    assert.deepEqual(source.file, { before: 'def f(x):\n    return format', after: 'o(x)\n' });
    const [item] = inlineItems(['(x)'], source, position);
    assert.equal(item.insertText, '    return format(x)');
  });
});

describe('indentation at the cursor', () => {
  const cases: [string, string, string, string][] = [
    ['after Enter inside a block', 'def f():\n    ', 'def f():\n', '    '],
    ['tabs', 'if (x) {\n\t\t', 'if (x) {\n', '\t\t'],
    ['indentation on the first line of the file', '  ', '', '  '],
    ['code before the cursor on its line', 'def f():\n    x = ', 'def f():\n    x = ', ''],
    ['an empty line', 'x = 1\n', 'x = 1\n', ''],
  ];
  for (const [what, prefix, expectedPrefix, indent] of cases) {
    it(`moves into the hole only when the line holds nothing else before the cursor: ${what}`, () => {
      assert.deepEqual(splitIndentation(prefix), { prefix: expectedPrefix, indent });
    });
  }

  it('comes back off the completion, and the typed indentation wins over a different one', () => {
    assert.equal(afterIndentation('    return x', '    '), 'return x');
    assert.equal(afterIndentation('  return x\n  y', '    '), 'return x\n  y');
    assert.equal(afterIndentation('return x', ''), 'return x');
  });

  it('lets the model write the line from its start and returns only what follows the typed indentation', async () => {
    const prefix = 'def f():\n    ';
    const holeStart = 1 + 'def f():\n'.length; // the language tag, then the prefix without its indentation
    const { model, calls } = textModel(holeStart, '    return 1');
    const outcome = await complete(
      { run: model, codec: new CharCodec(), facts: FACTS },
      { prefix, suffix: '\n', languageId: 'python', maxTokens: 16 },
      resolveSamplerOptions({ steps: 16 }),
    );
    assert.deepEqual(outcome.texts, ['return 1']);
    const codec = new CharCodec();
    assert.equal(codec.decode(Array.from(calls[0].ids.subarray(1, holeStart))), 'def f():\n', 'the canvas prefix ends at the line start');
  });
});
