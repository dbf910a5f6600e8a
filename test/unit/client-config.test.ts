import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_CONFIG, languageEnabled, readConfig, readConfigReport } from '../../client/config';

const manifest = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8'));
const schema: Record<string, { default: unknown; minimum?: number; maximum?: number; enum?: string[] }> = Object.assign(
  {},
  ...(manifest.contributes.configuration as { properties: object }[]).map((section) => section.properties),
);

const fromObject = (settings: Record<string, unknown>) => readConfig((key) => settings[key]);

describe('the typed configuration', () => {
  it('has one typed field for every setting in package.json, with the same default', () => {
    const fields = Object.keys(DEFAULT_CONFIG).map((key) => `unmask.${key}`).sort();
    assert.deepEqual(fields, Object.keys(schema).sort());
    for (const [name, property] of Object.entries(schema)) {
      const key = name.slice('unmask.'.length) as keyof typeof DEFAULT_CONFIG;
      assert.deepEqual(DEFAULT_CONFIG[key], property.default, `default of ${name}`);
    }
  });

  it('uses the defaults when nothing is set', () => {
    assert.deepEqual(fromObject({}), DEFAULT_CONFIG);
  });

  it('clamps numbers to the ranges package.json declares', () => {
    for (const [name, property] of Object.entries(schema)) {
      if (property.minimum === undefined || property.maximum === undefined) continue;
      const key = name.slice('unmask.'.length) as keyof typeof DEFAULT_CONFIG;
      assert.equal(fromObject({ [key]: property.minimum - 1000 })[key], property.minimum, `${name} below range`);
      assert.equal(fromObject({ [key]: property.maximum + 1000 })[key], property.maximum, `${name} above range`);
    }
  });

  it('accepts exactly the enum values package.json declares', () => {
    for (const [name, property] of Object.entries(schema)) {
      if (!property.enum) continue;
      const key = name.slice('unmask.'.length) as keyof typeof DEFAULT_CONFIG;
      for (const value of property.enum) assert.equal(fromObject({ [key]: value })[key], value);
      assert.equal(fromObject({ [key]: 'nonsense' })[key], property.default);
    }
  });

  it('falls back to the default for values of the wrong type', () => {
    const config = fromObject({ enable: 'yes', steps: '8', debounceMs: Number.NaN, modelPath: 42, languages: [1] });
    assert.equal(config.enable, DEFAULT_CONFIG.enable);
    assert.equal(config.steps, DEFAULT_CONFIG.steps);
    assert.equal(config.debounceMs, DEFAULT_CONFIG.debounceMs);
    assert.equal(config.modelPath, DEFAULT_CONFIG.modelPath);
    assert.deepEqual(config.languages, DEFAULT_CONFIG.languages);
  });

  it('rounds integer settings and keeps fractional ones', () => {
    const config = fromObject({ steps: 7.6, temperature: 0.35 });
    assert.equal(config.steps, 8);
    assert.equal(config.temperature, 0.35);
  });

  it('takes unmask.relatedContextTokens as a whole number of tokens from 0 to 128 (default 64)', () => {
    assert.equal(DEFAULT_CONFIG.relatedContextTokens, 64);
    assert.equal(fromObject({ relatedContextTokens: 0 }).relatedContextTokens, 0);
    assert.equal(fromObject({ relatedContextTokens: 500 }).relatedContextTokens, 128);
    assert.equal(fromObject({ relatedContextTokens: -3 }).relatedContextTokens, 0);
    assert.equal(fromObject({ relatedContextTokens: 31.6 }).relatedContextTokens, 32);
    assert.equal(fromObject({ relatedContextTokens: 'lots' }).relatedContextTokens, 64);
    assert.match(readConfigReport((key) => (key === 'relatedContextTokens' ? 500 : undefined)).problems[0], /unmask\.relatedContextTokens = 500 is outside 0\.\.128.*using 128/);
  });

  it('drops non-boolean entries of the language map', () => {
    const config = fromObject({ languages: { python: false, rust: 'no', '*': true } });
    assert.deepEqual(config.languages, { python: false, '*': true });
    assert.equal(languageEnabled(config, 'python'), false);
    assert.equal(languageEnabled(config, 'rust'), true);
  });

  it('is frozen, so no consumer can change it behind the others', () => {
    const config = fromObject({});
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.languages));
  });
});

describe('the configuration report', () => {
  it('names every setting that was not used as written', () => {
    const settings: Record<string, unknown> = { steps: 500, strategy: 'fastest', enable: 'yes', languages: { go: 1 } };
    const { problems } = readConfigReport((key) => settings[key]);
    assert.equal(problems.length, 4);
    assert.match(problems.join('\n'), /unmask\.steps = 500 is outside 1\.\.128.*using 128/);
    assert.match(problems.join('\n'), /unmask\.strategy must be one of confidence, margin, entropy, random/);
    assert.match(problems.join('\n'), /unmask\.enable must be true or false/);
    assert.match(problems.join('\n'), /unmask\.languages\.go must be true or false/);
  });

  it('has nothing to report for the defaults', () => {
    const defaults = Object.fromEntries(
      Object.entries(schema).map(([name, property]) => [name.slice('unmask.'.length), property.default]),
    );
    assert.deepEqual(readConfigReport((key) => defaults[key]).problems, []);
  });
});
