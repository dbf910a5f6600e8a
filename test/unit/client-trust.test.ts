import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ignoredModelPathNotice, workspaceModelPath } from '../../client/trust';

describe('a workspace model path in Restricted Mode', () => {
  it('is found in a folder settings file with comments and trailing commas, as VS Code reads them', () => {
    const text = '{\n  // my model\n  "editor.tabSize": 2,\n  "unmask.modelPath": "./models/evil",\n}\n';
    assert.equal(workspaceModelPath([{ text, kind: 'folder' }]), './models/evil');
  });

  it('is found under "settings" in a .code-workspace file, and only there', () => {
    const workspace = '{ "folders": [{ "path": "a" }], "settings": { "unmask.modelPath": "/tmp/m" } }';
    assert.equal(workspaceModelPath([{ text: workspace, kind: 'workspace' }]), '/tmp/m');
    assert.equal(workspaceModelPath([{ text: '{ "unmask.modelPath": "/tmp/m" }', kind: 'workspace' }]), undefined);
  });

  it('is absent when no file sets it, it is blank or not a string, or a file is not JSON', () => {
    assert.equal(workspaceModelPath([]), undefined);
    assert.equal(workspaceModelPath([{ text: '{ "unmask.modelPath": "  " }', kind: 'folder' }]), undefined);
    assert.equal(workspaceModelPath([{ text: '{ "unmask.modelPath": 3 }', kind: 'folder' }]), undefined);
    assert.equal(workspaceModelPath([{ text: '\u0000\u0001 not json', kind: 'folder' }, { text: '{ "unmask.modelPath": "b" }', kind: 'folder' }]), 'b');
  });

  it('gets a notice naming it only in an untrusted workspace', () => {
    assert.match(ignoredModelPathNotice(false, './models/evil') ?? '', /"\.\/models\/evil".*Restricted Mode.*Trust the workspace/);
    assert.equal(ignoredModelPathNotice(true, './models/mine'), undefined);
    assert.equal(ignoredModelPathNotice(false, undefined), undefined);
  });
});
