import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { checkDenoiserIo, checkManifestAgrees, factsFromMetadata, type IoInfo, headFromMetadata } from '../../server/runtime/metadata';
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
const K = 64;
const IO_OUTPUTS: IoInfo[] = [
  { name: 'logits', isTensor: true, type: 'float32', shape: ['batch', 'num_positions', 8192] },
  { name: 'top_logits', isTensor: true, type: 'float32', shape: ['batch', 'num_positions', K] },
  { name: 'top_ids', isTensor: true, type: 'int32', shape: ['batch', 'num_positions', K] },
  { name: 'log_z', isTensor: true, type: 'float32', shape: ['batch', 'num_positions'] },
];

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

  it('carry the snippet layout of a model trained with snippets of other files (unmask.related_context)', () => {
    const facts = factsFromMetadata({ ...GOOD, 'unmask.related_context': '{"layout": "file_sep", "max_tokens": 128}' }, 'model.int8.onnx');
    assert.deepEqual(facts.relatedContext, { layout: 'file_sep', maxTokens: 128 });
    assert.ok(Object.isFrozen(facts.relatedContext));
    assert.equal(factsFromMetadata(GOOD, 'model.int8.onnx').relatedContext, undefined, 'a model without the fact has none');
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
    // Issue 15: sizes past the runtime's limits ran the process out of memory (3.5 GB, abort) instead of a clear error.
    ['a huge max_seq_len', { 'unmask.max_seq_len': '100000000' }, /"unmask.max_seq_len" = 100000000 is above the runtime's limit of 16384/],
    ['a huge vocabulary', { 'unmask.vocab_size': '4000000000' }, /"unmask.vocab_size" = 4000000000 is above the runtime's limit of 1048576/],
    ['a huge span bucket', { 'unmask.span_buckets': '[8, 5000000]' }, /has 2 buckets up to 5000000 tokens; the runtime takes at most 32 buckets of at most 256 tokens/],
    ['a span bucket longer than the model', { 'unmask.span_buckets': '[8, 257]' }, /at most 256 tokens \(1024, and max_seq_len 256\)/],
    ['too many span buckets', { 'unmask.span_buckets': JSON.stringify(Array.from({ length: 40 }, (_, i) => i + 1)) }, /has 40 buckets/],
    ['a snippet layout that is not JSON', { 'unmask.related_context': 'file_sep' }, /"unmask.related_context" is not JSON/],
    ['a snippet layout that is not an object', { 'unmask.related_context': '[128]' }, /"unmask.related_context" is \[128\]; expected a JSON object/],
    ['an unknown snippet layout', { 'unmask.related_context': '{"layout": "fim", "max_tokens": 64}' }, /"unmask.related_context" .*"layout" must be "file_sep".*got "fim"/],
    ['snippets without max_tokens', { 'unmask.related_context': '{"layout": "file_sep"}' }, /"unmask.related_context" .*"max_tokens" must be an integer from 1 to 128 \(half of max_seq_len 256\), got undefined/],
    ['snippets of more than half the canvas', { 'unmask.related_context': '{"layout": "file_sep", "max_tokens": 129}' }, /"max_tokens" must be an integer from 1 to 128.*got 129/],
    ['snippets of 0 tokens', { 'unmask.related_context': '{"layout": "file_sep", "max_tokens": 0}' }, /"max_tokens" must be an integer from 1 to 128/],
    ['a fractional snippet budget', { 'unmask.related_context': '{"layout": "file_sep", "max_tokens": 64.5}' }, /"max_tokens" must be an integer/],
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
    checkDenoiserIo(IO_INPUTS, IO_OUTPUTS, facts, K, 'model.onnx');
  });

  it('names a missing input and lists the ones there are', () => {
    const inputs = [{ ...IO_INPUTS[0], name: 'tokens' }, IO_INPUTS[1]];
    assert.throws(
      () => checkDenoiserIo(inputs, IO_OUTPUTS, facts, K, 'model.onnx'),
      /model.onnx has no input "input_ids" \(int64 \[B, T\]\); its inputs are "tokens" \(int64, \[batch, seq\]\), "positions"/,
    );
  });

  it('names an input with the wrong dtype, with its shape', () => {
    const inputs = [{ ...IO_INPUTS[0], type: 'int32' }, IO_INPUTS[1]];
    assert.throws(
      () => checkDenoiserIo(inputs, IO_OUTPUTS, facts, K, 'model.onnx'),
      /input "input_ids" \(int32, \[batch, seq\]\) must have dtype int64/,
    );
  });

  it('names an input of the wrong rank and a fixed dimension that must be dynamic', () => {
    const rank = [IO_INPUTS[0], { ...IO_INPUTS[1], shape: ['batch'] }];
    assert.throws(() => checkDenoiserIo(rank, IO_OUTPUTS, facts, K, 'model.onnx'), /input "positions" \(int64, \[batch\]\) has rank 1/);
    const fixed = [{ ...IO_INPUTS[0], shape: ['batch', 128] }, IO_INPUTS[1]];
    assert.throws(() => checkDenoiserIo(fixed, IO_OUTPUTS, facts, K, 'model.onnx'), /dimension T must be dynamic/);
  });

  it('names logits whose vocabulary disagrees with the metadata', () => {
    const outputs = [{ ...IO_OUTPUTS[0], shape: ['batch', 'num_positions', 32000] }, ...IO_OUTPUTS.slice(1)];
    assert.throws(
      () => checkDenoiserIo(IO_INPUTS, outputs, facts, K, 'model.onnx'),
      /output "logits" \(float32, \[batch, num_positions, 32000\]\): dimension V must be 8192/,
    );
  });

  it('names a K-best head that is missing or has another K than its metadata', () => {
    assert.throws(() => checkDenoiserIo(IO_INPUTS, IO_OUTPUTS.slice(0, 1), facts, K, 'model.onnx'), /model.onnx has no output "top_logits" \(float32 \[B, P, K\]\)/);
    const ids32 = [IO_OUTPUTS[0], IO_OUTPUTS[1], { ...IO_OUTPUTS[2], shape: ['batch', 'num_positions', 32] }, IO_OUTPUTS[3]];
    assert.throws(() => checkDenoiserIo(IO_INPUTS, ids32, facts, K, 'model.onnx'), /output "top_ids" \(int32, \[batch, num_positions, 32\]\): dimension K must be 64/);
    const ids64 = [IO_OUTPUTS[0], IO_OUTPUTS[1], { ...IO_OUTPUTS[2], type: 'int64' }, IO_OUTPUTS[3]];
    assert.throws(() => checkDenoiserIo(IO_INPUTS, ids64, facts, K, 'model.onnx'), /output "top_ids" \(int64, .*must have dtype int32/);
  });

  it('refuses inputs it would not feed', () => {
    const inputs = [...IO_INPUTS, { name: 'attention_mask', isTensor: true, type: 'int64', shape: ['batch', 'seq'] }];
    assert.throws(() => checkDenoiserIo(inputs, IO_OUTPUTS, facts, K, 'model.onnx'), /inputs the runtime does not feed: "attention_mask"/);
  });
});

describe('the K-best head metadata', () => {
  const facts = factsFromMetadata(GOOD, 'model.onnx');
  const head = { ...GOOD, 'unmask.top_k': '64', 'unmask.banned_ids': '[10, 7, 3, 1, 0]' };

  it('gives K when the head bans what the sampler bans, in any order, and other special ids', () => {
    assert.deepEqual(headFromMetadata(head, facts, 'step.int8.onnx'), { topK: 64, allowed: 8192 - 5 });
    const fim = { ...head, 'unmask.special_ids': '{"pad": 0, "mask": 1, "eos": 2, "fim_prefix": 4}', 'unmask.banned_ids': '[0, 1, 3, 4, 7, 10]' };
    assert.deepEqual(headFromMetadata(fim, facts, 'step.int8.onnx'), { topK: 64, allowed: 8192 - 6 });
  });

  it('tells how to add a head to a graph exported without one', () => {
    assert.throws(() => headFromMetadata(GOOD, facts, 'step.int8.onnx'), /step.int8.onnx has no K-best head .*scripts.export_head/);
  });

  it('refuses a head that bans other ids than the sampler, or lists more tokens than the vocabulary', () => {
    assert.throws(
      () => headFromMetadata({ ...head, 'unmask.banned_ids': '[0, 1, 3]' }, facts, 'm.onnx'),
      /m.onnx metadata "unmask.banned_ids" is \[0,1,3\]; the sampler also bans \[7,10\]/,
    );
    assert.throws(() => headFromMetadata({ ...head, 'unmask.banned_ids': '[0, 1, 2, 3, 7, 10]' }, facts, 'm.onnx'), /bans end-of-span \(2\)/);
    assert.throws(() => headFromMetadata({ ...head, 'unmask.banned_ids': '[0, 1, 3, 7, 10, 500]' }, facts, 'm.onnx'), /\[500\] are not special ids/);
    assert.throws(() => headFromMetadata({ ...head, 'unmask.top_k': '9000' }, facts, 'm.onnx'), /"unmask.top_k" = 9000 exceeds the vocabulary \(8192\)/);
    assert.throws(() => headFromMetadata({ ...head, 'unmask.top_k': '0' }, facts, 'm.onnx'), /expected an integer >= 1/);
    assert.throws(() => headFromMetadata({ ...head, 'unmask.top_k': '2000' }, facts, 'm.onnx'), /"unmask.top_k" = 2000 is above the runtime's limit of 1024/);
  });
});
