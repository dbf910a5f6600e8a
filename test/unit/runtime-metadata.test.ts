import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { checkDenoiserIo, checkManifestAgrees, factsFromMetadata, type IoInfo } from '../../server/runtime/metadata';
import { readOnnxFileInfo } from '../../server/runtime/onnx-proto';
import { tempDir } from '../fixtures/models';
import { writeTinyModel } from '../fixtures/tiny-model';

const GOOD: Record<string, string> = {
  'unmask.format': '1',
  'unmask.kind': 'mdm',
  'unmask.vocab_size': '8192',
  'unmask.max_seq_len': '256',
  'unmask.mask_id': '1',
  'unmask.eos_id': '2',
  'unmask.pad_id': '0',
  'unmask.file_sep_id': '3',
  'unmask.lang_ids': '{"python": 7, "other": 10}',
  'unmask.span_buckets': '[8, 16, 32, 64, 128]',
  'unmask.attention': 'full',
};

const IO_INPUTS: IoInfo[] = [
  { name: 'input_ids', isTensor: true, type: 'int64', shape: ['batch', 'seq'] },
  { name: 'positions', isTensor: true, type: 'int64', shape: ['batch', 'num_positions'] },
];
const IO_OUTPUTS: IoInfo[] = [{ name: 'logits', isTensor: true, type: 'float32', shape: ['batch', 'num_positions', 8192] }];

describe('ONNX metadata', () => {
  it('is read from the protobuf of a model file, with IR version and opsets', () => {
    const dir = tempDir('fixture');
    writeTinyModel(dir);
    const info = readOnnxFileInfo(path.join(dir, 'model.onnx'));
    assert.equal(info.irVersion, 8);
    assert.deepEqual(info.opsets, { '': 17 });
    assert.equal(info.metadata['unmask.kind'], 'mdm');
    assert.equal(info.metadata['unmask.span_buckets'], '[8,16,32,64]');
  });

  it('refuses a file that is not an ONNX model, naming it', () => {
    const dir = tempDir('junk');
    const junk = path.join(dir, 'model.onnx');
    fs.writeFileSync(junk, 'this is not a protobuf at all, just text that someone saved as .onnx');
    assert.throws(() => readOnnxFileInfo(junk), (err: Error) => err.message.startsWith(`${junk} is not a readable ONNX model`));
    fs.writeFileSync(junk, Buffer.alloc(0));
    assert.throws(() => readOnnxFileInfo(junk), /not a readable ONNX model/);
  });

  it('refuses a truncated model file', () => {
    const dir = tempDir('fixture');
    writeTinyModel(dir);
    const file = path.join(dir, 'model.onnx');
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 200));
    assert.throws(() => readOnnxFileInfo(file), /not a readable ONNX model/);
  });

  it('becomes frozen ModelFacts', () => {
    const facts = factsFromMetadata(GOOD, 'model.int8.onnx');
    assert.deepEqual(facts, {
      vocabSize: 8192,
      maxSeqLen: 256,
      maskId: 1,
      eosId: 2,
      padId: 0,
      fileSepId: 3,
      langIds: { python: 7, other: 10 },
      spanBuckets: [8, 16, 32, 64, 128],
    });
    assert.ok(Object.isFrozen(facts) && Object.isFrozen(facts.langIds));
  });

  const broken: [string, Record<string, string | undefined>, RegExp][] = [
    ['another contract version', { 'unmask.format': '2' }, /unmask.format=2; this runtime reads version 1/],
    ['a discriminator', { 'unmask.kind': 'disc' }, /is a "disc" model/],
    ['causal attention', { 'unmask.attention': 'causal' }, /attention "causal"/],
    ['no vocabulary size', { 'unmask.vocab_size': undefined }, /lacks metadata "unmask.vocab_size"/],
    ['a vocabulary size that is not a number', { 'unmask.vocab_size': '8k' }, /"unmask.vocab_size" is "8k"; expected an integer/],
    ['a mask id outside the vocabulary', { 'unmask.mask_id': '9000' }, /"unmask.mask_id" = 9000 is outside the vocabulary \(size 8192\)/],
    ['mask and end-of-span sharing an id', { 'unmask.eos_id': '1' }, /same id 1 for mask and end-of-span/],
    ['language ids that are not JSON', { 'unmask.lang_ids': '{python: 7}' }, /"unmask.lang_ids" is not JSON/],
    ['no "other" language tag', { 'unmask.lang_ids': '{"python": 7}' }, /no "other" fallback tag/],
    ['a language id outside the vocabulary', { 'unmask.lang_ids': '{"other": 99999}' }, /gives "other" the id 99999/],
    ['span buckets out of order', { 'unmask.span_buckets': '[16, 8]' }, /must be increasing positive integers/],
  ];
  for (const [what, change, message] of broken) {
    it(`refuses ${what}`, () => {
      const meta = Object.fromEntries(Object.entries({ ...GOOD, ...change }).filter(([, v]) => v !== undefined)) as Record<string, string>;
      assert.throws(
        () => factsFromMetadata(meta, 'model.int8.onnx'),
        (err: Error) => message.test(err.message) && err.message.startsWith('model.int8.onnx'),
      );
    });
  }

  it('must agree with the manifest on every key both carry', () => {
    checkManifestAgrees(GOOD, { 'unmask.span_buckets': '[8,16,32,64,128]', 'unmask.extra': 'x' }, 'model.onnx');
    checkManifestAgrees(GOOD, {}, 'model.onnx');
    assert.throws(
      () => checkManifestAgrees(GOOD, { 'unmask.vocab_size': '16384' }, 'model.onnx'),
      /manifest.json and model.onnx disagree on "unmask.vocab_size": manifest 16384, model 8192/,
    );
  });
});

describe('the denoiser contract', () => {
  const facts = factsFromMetadata(GOOD, 'model.onnx');

  it('accepts input_ids, positions and logits with dynamic B, T, P', () => {
    checkDenoiserIo(IO_INPUTS, IO_OUTPUTS, facts, 'model.onnx');
  });

  it('names a missing input and lists the ones there are', () => {
    const inputs = [{ ...IO_INPUTS[0], name: 'tokens' }, IO_INPUTS[1]];
    assert.throws(
      () => checkDenoiserIo(inputs, IO_OUTPUTS, facts, 'model.onnx'),
      /model.onnx has no input "input_ids" \(int64 \[B, T\]\); its inputs are "tokens" \(int64, \[batch, seq\]\), "positions"/,
    );
  });

  it('names an input with the wrong dtype, with its shape', () => {
    const inputs = [{ ...IO_INPUTS[0], type: 'int32' }, IO_INPUTS[1]];
    assert.throws(
      () => checkDenoiserIo(inputs, IO_OUTPUTS, facts, 'model.onnx'),
      /input "input_ids" \(int32, \[batch, seq\]\) must have dtype int64/,
    );
  });

  it('names an input of the wrong rank and a fixed dimension that must be dynamic', () => {
    const rank = [IO_INPUTS[0], { ...IO_INPUTS[1], shape: ['batch'] }];
    assert.throws(() => checkDenoiserIo(rank, IO_OUTPUTS, facts, 'model.onnx'), /input "positions" \(int64, \[batch\]\) has rank 1/);
    const fixed = [{ ...IO_INPUTS[0], shape: ['batch', 128] }, IO_INPUTS[1]];
    assert.throws(() => checkDenoiserIo(fixed, IO_OUTPUTS, facts, 'model.onnx'), /dimension T must be dynamic/);
  });

  it('names logits whose vocabulary disagrees with the metadata', () => {
    const outputs = [{ ...IO_OUTPUTS[0], shape: ['batch', 'num_positions', 32000] }];
    assert.throws(
      () => checkDenoiserIo(IO_INPUTS, outputs, facts, 'model.onnx'),
      /output "logits" \(float32, \[batch, num_positions, 32000\]\): dimension V must be 8192/,
    );
  });

  it('refuses inputs it would not feed', () => {
    const inputs = [...IO_INPUTS, { name: 'attention_mask', isTensor: true, type: 'int64', shape: ['batch', 'seq'] }];
    assert.throws(() => checkDenoiserIo(inputs, IO_OUTPUTS, facts, 'model.onnx'), /inputs the runtime does not feed: "attention_mask"/);
  });
});
