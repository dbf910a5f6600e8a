import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ignoredModelPathNotice } from '../../client/trust';

describe('a workspace model path in Restricted Mode', () => {
  it('is reported when the untrusted workspace or one of its folders sets it', () => {
    assert.match(ignoredModelPathNotice(false, { workspaceValue: './models/evil' }) ?? '', /"\.\/models\/evil".*Restricted Mode.*Trust the workspace/);
    assert.match(ignoredModelPathNotice(false, { workspaceFolderValue: '/tmp/m' }) ?? '', /"\/tmp\/m"/);
  });

  it('is not reported in a trusted workspace, or when only the user sets it, or when it is empty', () => {
    assert.equal(ignoredModelPathNotice(true, { workspaceValue: './models/mine' }), undefined);
    assert.equal(ignoredModelPathNotice(false, {}), undefined);
    assert.equal(ignoredModelPathNotice(false, { workspaceValue: '  ' }), undefined);
    assert.equal(ignoredModelPathNotice(false, undefined), undefined);
  });
});
