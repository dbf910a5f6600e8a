import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BackendInfo, planProviders, shortError } from '../../server/runtime/providers';

// What listSupportedBackends() returns on each platform's onnxruntime-node 1.30 build.
const LINUX: BackendInfo[] = [
  { name: 'cpu', bundled: true },
  { name: 'webgpu', bundled: true },
  { name: 'cuda', bundled: false },
  { name: 'tensorrt', bundled: false },
];
const WINDOWS: BackendInfo[] = [
  { name: 'cpu', bundled: true },
  { name: 'dml', bundled: true },
  { name: 'webgpu', bundled: true },
  { name: 'cuda', bundled: false },
];
const MAC: BackendInfo[] = [
  { name: 'cpu', bundled: true },
  { name: 'coreml', bundled: true },
  { name: 'webgpu', bundled: true },
];
const noLibraries = (): boolean => false;
const cudaInstalled = (name: string): boolean => name === 'cuda';

const devices = (plan: ReturnType<typeof planProviders>): string[] => plan.attempts.map((a) => a.device);

describe('execution provider choice', () => {
  it('cpu uses the CPU alone', () => {
    const plan = planProviders('cpu', LINUX, cudaInstalled);
    assert.deepEqual(plan.attempts, [{ device: 'cpu', providers: ['cpu'] }]);
    assert.deepEqual(plan.skipped, []);
  });

  it('auto on Linux skips CUDA without its libraries, tries WebGPU, then the CPU', () => {
    const plan = planProviders('auto', LINUX, noLibraries);
    assert.deepEqual(devices(plan), ['webgpu', 'cpu']);
    assert.match(plan.skipped[0], /^cuda: provider libraries not installed .*ONNXRUNTIME_NODE_INSTALL=cuda12/);
  });

  it('auto on Linux prefers CUDA once its libraries are installed', () => {
    assert.deepEqual(devices(planProviders('auto', LINUX, cudaInstalled)), ['cuda', 'webgpu', 'cpu']);
  });

  it('auto on Windows tries DirectML before WebGPU, and on macOS CoreML', () => {
    assert.deepEqual(devices(planProviders('auto', WINDOWS, noLibraries)), ['dml', 'webgpu', 'cpu']);
    assert.deepEqual(devices(planProviders('auto', MAC, noLibraries)), ['coreml', 'webgpu', 'cpu']);
  });

  it('every GPU attempt keeps the CPU in its list for the operators the GPU lacks', () => {
    for (const attempt of planProviders('auto', WINDOWS, cudaInstalled).attempts) {
      assert.equal(attempt.providers[attempt.providers.length - 1], 'cpu');
    }
  });

  it('a provider this build does not offer is skipped with the reason, and the CPU remains', () => {
    const plan = planProviders('dml', LINUX, noLibraries);
    assert.deepEqual(devices(plan), ['cpu']);
    assert.match(plan.skipped[0], /^dml: not offered by onnxruntime-node on /);
  });

  it('an explicit provider is tried first, then the CPU', () => {
    assert.deepEqual(planProviders('webgpu', LINUX, noLibraries).attempts, [
      { device: 'webgpu', providers: ['webgpu', 'cpu'] },
      { device: 'cpu', providers: ['cpu'] },
    ]);
  });

  it('an empty backend list still plans the CPU', () => {
    assert.deepEqual(devices(planProviders('auto', [], noLibraries)), ['cpu']);
  });
});

describe('provider error messages', () => {
  it('keep the human part of onnxruntime errors', () => {
    const webgpu =
      "/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(...)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\n";
    assert.equal(shortError(new Error(webgpu)), 'Failed to get a WebGPU adapter: No supported adapters');
    assert.equal(shortError(new Error('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library')), 'Failed to load shared library');
    assert.equal(shortError('something odd\nsecond line'), 'something odd');
  });
});
