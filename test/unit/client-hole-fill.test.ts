import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyReplacements, holeAsks, holeReplacements } from '../../client/holeFill';
import { findHoles } from '../../client/holeMarker';

const FILE = [
  'def area(w, h):',
  '    return {{hole:8}}',
  '',
  'def perimeter(w, h):',
  '    {{hole}}',
  '',
  '# {{hole:32}}',
  '',
].join('\n');

describe('Fill All Holes: request and edit', () => {
  const holes = findHoles(FILE);

  it('asks for every marker in document order, with its length hint as the token budget', () => {
    assert.equal(holes.length, 3);
    assert.deepEqual(holeAsks(holes), [
      { start: FILE.indexOf('{{hole:8}}'), end: FILE.indexOf('{{hole:8}}') + 10, maxTokens: 8 },
      { start: FILE.indexOf('{{hole}}'), end: FILE.indexOf('{{hole}}') + 8 },
      { start: FILE.indexOf('{{hole:32}}'), end: FILE.indexOf('{{hole:32}}') + 11, maxTokens: 32 },
    ]);
    assert.ok(!('maxTokens' in holeAsks(holes)[1]), 'a marker without a hint leaves the budget to the server setting');
  });

  it('replaces each marker with its own text and leaves everything else as it was', () => {
    const filled = applyReplacements(FILE, holeReplacements(holes, ['w * h', 'return 2 * (w + h)', 'TODO: volume']));
    assert.equal(
      filled,
      ['def area(w, h):', '    return w * h', '', 'def perimeter(w, h):', '    return 2 * (w + h)', '', '# TODO: volume', ''].join('\n'),
    );
  });

  it('removes the markers when the model left every hole empty', () => {
    const filled = applyReplacements(FILE, holeReplacements(holes, ['', '', '']));
    assert.deepEqual(findHoles(filled), []);
    assert.equal(filled, FILE.replace(/\{\{hole(:\d+)?\}\}/g, ''));
  });

  it('keeps text that looks like a marker inside the generated text instead of re-reading it', () => {
    const filled = applyReplacements('a {{hole}} b {{hole}} c', holeReplacements(findHoles('a {{hole}} b {{hole}} c'), ['{{hole}}', 'x']));
    assert.equal(filled, 'a {{hole}} b x c');
  });

  it('refuses an answer with a different number of texts than holes', () => {
    assert.throws(() => holeReplacements(holes, ['only one']), /returned 1 text\(s\) for 3 hole\(s\)/);
  });

  it('refuses replacements out of order, overlapping or outside the text', () => {
    assert.throws(() => applyReplacements('abcdef', [{ start: 3, end: 4, text: '' }, { start: 1, end: 2, text: '' }]), RangeError);
    assert.throws(() => applyReplacements('abcdef', [{ start: 1, end: 4, text: '' }, { start: 3, end: 5, text: '' }]), RangeError);
    assert.throws(() => applyReplacements('abc', [{ start: 2, end: 9, text: '' }]), RangeError);
  });
});
