import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CONFIG, type UnmaskConfig } from '../../client/config';
import { Enablement } from '../../client/enablement';

const config = (overrides: Partial<UnmaskConfig> = {}): UnmaskConfig => ({ ...DEFAULT_CONFIG, ...overrides });

describe('whether inline completions are on', () => {
  it('is on by default for code and off for plain text and markdown', () => {
    const state = new Enablement();
    assert.equal(state.offReason(config(), 'python', 0), undefined);
    assert.equal(state.offReason(config(), 'plaintext', 0), 'language');
    assert.equal(state.offReason(config(), 'markdown', 0), 'language');
  });

  it('is off everywhere when the setting is off', () => {
    assert.equal(new Enablement().offReason(config({ enable: false }), 'python', 0), 'disabled');
  });

  it('follows "*" for languages not listed', () => {
    const state = new Enablement();
    const onlyPython = config({ languages: { '*': false, python: true } });
    assert.equal(state.offReason(onlyPython, 'python', 0), undefined);
    assert.equal(state.offReason(onlyPython, 'rust', 0), 'language');
  });

  it('is off while snoozed and on again when the snooze ends', () => {
    const state = new Enablement();
    state.snooze(5, 1_000);
    assert.equal(state.offReason(config(), 'python', 1_000 + 4 * 60_000), 'snoozed');
    assert.equal(state.snoozeLeftMs(1_000 + 4 * 60_000), 60_000);
    assert.equal(state.offReason(config(), 'python', 1_000 + 5 * 60_000), undefined);
    assert.equal(state.snoozeLeftMs(1_000 + 5 * 60_000), 0);
  });

  it('can be resumed before the snooze ends', () => {
    const state = new Enablement();
    state.snooze(5, 0);
    state.resume();
    assert.equal(state.offReason(config(), 'python', 1), undefined);
  });
});
