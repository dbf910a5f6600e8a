import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findHoles, HOLE_PATTERN_SOURCE, holeMarker } from '../../client/holeMarker';

const root = join(__dirname, '../..');
const grammar = JSON.parse(readFileSync(join(root, 'syntaxes/hole.injection.tmLanguage.json'), 'utf8'));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

describe('the hole marker', () => {
  const cases = [
    { text: 'x = {{hole}}', holes: [{ start: 4, end: 12 }] },
    { text: 'def f():\n    {{hole:32}}\n', holes: [{ start: 13, end: 24, lengthHint: 32 }] },
    { text: '# {{hole:8}} and "{{hole}}"', holes: [{ start: 2, end: 12, lengthHint: 8 }, { start: 18, end: 26 }] },
    { text: '{{hole:0}}', holes: [{ start: 0, end: 10 }] },
    { text: '{hole} {{ hole }} {{Hole}} {{hole:}} {{hole:12345}} {{holes}}', holes: [] },
  ];
  for (const c of cases) {
    it(`finds ${c.holes.length} hole(s) in ${JSON.stringify(c.text)}`, () => {
      assert.deepEqual(findHoles(c.text), c.holes);
    });
  }

  it('writes markers that it finds again', () => {
    assert.equal(holeMarker(), '{{hole}}');
    assert.equal(holeMarker(16), '{{hole:16}}');
    assert.deepEqual(findHoles(holeMarker(16)), [{ start: 0, end: 11, lengthHint: 16 }]);
  });

  it('is highlighted by the grammar with exactly the same pattern', () => {
    assert.equal(grammar.repository.hole.match, HOLE_PATTERN_SOURCE);
  });

  it('is contributed as an injection grammar into the languages VS Code ships', () => {
    const contribution = manifest.contributes.grammars.find((g: { scopeName: string }) => g.scopeName === grammar.scopeName);
    assert.ok(contribution, 'package.json contributes the grammar');
    assert.equal(contribution.path, './syntaxes/hole.injection.tmLanguage.json');
    for (const scope of ['source.python', 'source.ts', 'source.js', 'source.rust', 'source.go', 'source.java']) {
      assert.ok(contribution.injectTo.includes(scope), `injected into ${scope}`);
    }
  });
});
