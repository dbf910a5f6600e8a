/**
 * Chooses onnxruntime execution providers from the `unmask.device` setting and what this platform's
 * onnxruntime-node build offers. onnxruntime does not fall back from a provider list on its own (a list like
 * ['webgpu', 'cpu'] throws when WebGPU has no adapter), so the plan is a list of attempts, each tried in turn by
 * the worker, ending with the CPU; every skipped or failed attempt leaves a reason for the log and the status bar.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type DeviceSetting = 'auto' | 'cpu' | 'cuda' | 'webgpu' | 'dml' | 'coreml';
export const DEVICE_SETTINGS: readonly DeviceSetting[] = ['auto', 'cpu', 'cuda', 'webgpu', 'dml', 'coreml'];

/** What `listSupportedBackends()` returns: the providers compiled into this build, and whether they ship with it. */
export interface BackendInfo {
  readonly name: string;
  readonly bundled: boolean;
}

/** One session attempt: the provider it is for and the list handed to onnxruntime. */
export interface ProviderAttempt {
  readonly device: string;
  readonly providers: readonly string[];
}

export interface ProviderPlan {
  readonly attempts: readonly ProviderAttempt[];
  /** Providers left out before trying, with the reason (for example "cuda: provider libraries not installed"). */
  readonly skipped: readonly string[];
}

/** GPU providers in the order `auto` prefers them. */
const GPU_PREFERENCE = ['cuda', 'dml', 'coreml', 'webgpu'] as const;

/** The shared libraries a provider that does not ship with onnxruntime-node needs next to the binding. */
const EXTERNAL_PROVIDER_LIBRARIES: Readonly<Record<string, string>> = {
  cuda: process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so',
};

/**
 * Whether a non-bundled provider's libraries are installed, looked up in the directory of the native binding.
 * Injected in tests; the default checks the onnxruntime-node package on disk.
 */
export type LibraryProbe = (provider: string) => boolean;

export function defaultLibraryProbe(bindingDir: string | undefined): LibraryProbe {
  return (provider) => {
    const lib = EXTERNAL_PROVIDER_LIBRARIES[provider];
    if (!lib || !bindingDir) return false;
    return fs.existsSync(path.join(bindingDir, lib));
  };
}

/** Plans provider attempts for a device setting. Pure: the backend list and library probe are passed in. */
export function planProviders(setting: DeviceSetting, backends: readonly BackendInfo[], hasLibraries: LibraryProbe): ProviderPlan {
  const offered = new Map(backends.map((b) => [b.name, b]));
  const skipped: string[] = [];
  const usable = (name: string): boolean => {
    const backend = offered.get(name);
    if (!backend) {
      skipped.push(`${name}: not offered by onnxruntime-node on ${process.platform}-${process.arch}`);
      return false;
    }
    if (!backend.bundled && !hasLibraries(name)) {
      skipped.push(`${name}: provider libraries not installed (reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=${name === 'cuda' ? 'cuda12' : name})`);
      return false;
    }
    return true;
  };
  const cpu: ProviderAttempt = { device: 'cpu', providers: ['cpu'] };
  if (setting === 'cpu') return { attempts: [cpu], skipped };
  // Only providers this build offers can be named; the rest are reported and skipped, never silently dropped.
  const candidates = setting === 'auto' ? GPU_PREFERENCE.filter((name) => offered.has(name)) : [setting];
  const attempts = candidates.filter(usable).map((name) => ({ device: name, providers: [name, 'cpu'] }));
  return { attempts: [...attempts, cpu], skipped };
}

/** Collapses an onnxruntime error to its first meaningful line for a status message. */
export function shortError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  // onnxruntime prefixes its messages with source locations and assertion text; keep the human part.
  const human = /(failed to [^\n]*|no supported [^\n]*|cannot [^\n]*|could not [^\n]*)/i.exec(text);
  const reason = human ? human[1] : (text.split('\n').map((l) => l.trim()).find(Boolean) ?? 'unknown error');
  return reason.trim().slice(0, 300);
}
