import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { denoiserFile, loadManifest, verifyFiles } from '../../server/runtime/manifest';
import { tempDir } from '../fixtures/models';
import { writeTinyModel } from '../fixtures/tiny-model';

function folderWith(manifest: unknown, files: Record<string, string> = {}): string {
  const dir = tempDir('manifest');
  fs.writeFileSync(path.join(dir, 'manifest.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  return dir;
}

describe('the model manifest', () => {
  it('is read with its id, kind, files, metadata and special tokens', () => {
    const dir = tempDir('fixture');
    writeTinyModel(dir);
    const manifest = loadManifest(dir);
    assert.equal(manifest.id, 'tiny-fixture');
    assert.equal(manifest.kind, 'mdm');
    assert.deepEqual(manifest.files.map((f) => f.path).sort(), ['model.onnx', 'tokenizer.json']);
    assert.equal(manifest.metadata['unmask.vocab_size'], '280');
    assert.equal(manifest.specialTokens.mask, '<|mask|>');
    assert.ok(Object.isFrozen(manifest));
  });

  it('also accepts files as a map of name -> sha256, and facts under "metadata"', () => {
    const dir = folderWith({ id: 'm', files: { 'model.onnx': 'a'.repeat(64), 'tokenizer.json': {} }, metadata: { 'unmask.vocab_size': 512 } });
    const manifest = loadManifest(dir);
    assert.deepEqual(manifest.files, [
      { path: 'model.onnx', sha256: 'a'.repeat(64), bytes: undefined },
      { path: 'tokenizer.json', sha256: undefined, bytes: undefined },
    ]);
    assert.equal(manifest.metadata['unmask.vocab_size'], '512');
  });

  const invalid: [string, unknown, RegExp][] = [
    ['a manifest that is not JSON', '{"id": ', /not JSON/],
    ['a manifest that is an array', [], /expected a JSON object/],
    ['a missing id', { files: {} }, /"id" must be a non-empty string/],
    ['an unknown kind', { id: 'm', kind: 'gpt', files: {} }, /"kind" is "gpt"/],
    ['a newer manifest format', { format: 2, id: 'm', files: {} }, /format 2 is not supported/],
    ['a missing file list', { id: 'm' }, /"files" must list/],
    ['a sha256 that is not hex', { id: 'm', files: { 'model.onnx': 'xyz' } }, /sha256 that is not 64 hex digits/],
    ['a path outside the folder', { id: 'm', files: { '../model.onnx': {} } }, /must be a path inside the model folder/],
    ['a negative byte count', { id: 'm', files: { 'model.onnx': { bytes: -1 } } }, /byte count/],
    ['metadata that is not an object', { id: 'm', files: {}, metadata: 'x' }, /"metadata" must be an object/],
  ];
  for (const [what, manifest, message] of invalid) {
    it(`rejects ${what} with an error naming the file`, () => {
      const dir = folderWith(manifest);
      assert.throws(() => loadManifest(dir), (err: Error) => message.test(err.message) && err.message.includes('manifest.json'));
    });
  }

  it('names a missing folder and a folder without manifest.json', () => {
    assert.throws(() => loadManifest('/nonexistent/unmask-model'), /Model folder not found: \/nonexistent\/unmask-model/);
    const dir = tempDir('empty');
    assert.throws(() => loadManifest(dir), /has no manifest.json/);
  });

  it('loads the default file the manifest names when no precision is asked for', () => {
    const dir = folderWith({ id: 'm', default_file: 'model.onnx', files: { 'model.int8.onnx': {}, 'model.onnx': {} } }, { 'model.int8.onnx': 'x', 'model.onnx': 'y' });
    assert.equal(path.basename(denoiserFile(loadManifest(dir))), 'model.onnx');
    assert.equal(path.basename(denoiserFile(loadManifest(dir), 'int8')), 'model.int8.onnx');
  });

  it('prefers the int8 denoiser and falls back to fp32', () => {
    const both = folderWith({ id: 'm', files: { 'model.int8.onnx': {}, 'model.onnx': {} } }, { 'model.int8.onnx': 'x', 'model.onnx': 'y' });
    assert.equal(path.basename(denoiserFile(loadManifest(both))), 'model.int8.onnx');
    assert.equal(path.basename(denoiserFile(loadManifest(both), 'fp32')), 'model.onnx');
    const fp32 = folderWith({ id: 'm', files: { 'model.onnx': {} } }, { 'model.onnx': 'y' });
    assert.equal(path.basename(denoiserFile(loadManifest(fp32))), 'model.onnx');
  });

  it('says which denoiser files are missing or unlisted', () => {
    const dir = folderWith({ id: 'm', files: { 'model.int8.onnx': {} } });
    assert.throws(() => denoiserFile(loadManifest(dir)), /model.int8.onnx \(listed but missing on disk\), model.onnx \(not listed\)/);
  });

  it('detects a truncated file by its size and a replaced one by its sha256', () => {
    const dir = tempDir('fixture');
    writeTinyModel(dir);
    verifyFiles(loadManifest(dir), true);
    const raw = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const file = (name: string) => raw.files.find((f: { name: string }) => f.name === name);
    file('tokenizer.json').bytes += 1;
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(raw));
    assert.throws(() => verifyFiles(loadManifest(dir), false), /tokenizer.json is \d+ bytes, the manifest says \d+/);
    file('tokenizer.json').bytes -= 1;
    delete file('model.onnx').bytes;
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(raw));
    fs.appendFileSync(path.join(dir, 'model.onnx'), Buffer.from([0]));
    verifyFiles(loadManifest(dir), false); // No size listed and hashes not checked: the change goes unseen.
    assert.throws(() => verifyFiles(loadManifest(dir), true), /model.onnx has sha256 \w+…, the manifest says \w+…/);
  });

  it('runs without its test fixture (parity.json), which the VSIX leaves out', () => {
    const dir = tempDir('fixture');
    writeTinyModel(dir);
    const raw = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    raw.files.push({ name: 'parity.json', sha256: '0'.repeat(64), bytes: 10, role: 'parity-fixture' });
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(raw));
    verifyFiles(loadManifest(dir), true);
    raw.files[raw.files.length - 1].role = 'tokenizer';
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(raw));
    assert.throws(() => verifyFiles(loadManifest(dir), true), /parity.json is missing/);
  });
});
