// The install-time patches to isolated-vm (scripts/patch-isolated-vm.mjs): rerunning them changes
// nothing, and a source tree of an unexpected shape fails the install loudly, naming the file.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPatches } from '../../scripts/patch-isolated-vm.mjs';

const ivmDir = dirname(createRequire(import.meta.url).resolve('isolated-vm/package.json'));
const copies: string[] = [];

/** A copy of the installed (patched) isolated-vm sources. */
function copyOfSources(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cinder-ivm-'));
  copies.push(dir);
  cpSync(join(ivmDir, 'binding.gyp'), join(dir, 'binding.gyp'));
  cpSync(join(ivmDir, 'src'), join(dir, 'src'), { recursive: true });
  return dir;
}

function rewrite(dir: string, file: string, from: RegExp, to: string): void {
  const text = readFileSync(join(dir, file), 'utf8');
  expect(from.test(text)).toBe(true);
  writeFileSync(join(dir, file), text.replace(from, to));
}

afterEach(() => {
  for (const dir of copies.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('scripts/patch-isolated-vm.mjs', () => {
  it('finds every patch already applied in the installed sources, and changes nothing', () => {
    const dir = copyOfSources();
    expect(applyPatches(dir)).toBe(false);
  });

  it('fails loudly when a C++ edit finds neither its target nor its result', () => {
    const dir = copyOfSources();
    // The code patch 5 replaces, changed the way an upstream release might change it.
    rewrite(dir, 'src/module/isolate_handle.cc', /\t\t\/\/ cinder: consume the code cache[^\n]*\n\t\tauto compile_options[^\n]*\n/, '\t\tauto compile_options = ScriptCompiler::kEagerCompile;\n');
    expect(() => applyPatches(dir)).toThrow(/isolate_handle\.cc has an unexpected shape/);
  });

  it('fails loudly, naming context_handle.cc, when patch 11 finds neither its target nor its result', () => {
    const dir = copyOfSources();
    // Patch 11 undone and the method table it extends changed, as an upstream release might.
    rewrite(dir, 'src/module/context_handle.cc', /,\n\t\t"exposeContinuationData"[^\n]*\n\t\t"exposeContinuationDataSync"[^\n]*\n/, '\n');
    rewrite(dir, 'src/module/context_handle.cc', /\t\t"release", MemberFunction<[^\n]*\n/, '\t\t"release", MemberFunction<decltype(&ContextHandle::Release), &ContextHandle::Release>{}, // changed\n');
    expect(() => applyPatches(dir)).toThrow(/context_handle\.cc has an unexpected shape/);
  });

  it('fails loudly, naming serializer_nortti.cc, when patch 13 finds neither its target nor its result', () => {
    const dir = copyOfSources();
    // Patch 13's delegate undone, and the function it replaces changed as an upstream release might.
    rewrite(dir, 'src/external_copy/serializer_nortti.cc', /void SerializerDelegate::ThrowDataCloneError[\s\S]*?\n}\n\n\/\/ cinder \(patch 13\): V8 asks[\s\S]*?\n}\n/, 'void SerializerDelegate::ThrowDataCloneError(Local<String> message) {\n\tIsolate::GetCurrent()->ThrowException(Exception::Error(message));\n}\n');
    expect(() => applyPatches(dir)).toThrow(/serializer_nortti\.cc has an unexpected shape/);
  });

  it('the addon this checkout loads was built at the patch level package.json names (15 patches)', async () => {
    const { builtPatchLevel, expectedPatchLevel } = await import('../../src/runtime/ivm.js');
    expect(expectedPatchLevel).toMatch(/\+guest-thread-nice-1\+copy-limit-1\+background-threads-1\+namespace-at-link-1$/);
    expect(builtPatchLevel()).toBe(expectedPatchLevel);
  });

  it('fails loudly, naming scheduler.cc, when patch 14 finds neither its target nor its result', () => {
    const dir = copyOfSources();
    // Patch 14's dispatch undone, and the call it replaces changed as an upstream release might.
    rewrite(dir, 'src/isolate/scheduler.cc', /\t\/\/ cinder \(patch 14\): the class the isolate is in now[^\n]*\n\tconst bool background[^\n]*\n\t\(background \? background_thread_pool : thread_pool\)\.exec\(background \? background_affinity : thread_affinity, /, '\tthread_pool.exec_changed(thread_affinity, ');
    expect(() => applyPatches(dir)).toThrow(/scheduler\.cc has an unexpected shape/);
  });

  it('fails loudly when binding.gyp has neither the shape it fixes nor the fix', () => {
    const dir = copyOfSources();
    rewrite(dir, 'binding.gyp', /\[ 'OS == "linux"', \{ 'defines': \[ 'USE_CLOCK_THREAD_CPUTIME_ID' \] \} \],\n/, '');
    expect(() => applyPatches(dir)).toThrow(/binding\.gyp has an unexpected shape/);
  });
});
