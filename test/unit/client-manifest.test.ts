import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const root = join(__dirname, '../..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const extensionSource = readFileSync(join(root, 'client/extension.ts'), 'utf8');

describe('the extension manifest', () => {
  for (const { command } of manifest.contributes.commands as { command: string }[]) {
    it(`has a handler for ${command}`, () => {
      assert.ok(extensionSource.includes(`registerCommand('${command}'`), `client/extension.ts registers ${command}`);
    });
  }

  it('binds keys and menus only to contributed commands', () => {
    // VS Code's own partial accept (unbound by default); client-keybindings.test.ts checks the keys themselves.
    const builtIn = ['editor.action.inlineSuggest.acceptNextLine'];
    const known = new Set([...builtIn, ...manifest.contributes.commands.map((c: { command: string }) => c.command)]);
    const used = [
      ...manifest.contributes.keybindings,
      ...Object.values(manifest.contributes.menus as Record<string, { command: string }[]>).flat(),
    ].map((entry: { command: string }) => entry.command);
    for (const command of used) assert.ok(known.has(command), `${command} is contributed`);
  });

  it('works in Restricted Mode with the settings that load files restricted (issue 15)', () => {
    const trust = manifest.capabilities?.untrustedWorkspaces;
    assert.equal(trust?.supported, 'limited');
    assert.match(trust.description, /unmask.modelPath/);
    // Every setting that names a file or folder to load: a workspace must not pick what the extension executes.
    const settings = (manifest.contributes.configuration as { properties: object }[]).flatMap((section) => Object.keys(section.properties));
    const loadsFiles = settings.filter((key) => /path|file|folder|dir/i.test(key));
    assert.deepEqual(loadsFiles, ['unmask.modelPath']);
    assert.deepEqual(trust.restrictedConfigurations, loadsFiles);
  });

  it('runs the bundled client', () => {
    assert.equal(manifest.main, './dist/client.js');
  });
});
