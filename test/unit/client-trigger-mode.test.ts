import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_CONFIG, languageEnabled, readConfig, readConfigReport } from '../../client/config';
import { describeStatus } from '../../client/statusText';
import { inlineRoute, otherMode } from '../../client/triggerPolicy';

const root = join(__dirname, '../..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const sections: { title: string; properties: Record<string, { default: unknown; enum?: string[] }> }[] = manifest.contributes.configuration;
const settings = Object.assign({}, ...sections.map((s) => s.properties)) as Record<string, { default: unknown; enum?: string[] }>;

describe('trigger mode', () => {
  it('is a setting, automatic by default, automatic or manual', () => {
    assert.deepEqual(settings['unmask.triggerMode'].enum, ['automatic', 'manual']);
    assert.equal(settings['unmask.triggerMode'].default, 'automatic');
    assert.equal(DEFAULT_CONFIG.triggerMode, 'automatic');
    assert.equal(readConfig((key) => (key === 'triggerMode' ? 'manual' : undefined)).triggerMode, 'manual');
    const report = readConfigReport((key) => (key === 'triggerMode' ? 'on-demand' : undefined));
    assert.equal(report.config.triggerMode, 'automatic');
    assert.match(report.problems.join('\n'), /unmask\.triggerMode must be one of automatic, manual/);
  });

  it('automatic: every request may run the model', () => {
    assert.equal(inlineRoute('automatic', true), 'model');
    assert.equal(inlineRoute('automatic', false), 'model');
  });

  it('manual: only an explicit request runs the model; what VS Code asks as you type may only reuse it', () => {
    assert.equal(inlineRoute('manual', false), 'model');
    assert.equal(inlineRoute('manual', true), 'cache');
  });

  it('flips with Unmask: Switch Trigger Mode', () => {
    assert.equal(otherMode('automatic'), 'manual');
    assert.equal(otherMode('manual'), 'automatic');
  });

  it('shows "manual" in the status bar, with the key that asks', () => {
    const view = describeStatus({ state: 'ready', lastLatencyMs: 84 }, { triggerMode: 'manual' });
    assert.equal(view.text, '$(sparkle) Unmask 84 ms (manual)');
    assert.match(view.tooltip, /Trigger mode: manual\. Press Ctrl\+Alt\+\\/);
    const automatic = describeStatus({ state: 'ready', lastLatencyMs: 84 }, { triggerMode: 'automatic' });
    assert.equal(automatic.text, '$(sparkle) Unmask 84 ms');
    assert.match(automatic.tooltip, /Trigger mode: automatic/);
  });
});

describe('default languages', () => {
  const trained = Object.keys(
    JSON.parse(JSON.parse(readFileSync(join(root, 'models/unmask-coder-base/manifest.json'), 'utf8')).facts['unmask.lang_ids']),
  ).filter((language) => language !== 'other');

  it('are the ones the shipped model was trained on (and their JSX dialects), the rest off', () => {
    assert.deepEqual(trained.sort(), ['javascript', 'python', 'typescript']);
    for (const language of [...trained, 'typescriptreact', 'javascriptreact']) assert.equal(languageEnabled(DEFAULT_CONFIG, language), true, language);
    for (const language of ['go', 'rust', 'markdown', 'plaintext', 'scminput', 'java']) assert.equal(languageEnabled(DEFAULT_CONFIG, language), false, language);
    assert.deepEqual(settings['unmask.languages'].default, DEFAULT_CONFIG.languages);
  });

  it('say why in the status bar when a language is off', () => {
    const view = describeStatus({ state: 'ready' }, { off: 'language', languageId: 'go' });
    assert.match(view.tooltip, /off for go .*Python, TypeScript and JavaScript/);
  });
});

describe('settings layout', () => {
  it('keeps the sampler internals in an advanced section of their own', () => {
    assert.equal(sections.length, 2);
    assert.match(sections[1].title, /Advanced/);
    const advanced = Object.keys(sections[1].properties).sort();
    assert.deepEqual(advanced, ['unmask.cacheNgram', 'unmask.cacheNgramOpenDocuments', 'unmask.confidenceThreshold', 'unmask.contextTokens', 'unmask.maxSpanTokens', 'unmask.relatedContextTokens', 'unmask.steps', 'unmask.strategy', 'unmask.temperature', 'unmask.topP']);
    for (const key of ['unmask.enable', 'unmask.triggerMode', 'unmask.languages', 'unmask.idleUnloadMinutes']) assert.ok(key in sections[0].properties, key);
  });

  it('unloads an idle model after 15 minutes by default (0 keeps it)', () => {
    assert.equal(settings['unmask.idleUnloadMinutes'].default, 15);
    assert.equal(DEFAULT_CONFIG.idleUnloadMinutes, 15);
    assert.equal(readConfig((key) => (key === 'idleUnloadMinutes' ? 0 : undefined)).idleUnloadMinutes, 0);
    assert.equal(readConfig((key) => (key === 'idleUnloadMinutes' ? -3 : undefined)).idleUnloadMinutes, 0);
  });
});
