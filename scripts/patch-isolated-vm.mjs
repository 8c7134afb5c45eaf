#!/usr/bin/env node
// Fifteen changes to isolated-vm 7.0.2 (the version package.json pins exactly), applied at install
// time. Each was first written for 5.0.4; on 7.0.2 every one still finds the unpatched code it
// replaces (upstream has not fixed any of these), so all are kept. Two fix the CPU clock Cinder's CPU
// limit depends on:
//
// 1. binding.gyp gives the `isolated_vm` target two `conditions` keys; in a Python dict literal
//    the second wins, so USE_CLOCK_THREAD_CPUTIME_ID is never defined on Linux and
//    `isolate.cpuTime` reports wall time. We merge the two lists.
// 2. Even with the thread clock, a reading taken while the isolate runs adds the running slice
//    as *wall* time (CpuTimer::Delta uses the steady clock), so a busy machine inflates CPU
//    readings mid-run and the CPU limit fires early. We read the running thread's own CPU clock
//    (pthread_getcpuclockid) instead.
// And one makes snapshot isolates cheaper:
// 3. createSnapshot stores the prelude's context as the snapshot's *default* context, and every
//    isolate made from the snapshot builds its own internal default context (used to throw errors
//    and copy values) from it: each isolate deserialized the whole prelude twice, ~3 ms and ~0.6 MB
//    of heap wasted per isolate. The snapshot now keeps an empty default context and the prelude's
//    context as context #0 (SnapshotCreator::AddContext); createContext() builds from #0
//    (Context::FromSnapshot) and falls back to the default for isolates without a snapshot.
// 4. `new Isolate` has no asynchronous form, and building an isolate from the snapshot holds the
//    calling thread ~7 ms. `isolate.spawnIsolate(options)` builds a new isolate (same options as
//    the constructor, except `inspector`) on isolated-vm's threads, in the task of an existing
//    isolate (whose executor tells the new one which Node thread owns it), and resolves to it: the
//    ready pool refills without stalling the thread that serves requests.
// And two make the worker code cache work for ES modules, and hold more:
// 5. compileModule accepts `cachedData` and reports `cachedDataRejected: false`, but never passes
//    kConsumeCodeCache to V8, so the cache is silently ignored and every module is parsed from
//    scratch (measured: a 1.2 MB bundle compiles in 7.0 ms with or without its cache; as a
//    script, which does pass the flag, 0.4 ms with it). Modules now consume the cache they are
//    given, as scripts do.
// 6. A cache can be made only at compile time, when it holds just the top level: V8 compiles the
//    other functions on their first call, in every new isolate. `module.createCachedDataSync()`
//    makes one at any later time (V8 hands out the module's unbound script only before
//    evaluation, so ModuleInfo keeps it from compile time). Made after a first request, the cache
//    holds every function the top level and that request ran: the 1.2 MB bench bundle then
//    evaluates in 12 ms instead of 33, for 6 ms more deserializing.
// And one more for memory:
// 7. Even empty, the internal default context of patch 3 is a whole second context in every
//    isolate (its global object, builtins and prototypes). With a snapshot, the prelude's context
//    is now the default context too, and the first createContext() hands that one out instead of
//    deserializing another (later calls, and isolates with an inspector, get their own as before).
//    The library's own work (errors, copies) then happens in the guest's realm, which was already
//    where its results land; the guest gains nothing it could not reach.
// And one for compatibility with workerd:
// 8. isolated-vm allows eval() and new Function() always (its code-generation callback only bounds
//    the source's size). workerd allows them while a worker starts and refuses them in handlers
//    with an EvalError. `isolate.disallowCodeGeneration()` makes the callback refuse from then on;
//    Cinder calls it once the worker's top level has run.
//
// And one so the runtime can tell what it loads:
// 9. The addon exports `cinderPatchLevel` (package.json's cinder.isolatedVmPatchLevel at build
//    time); the runtime refuses to start on any other (src/runtime/ivm.ts). The prebuilt,
//    unpatched binaries the package ships are deleted, so node-gyp-build cannot fall back to one.
// And one new with Node 26:
// 10. createInspectorSession() connected the session to V8's inspector from the calling thread
//    without entering the isolate; V8 14 checks that and aborts the process ("Check failed:
//    IsCreationThread()"), on upstream 7.0.2 as well. The connect now runs under the isolate's
//    lock, as isolated-vm's other synchronous calls into an isolate do.
// And one for AsyncLocalStorage:
// 11. V8 keeps an isolate-wide value, the continuation-preserved embedder data, that every promise
//    reaction captures when it is created and restores while it runs: an await, a then() callback
//    and everything they call see the value that was current where they were created. Node's
//    AsyncLocalStorage and workerd's are built on it; JavaScript cannot reach it. The context
//    method `exposeContinuationData(name)` defines, on that context's global object, a
//    non-enumerable property `name` holding `{ get, set }`: two native functions that read and
//    write the value. The sandbox takes them at boot and deletes the property before any worker
//    code runs (sandbox/async-context.ts), so guest code never holds them directly.
//
// And one so guest code yields the CPU to the thread that serves requests:
// 12. Every isolate runs on isolated-vm's own threads (the pool, and the one-off threads it starts
//    when the pool is busy); the serving thread only routes requests and writes responses. When a
//    tenant keeps those threads busy (a handler spinning to its CPU limit, an isolate rebuilt for
//    every request), the kernel shares the cores evenly between them and the serving thread, and
//    every other tenant's requests wait in line behind the attacker's time slices. Each of these
//    threads now lowers its own scheduling priority when it starts, by the nice value in the
//    environment variable CINDER_GUEST_THREAD_NICE (read once; unset or 0 changes nothing). A
//    thread may always lower its own priority, so no privilege is needed; the isolate timers'
//    threads (CPU and wall-clock limits) keep the process's priority.
// And one so what a guest hands the host is bounded where it is copied:
// 13. isolated-vm copies objects with V8's ValueSerializer into a buffer it grows without bound,
//    and the serializer runs getters and writes a string in full at every reference: a guest whose
//    getter (or Proxy trap) grows a value after Cinder's count (sandbox/wall-bytes.ts) could still
//    make the copy, and so the host, hold gigabytes. The isolate option `copyLimit` (bytes; 0 or
//    absent: none) bounds every serialized copy made in that isolate: the serializer's delegate
//    refuses to grow its buffer past it, V8 stops, and the copy throws a RangeError in the isolate
//    ("copyLimit: the copy would be more than N bytes", with a non-enumerable own property
//    `copyLimit`: N, which an error relayed from another isolate does not keep) before the host
//    allocates anything. V8
//    asks for max(needed, twice the buffer) + 64 bytes; a buffer asked past half the limit is given
//    the whole limit, so the doubling never refuses a copy that fits: a copy needing at most
//    limit - 64 bytes always passes, one needing more than the limit never does. Top-level strings,
//    ArrayBuffers and typed arrays are copied without the serializer, byte for byte as the isolate
//    holds them (its memory limit bounds them), and are not counted against it. One comparison per
//    buffer growth; a copy that never grows past half the limit is allocated as before.
// And one so work nobody is waiting for yields to work somebody is:
// 14. A second set of pool threads, the background class, whose threads lower their own priority
//    by CINDER_BACKGROUND_THREAD_NICE more than patch 12's (read once; capped at nice 19; unset or
//    0: the same priority as the others, so the class changes nothing). A thread may raise its nice
//    value but never lower it again, so one thread cannot move between classes: each class has its
//    own threads (as many as the first set), its own one-off threads when they are all busy, and its
//    own affinity bookkeeping per isolate. The isolate option `background` (new Isolate and
//    spawnIsolate) and the method `isolate.setBackground(bool)` choose the class the isolate's next
//    tasks are dispatched to; a task already running keeps its thread (and so does any work queued
//    while it runs, which the same task picks up). spawnIsolate builds the new isolate in a task of
//    the isolate it is called on, so that one's class decides where the deserializing runs.
// And one so a cold start waits for one round trip to the isolate's thread instead of two:
// 15. A module's namespace (`module.namespace`, a Reference) is available only once `evaluate` has
//    run, so the install that takes it could not be sent before the evaluation had come back. V8
//    hands the namespace out from the link on (its bindings uninitialized until evaluation), so it
//    is now kept when instantiation succeeds (and again after evaluate, as before): the loader can
//    queue the install right behind the evaluation, and the isolate's thread runs both in one go.
// Then the addon is built, and better-sqlite3 beside it, against the headers of the Node that runs
// this script (the project's Node, see scripts/project-node.mjs). package.json's allowScripts
// denies both their own install scripts: those would build for whichever Node headers npm's
// `nodedir` names (often the machine's older Node), and isolated-vm's would build unpatched
// source. Idempotent: a stamp file names the Node and patch level each addon was built for.
// Every edit that finds neither its target nor its result fails the install, loudly.
import { readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { reexec, runsOnRequiredNode } from './project-node.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
/** The patch level package.json names (cinder.isolatedVmPatchLevel). */
export const PATCH_LEVEL = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).cinder.isolatedVmPatchLevel;
/** The isolated-vm source tree being patched (set by applyPatches). */
let ivmDir;

/** Replace `from` with `to` in a file, once; fine if `to` (or `applied`, a marker for when a later
 *  patch rewrites this one's text) is already there; loud otherwise. */
function edit(file, from, to, applied = to) {
  const path = join(ivmDir, file);
  const text = readFileSync(path, 'utf8');
  if (text.includes(to) || text.includes(applied)) return false;
  if (!text.includes(from)) throw new Error(`isolated-vm ${file} has an unexpected shape; cannot patch (looked for: ${from.slice(0, 60)}...)`);
  writeFileSync(path, text.replace(from, to));
  return true;
}

function patchGyp() {
  const path = join(ivmDir, 'binding.gyp');
  const text = readFileSync(path, 'utf8');
  // The first `conditions` block holds only the Linux define; drop it and add the define to the
  // second block, which is the one gyp actually keeps.
  const first = /'conditions': \[\s*\[ 'OS == "linux"', \{ 'defines': \[ 'USE_CLOCK_THREAD_CPUTIME_ID' \] \} \],\s*\],\s*/;
  if (!first.test(text)) {
    if (text.includes(`[ 'OS == "linux"', { 'defines': [ 'USE_CLOCK_THREAD_CPUTIME_ID' ] } ],\n\t\t\t\t[ 'OS != "win"'`)) return false;
    throw new Error('isolated-vm binding.gyp has an unexpected shape; cannot patch (looked for the linux-only conditions block)');
  }
  const without = text.replace(first, '');
  const second = /('conditions': \[\s*)(\[ 'OS != "win"')/;
  if (!second.test(without)) throw new Error('isolated-vm binding.gyp has an unexpected shape; cannot patch');
  writeFileSync(path, without.replace(second, `$1[ 'OS == "linux"', { 'defines': [ 'USE_CLOCK_THREAD_CPUTIME_ID' ] } ],\n\t\t\t\t$2`));
  return true;
}

function patchRunningSlice() {
  let changed = false;
  changed = edit(
    'src/isolate/executor.h',
    '\t\t\t\tstd::chrono::time_point<std::chrono::steady_clock> steady_time;\n#endif',
    '\t\t\t\tstd::chrono::time_point<std::chrono::steady_clock> steady_time;\n\t\t\t\tclockid_t thread_clock{CLOCK_THREAD_CPUTIME_ID};\n#endif',
  ) || changed;
  changed = edit(
    'src/isolate/executor.cc',
    '#include <cstdio>\n',
    '#include <cstdio>\n#include <pthread.h>\n#include <ctime>\n',
  ) || changed;
  changed = edit(
    'src/isolate/executor.cc',
    '{\n\tcpu_timer_thread = this;\n',
    '{\n#if USE_CLOCK_THREAD_CPUTIME_ID\n\t// The clock of the thread this slice runs on, readable from the thread that asks for cpuTime.\n\tpthread_getcpuclockid(pthread_self(), &thread_clock);\n#endif\n\tcpu_timer_thread = this;\n',
  ) || changed;
  changed = edit(
    'src/isolate/executor.cc',
    '#if USE_CLOCK_THREAD_CPUTIME_ID\n\treturn std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - steady_time);\n#else',
    '#if USE_CLOCK_THREAD_CPUTIME_ID\n\ttimespec ts{};\n\tif (clock_gettime(thread_clock, &ts) != 0) {\n\t\treturn std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - steady_time);\n\t}\n\tTimePoint now{std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::seconds{ts.tv_sec} + std::chrono::nanoseconds{ts.tv_nsec})};\n\treturn std::chrono::duration_cast<std::chrono::nanoseconds>(now - time);\n#else',
  ) || changed;
  return changed;
}

function patchSnapshotContexts() {
  let changed = false;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\t\t\tLocal<Context> context = Context::New(isolate);\n\t\t\tsnapshot_creator.SetDefaultContext(context, {&SerializeInternalFieldsCallback, nullptr});\n',
    '\t\t\tLocal<Context> context = Context::New(isolate);\n\t\t\t// cinder: an empty default context (each isolate builds one for internal use); the prelude\n\t\t\t// is context #0, built only by createContext()\n\t\t\tsnapshot_creator.SetDefaultContext(Context::New(isolate), {&SerializeInternalFieldsCallback, nullptr});\n\t\t\tsnapshot_creator.AddContext(context, {&SerializeInternalFieldsCallback, nullptr});\n',
  ) || changed;
  changed = edit(
    'src/isolate/environment.cc',
    'auto IsolateEnvironment::NewContext() -> Local<Context> {\n\tauto context =\n\tContext::New(isolate, nullptr, {}, {}, &DeserializeInternalFieldsCallback);\n',
    'auto IsolateEnvironment::NewContext() -> Local<Context> {\n\t// cinder: contexts come from the snapshot\'s context #0 (the prelude) when there is one\n\tLocal<Context> context;\n\tif (!snapshot_blob_ptr || !Context::FromSnapshot(isolate, 0, {&DeserializeInternalFieldsCallback, nullptr}).ToLocal(&context)) {\n\t\tcontext = Context::New(isolate, nullptr, {}, {}, &DeserializeInternalFieldsCallback);\n\t}\n',
    '// cinder: contexts come from the snapshot',
  ) || changed;
  changed = edit(
    'src/isolate/environment.cc',
    '\t\tdefault_context.Reset(isolate, NewContext());\n',
    '\t\tdefault_context.Reset(isolate, NewDefaultContext());\n',
  ) || changed;
  changed = edit(
    'src/isolate/environment.cc',
    'auto IsolateEnvironment::NewContext() -> Local<Context> {\n',
    '// cinder: the isolate\'s internal context: the snapshot\'s default context, empty since patch 3\nauto IsolateEnvironment::NewDefaultContext() -> Local<Context> {\n\tauto context = Context::New(isolate, nullptr, {}, {}, &DeserializeInternalFieldsCallback);\n\tcontext->AllowCodeGenerationFromStrings(false);\n\treturn context;\n}\n\nauto IsolateEnvironment::NewContext() -> Local<Context> {\n',
    '// cinder: the isolate\'s internal context',
  ) || changed;
  changed = edit(
    'src/isolate/environment.h',
    '\t\tauto NewContext() -> v8::Local<v8::Context>;\n',
    '\t\tauto NewContext() -> v8::Local<v8::Context>;\n\t\tauto NewDefaultContext() -> v8::Local<v8::Context>;\n',
  ) || changed;
  return changed;
}

const SPAWN_RUNNER = `
/**
 * cinder: build a new isolate on isolated-vm's threads (see scripts/patch-isolated-vm.mjs, 4).
 * Phase 2 runs in a task of the isolate this is called on, so Executor::GetDefaultEnvironment()
 * names the Node thread that will own the new isolate, as it does for \`new Isolate\`.
 */
struct SpawnIsolateRunner : public ThreePhaseTask {
	size_t memory_limit = 128;
	shared_ptr<v8::BackingStore> snapshot_blob;
	size_t snapshot_blob_length = 0;
	RemoteHandle<Function> error_handler;
	shared_ptr<IsolateHolder> holder;

	explicit SpawnIsolateRunner(MaybeLocal<Object>& maybe_options) {
		Local<Object> options;
		if (!maybe_options.ToLocal(&options)) {
			return;
		}
		memory_limit = ReadOption<double>(options, "memoryLimit", 128);
		if (memory_limit < 8) {
			throw RuntimeGenericError("\`memoryLimit\` must be at least 8");
		}
		auto maybe_snapshot = ReadOption<MaybeLocal<Object>>(options, StringTable::Get().snapshot, {});
		Local<Object> snapshot_handle;
		if (maybe_snapshot.ToLocal(&snapshot_handle)) {
			auto* copy_handle = ClassHandle::Unwrap<ExternalCopyHandle>(snapshot_handle.As<Object>());
			if (copy_handle != nullptr) {
				ExternalCopyArrayBuffer* copy_ptr = dynamic_cast<ExternalCopyArrayBuffer*>(copy_handle->GetValue().get());
				if (copy_ptr != nullptr) {
					snapshot_blob = copy_ptr->Acquire();
					snapshot_blob_length = snapshot_blob->ByteLength();
				}
			}
			if (!snapshot_blob) {
				throw RuntimeTypeError("\`snapshot\` must be an ExternalCopy to ArrayBuffer");
			}
		}
		if (ReadOption<bool>(options, StringTable::Get().inspector, false)) {
			throw RuntimeTypeError("\`inspector\` is not available for spawnIsolate");
		}
		auto maybe_handler = ReadOption<MaybeLocal<Function>>(options, StringTable::Get().onCatastrophicError, {});
		Local<Function> error_handler_local;
		if (maybe_handler.ToLocal(&error_handler_local)) {
			error_handler = RemoteHandle<Function>{error_handler_local};
		}
	}

	void Phase2() final {
		holder = IsolateEnvironment::New(memory_limit, std::move(snapshot_blob), snapshot_blob_length);
		auto env = holder->GetIsolate();
		env->GetIsolate()->SetHostInitializeImportMetaObjectCallback(ModuleHandle::InitializeImportMeta);
		env->error_handler = std::move(error_handler);
	}

	auto Phase3() -> Local<Value> final {
		return ClassHandle::NewInstance<IsolateHandle>(std::move(holder));
	}
};

template <int async>
auto IsolateHandle::SpawnIsolate(MaybeLocal<Object> maybe_options) -> Local<Value> {
	return ThreePhaseTask::Run<async, SpawnIsolateRunner>(*isolate, maybe_options);
}

/**
 * Create a new v8::Context in this isolate and returns a ContextHandle
 */`;

function patchSpawnIsolate() {
  let changed = false;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\n/**\n * Create a new v8::Context in this isolate and returns a ContextHandle\n */',
    SPAWN_RUNNER,
    // patch 13 adds copyLimit to the runner
    'struct SpawnIsolateRunner : public ThreePhaseTask {',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\t\t"createContextSync", MemberFunction<decltype(&IsolateHandle::CreateContext<0>), &IsolateHandle::CreateContext<0>>{},\n',
    '\t\t"createContextSync", MemberFunction<decltype(&IsolateHandle::CreateContext<0>), &IsolateHandle::CreateContext<0>>{},\n\t\t"spawnIsolate", MemberFunction<decltype(&IsolateHandle::SpawnIsolate<1>), &IsolateHandle::SpawnIsolate<1>>{},\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.h',
    '\t\ttemplate <int async> auto CreateContext(v8::MaybeLocal<v8::Object> maybe_options) -> v8::Local<v8::Value>;\n',
    '\t\ttemplate <int async> auto CreateContext(v8::MaybeLocal<v8::Object> maybe_options) -> v8::Local<v8::Value>;\n\t\ttemplate <int async> auto SpawnIsolate(v8::MaybeLocal<v8::Object> maybe_options) -> v8::Local<v8::Value>;\n',
  ) || changed;
  return changed;
}

function patchModuleCodeCache() {
  return edit(
    'src/module/isolate_handle.cc',
    '\t\tauto module_handle = RunWithAnnotatedErrors(\n\t\t\t[&]() { return Unmaybe(ScriptCompiler::CompileModule(isolate, source.get())); }\n\t\t);\n',
    '\t\t// cinder: consume the code cache when one is given (patch 5); V8 ignores it otherwise\n\t\tauto compile_options = DidSupplyCachedData() ? ScriptCompiler::kConsumeCodeCache : ScriptCompiler::kNoCompileOptions;\n\t\tauto module_handle = RunWithAnnotatedErrors(\n\t\t\t[&]() { return Unmaybe(ScriptCompiler::CompileModule(isolate, source.get(), compile_options)); }\n\t\t);\n',
  );
}

function patchModuleCachedDataAfterRun() {
  let changed = false;
  changed = edit(
    'src/module/module_handle.h',
    '\tRemoteHandle<v8::Function> meta_callback;\n\texplicit ModuleInfo',
    '\tRemoteHandle<v8::Function> meta_callback;\n\t// cinder (patch 6): V8 hands this out only before evaluation, and the cache is wanted after\n\tRemoteHandle<v8::UnboundModuleScript> unbound_script;\n\texplicit ModuleInfo',
  ) || changed;
  changed = edit(
    'src/module/module_handle.h',
    '\t\tauto GetNamespace() -> v8::Local<v8::Value>;\n',
    '\t\tauto GetNamespace() -> v8::Local<v8::Value>;\n\t\tauto CreateCachedDataSync() -> v8::Local<v8::Value>;\n',
  ) || changed;
  changed = edit(
    'src/module/module_handle.cc',
    '#include "reference_handle.h"\n',
    '#include "reference_handle.h"\n#include "external_copy_handle.h"\n',
  ) || changed;
  changed = edit(
    'src/module/module_handle.cc',
    'ModuleInfo::ModuleInfo(Local<Module> handle) : identity_hash{handle->GetIdentityHash()}, handle{handle} {\n',
    'ModuleInfo::ModuleInfo(Local<Module> handle) : identity_hash{handle->GetIdentityHash()}, handle{handle}, unbound_script{handle->GetUnboundModuleScript()} {\n',
  ) || changed;
  changed = edit(
    'src/module/module_handle.cc',
    '\t\t"namespace", MemberAccessor<decltype(&ModuleHandle::GetNamespace), &ModuleHandle::GetNamespace>{},\n',
    '\t\t"namespace", MemberAccessor<decltype(&ModuleHandle::GetNamespace), &ModuleHandle::GetNamespace>{},\n\t\t"createCachedDataSync", MemberFunction<decltype(&ModuleHandle::CreateCachedDataSync), &ModuleHandle::CreateCachedDataSync>{},\n',
  ) || changed;
  changed = edit(
    'src/module/module_handle.cc',
    'auto ModuleHandle::GetNamespace() -> Local<Value> {\n',
    `// cinder (patch 6): a code cache made now also holds the functions compiled since the module was
// compiled (V8 compiles most functions lazily, on first call), so a later isolate need not compile them.
struct CreateCachedDataRunner : public ThreePhaseTask {
	shared_ptr<ModuleInfo> info;
	shared_ptr<ExternalCopyArrayBuffer> data;

	explicit CreateCachedDataRunner(shared_ptr<ModuleInfo> info) : info(std::move(info)) {}

	void Phase2() final {
		ScriptCompiler::CachedData* cached_data = ScriptCompiler::CreateCodeCache(info->unbound_script.Deref());
		if (cached_data == nullptr) {
			throw RuntimeGenericError("V8 could not create a code cache for this module");
		}
		data = std::make_shared<ExternalCopyArrayBuffer>((void*)cached_data->data, cached_data->length);
		cached_data->buffer_policy = ScriptCompiler::CachedData::BufferNotOwned;
		delete cached_data;
	}

	auto Phase3() -> Local<Value> final {
		return ClassHandle::NewInstance<ExternalCopyHandle>(std::move(data));
	}
};

auto ModuleHandle::CreateCachedDataSync() -> Local<Value> {
	auto info = GetInfo();
	return ThreePhaseTask::Run<0, CreateCachedDataRunner>(*info->handle.GetIsolateHolder(), info);
}

auto ModuleHandle::GetNamespace() -> Local<Value> {
`,
  ) || changed;
  return changed;
}

// Patch 7: see the header. Rewrites part of patch 3's text (hence the markers there).
function patchPreludeAsDefaultContext() {
  let changed = false;
  changed = edit(
    'src/isolate/environment.h',
    '\t\tv8::Persistent<v8::Context> default_context;\n',
    '\t\tv8::Persistent<v8::Context> default_context;\n\t\t// cinder (patch 7): the default context is the snapshot\'s prelude, not yet handed out by NewContext()\n\t\tbool default_context_unclaimed = false;\n',
  ) || changed;
  changed = edit(
    'src/isolate/environment.cc',
    'auto IsolateEnvironment::NewDefaultContext() -> Local<Context> {\n\tauto context = Context::New(isolate, nullptr, {}, {}, &DeserializeInternalFieldsCallback);\n',
    'auto IsolateEnvironment::NewDefaultContext() -> Local<Context> {\n' +
      '\t// cinder (patch 7): with a snapshot, the prelude\'s context (#0) is the internal context too, and\n' +
      '\t// the first createContext() hands it out: one context per isolate instead of two\n' +
      '\tLocal<Context> prelude;\n' +
      '\tif (snapshot_blob_ptr && Context::FromSnapshot(isolate, 0, {&DeserializeInternalFieldsCallback, nullptr}).ToLocal(&prelude)) {\n' +
      '\t\tprelude->AllowCodeGenerationFromStrings(false);\n' +
      '\t\tdefault_context_unclaimed = true;\n' +
      '\t\treturn prelude;\n' +
      '\t}\n' +
      '\tauto context = Context::New(isolate, nullptr, {}, {}, &DeserializeInternalFieldsCallback);\n',
  ) || changed;
  changed = edit(
    'src/isolate/environment.cc',
    'auto IsolateEnvironment::NewContext() -> Local<Context> {\n\t// cinder: contexts come from',
    'auto IsolateEnvironment::NewContext() -> Local<Context> {\n' +
      '\t// cinder (patch 7): the first context of a snapshot isolate is its default context. Not with an\n' +
      '\t// inspector, which registered the default context already and registers each new one.\n' +
      '\tif (default_context_unclaimed && inspector_agent == nullptr) {\n' +
      '\t\tdefault_context_unclaimed = false;\n' +
      '\t\treturn DefaultContext();\n' +
      '\t}\n' +
      '\t// cinder: contexts come from',
  ) || changed;
  return changed;
}

const DISALLOW_CODEGEN = `// cinder (patch 8): from now on eval() and new Function() throw an EvalError in this isolate
auto IsolateHandle::DisallowCodeGeneration() -> Local<Value> {
	auto env = this->isolate->GetIsolate();
	if (!env) {
		throw RuntimeGenericError("Isolate is disposed");
	}
	env->DisallowCodeGeneration();
	return Undefined(Isolate::GetCurrent());
}

/**
 * Timers
 */`;

// Patch 8: see the header.
function patchDisallowCodeGeneration() {
  let changed = false;
  changed = edit(
    'src/isolate/environment.h',
    '\t\tbool default_context_unclaimed = false;\n',
    '\t\tbool default_context_unclaimed = false;\n\t\t// cinder (patch 8): eval() and new Function() are allowed until the embedder says otherwise\n\t\tstd::atomic<bool> allow_code_generation{true};\n',
  ) || changed;
  changed = edit(
    'src/isolate/environment.h',
    '\t\tauto NewDefaultContext() -> v8::Local<v8::Context>;\n',
    '\t\tauto NewDefaultContext() -> v8::Local<v8::Context>;\n\t\tvoid DisallowCodeGeneration() { allow_code_generation = false; }\n',
  ) || changed;
  changed = edit(
    'src/isolate/environment.cc',
    '\tModifyCodeGenerationFromStringsResult result;\n\tif (source->IsString()',
    '\tModifyCodeGenerationFromStringsResult result;\n\t// cinder (patch 8): refused once the embedder disallowed it (V8 throws an EvalError)\n\tif (!that.allow_code_generation) {\n\t\treturn result;\n\t}\n\tif (source->IsString()',
  ) || changed;
  changed = edit('src/module/isolate_handle.cc', '/**\n * Timers\n */', DISALLOW_CODEGEN) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\t\t"getHeapStatisticsSync", MemberFunction<decltype(&IsolateHandle::GetHeapStatistics<0>), &IsolateHandle::GetHeapStatistics<0>>{},\n',
    '\t\t"getHeapStatisticsSync", MemberFunction<decltype(&IsolateHandle::GetHeapStatistics<0>), &IsolateHandle::GetHeapStatistics<0>>{},\n\t\t"disallowCodeGeneration", MemberFunction<decltype(&IsolateHandle::DisallowCodeGeneration), &IsolateHandle::DisallowCodeGeneration>{},\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.h',
    '\t\ttemplate <int async> auto GetHeapStatistics() -> v8::Local<v8::Value>;\n',
    '\t\ttemplate <int async> auto GetHeapStatistics() -> v8::Local<v8::Value>;\n\t\tauto DisallowCodeGeneration() -> v8::Local<v8::Value>;\n',
  ) || changed;
  return changed;
}

// Patch 9: see the header.
function patchExportLevel() {
  const path = join(ivmDir, 'src/module/isolate.cc');
  const text = readFileSync(path, 'utf8');
  const line = /v8_symbol\("cinderPatchLevel"\), v8_string\(("[^"]*")\)/;
  const found = text.match(line);
  if (found) {
    if (found[1] === JSON.stringify(PATCH_LEVEL)) return false;
    writeFileSync(path, text.replace(line, `v8_symbol("cinderPatchLevel"), v8_string(${JSON.stringify(PATCH_LEVEL)})`));
    return true;
  }
  return edit(
    'src/module/isolate.cc',
    '\tUnmaybe(target->Set(context, v8_symbol("ivm"), LibraryHandle::Get()));\n',
    `\tUnmaybe(target->Set(context, v8_symbol("ivm"), LibraryHandle::Get()));\n\t// cinder (patch 9): the patch level this addon was built at\n\tUnmaybe(target->Set(context, v8_symbol("cinderPatchLevel"), v8_string(${JSON.stringify(PATCH_LEVEL)})));\n`,
    '// cinder (patch 9)',
  );
}

// Patch 10: see the header.
function patchInspectorConnectLock() {
  return edit(
    'src/isolate/inspector.cc',
    '\tactive_sessions.write()->insert(&session);\n#if V8_AT_LEAST(10, 3, 118)\n',
    '\tactive_sessions.write()->insert(&session);\n\t// cinder (patch 10): V8 14 requires the isolate to be entered (and locked) to connect\n\tExecutor::Lock lock{isolate};\n#if V8_AT_LEAST(10, 3, 118)\n',
  );
}

const CONTINUATION_DATA = `// cinder (patch 11): the continuation-preserved embedder data, handed to the sandbox (see
// scripts/patch-isolated-vm.mjs). Each promise reaction captures it when created and restores it
// while it runs, so a value set here follows awaits and then() callbacks (AsyncLocalStorage).
namespace {

void CinderGetContinuationData(const FunctionCallbackInfo<Value>& info) {
	Local<Data> data = info.GetIsolate()->GetContinuationPreservedEmbedderDataV2();
	if (data.IsEmpty() || !data->IsValue()) {
		info.GetReturnValue().SetUndefined();
		return;
	}
	info.GetReturnValue().Set(data.As<Value>());
}

void CinderSetContinuationData(const FunctionCallbackInfo<Value>& info) {
	info.GetIsolate()->SetContinuationPreservedEmbedderDataV2(info[0]);
}

class ExposeContinuationDataRunner : public ThreePhaseTask {
	public:
		ExposeContinuationDataRunner(RemoteHandle<Context> context, Local<String> name) :
				context{std::move(context)}, name{*String::Utf8Value{Isolate::GetCurrent(), name}} {
			if (!this->context) {
				throw RuntimeGenericError("Context is released");
			}
		}

		void Phase2() final {
			auto* isolate = Isolate::GetCurrent();
			auto context = this->context.Deref();
			Context::Scope context_scope{context};
			Local<Object> pair = Object::New(isolate);
			Local<Function> get = Unmaybe(Function::New(context, CinderGetContinuationData, {}, 0, ConstructorBehavior::kThrow));
			Local<Function> set = Unmaybe(Function::New(context, CinderSetContinuationData, {}, 1, ConstructorBehavior::kThrow));
			Unmaybe(pair->CreateDataProperty(context, v8_string("get"), get));
			Unmaybe(pair->CreateDataProperty(context, v8_string("set"), set));
			Unmaybe(context->Global()->DefineOwnProperty(context, v8_string(name.c_str()), pair, PropertyAttribute::DontEnum));
		}

		auto Phase3() -> Local<Value> final {
			return Undefined(Isolate::GetCurrent());
		}

	private:
		RemoteHandle<Context> context;
		std::string name;
};

} // anonymous namespace

template <int Async>
auto ContextHandle::ExposeContinuationData(Local<String> name) -> Local<Value> {
	return ThreePhaseTask::Run<Async, ExposeContinuationDataRunner>(*context.GetIsolateHolder(), context, name);
}

} // namespace ivm
`;

// Patch 11: see the header.
function patchContinuationData() {
  let changed = false;
  changed = edit(
    'src/module/context_handle.h',
    '\t\tauto Release() -> v8::Local<v8::Value>;\n',
    '\t\tauto Release() -> v8::Local<v8::Value>;\n\t\ttemplate <int Async> auto ExposeContinuationData(v8::Local<v8::String> name) -> v8::Local<v8::Value>;\n',
  ) || changed;
  changed = edit(
    'src/module/context_handle.cc',
    '#include "transferable.h"\n',
    '#include "transferable.h"\n#include <string>\n',
  ) || changed;
  changed = edit(
    'src/module/context_handle.cc',
    '\t\t"release", MemberFunction<decltype(&ContextHandle::Release), &ContextHandle::Release>{}\n',
    '\t\t"release", MemberFunction<decltype(&ContextHandle::Release), &ContextHandle::Release>{},\n' +
      '\t\t"exposeContinuationData", MemberFunction<decltype(&ContextHandle::ExposeContinuationData<1>), &ContextHandle::ExposeContinuationData<1>>{},\n' +
      '\t\t"exposeContinuationDataSync", MemberFunction<decltype(&ContextHandle::ExposeContinuationData<0>), &ContextHandle::ExposeContinuationData<0>>{}\n',
  ) || changed;
  changed = edit('src/module/context_handle.cc', '\n} // namespace ivm\n', '\n' + CONTINUATION_DATA, '// cinder (patch 11)') || changed;
  return changed;
}

// Patch 12: see the header.
const GUEST_THREAD_NICE = `// cinder (patch 12): isolate threads run below the serving thread (see CINDER_GUEST_THREAD_NICE)
#include <cstdlib>
#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
namespace {
void lower_guest_thread_priority() {
#ifdef __linux__
	static const int nice = [] {
		const char* value = std::getenv("CINDER_GUEST_THREAD_NICE");
		const int parsed = value == nullptr ? 0 : std::atoi(value);
		return parsed < 0 ? 0 : (parsed > 19 ? 19 : parsed);
	}();
	if (nice == 0) return;
	// PRIO_PROCESS with a thread id sets that one thread's nice value (Linux); relative to what it
	// inherited, so a process already started niced goes lower still.
	const auto tid = static_cast<id_t>(syscall(SYS_gettid));
	const int current = getpriority(PRIO_PROCESS, tid);
	setpriority(PRIO_PROCESS, tid, current + nice > 19 ? 19 : current + nice);
#endif
}
} // namespace
`;

function patchGuestThreadNice() {
  let changed = false;
  changed = edit('src/lib/thread_pool.cc', '#include <functional>\n', '#include <functional>\n' + GUEST_THREAD_NICE, '// cinder (patch 12)') || changed;
  changed = edit(
    'src/lib/thread_pool.cc',
    'std::thread tmp_thread{[=]() { entry(false, param); }};',
    'std::thread tmp_thread{[=]() { lower_guest_thread_priority(); entry(false, param); }};',
    'lower_thread_priority(in_background); entry(false, param);', // patch 14 rewrites it
  ) || changed;
  changed = edit(
    'src/lib/thread_pool.cc',
    '  data.thread = std::thread{[this, &data]() {\n    std::unique_lock<std::mutex> lock{mutex};',
    '  data.thread = std::thread{[this, &data]() {\n    lower_guest_thread_priority();\n    std::unique_lock<std::mutex> lock{mutex};',
    '  data.thread = std::thread{[this, &data]() {\n    lower_thread_priority(background);\n', // patch 14 rewrites it
  ) || changed;
  return changed;
}

// Patch 13: see the header.
const READ_COPY_LIMIT = `// cinder (patch 13): the isolate option \`copyLimit\`, bytes one serialized copy made in the isolate
// may take (0: no limit)
static auto ReadCopyLimit(Local<Object> options) -> size_t {
	double limit = ReadOption<double>(options, "copyLimit", 0);
	if (!(limit == 0 || (limit >= 1024 && limit <= 9007199254740991.0))) {
		throw RuntimeRangeError("\`copyLimit\` must be 0 or a number of bytes of at least 1024");
	}
	return static_cast<size_t>(limit);
}

/**
 * Create a new Isolate. It all starts here!
 */`;

const COPY_LIMIT_DELEGATE = `void SerializerDelegate::ThrowDataCloneError(Local<String> message) {
	auto* isolate = Isolate::GetCurrent();
	// cinder (patch 13): V8 says "out of memory" when the buffer was refused; say which limit it was
	if (over_copy_limit) {
		std::string text = "copyLimit: the copy would be more than " + std::to_string(copy_limit) + " bytes";
		auto error = Exception::RangeError(String::NewFromUtf8(isolate, text.c_str()).ToLocalChecked()).As<Object>();
		// Only this refusal carries the property (an error relayed from elsewhere keeps the message, not
		// this): how the embedder tells its own copy's refusal from one it was handed.
		bool marked = error->DefineOwnProperty(isolate->GetCurrentContext(), String::NewFromUtf8Literal(isolate, "copyLimit"), Number::New(isolate, static_cast<double>(copy_limit)), PropertyAttribute::DontEnum).FromMaybe(false);
		static_cast<void>(marked);
		isolate->ThrowException(error);
		return;
	}
	isolate->ThrowException(Exception::TypeError(message));
}

// cinder (patch 13): V8 asks for max(needed, 2 * capacity) + 64 bytes. Past the limit: refused (V8
// then stops and throws). Past half of it: the whole limit, so that a later doubling cannot refuse a
// copy that still fits.
auto SerializerDelegate::ReallocateBufferMemory(void* old_buffer, size_t size, size_t* actual_size) -> void* {
	if (copy_limit != 0) {
		if (size > copy_limit) {
			over_copy_limit = true;
			return nullptr;
		}
		if (size > (copy_limit - 64) / 2) {
			size = copy_limit;
		}
	}
	void* buffer = std::realloc(old_buffer, size);
	if (buffer != nullptr) {
		*actual_size = size;
	}
	return buffer;
}`;

function patchCopyLimit() {
  let changed = false;
  changed = edit(
    'src/isolate/environment.h',
    '\t\tstd::atomic<bool> terminated { false };\n',
    '\t\tstd::atomic<bool> terminated { false };\n\t\t// cinder (patch 13): bytes one serialized copy made in this isolate may take; 0: no limit\n\t\tsize_t copy_limit = 0;\n',
  ) || changed;
  changed = edit(
    'src/external_copy/serializer.h',
    '\t\tvoid SetSerializer(v8::ValueSerializer* serializer) { this->serializer = serializer; }\n\t\tvoid ThrowDataCloneError(v8::Local<v8::String> message) final;\n',
    '\t\tvoid SetSerializer(v8::ValueSerializer* serializer) { this->serializer = serializer; }\n\t\tvoid SetCopyLimit(size_t limit) { copy_limit = limit; }\n\t\tvoid ThrowDataCloneError(v8::Local<v8::String> message) final;\n\t\tauto ReallocateBufferMemory(void* old_buffer, size_t size, size_t* actual_size) -> void* final;\n',
  ) || changed;
  changed = edit(
    'src/external_copy/serializer.h',
    '\tprivate:\n\t\tv8::ValueSerializer* serializer = nullptr;\n};\n\nclass DeserializerDelegate',
    '\tprivate:\n\t\tv8::ValueSerializer* serializer = nullptr;\n\t\t// cinder (patch 13)\n\t\tsize_t copy_limit = 0;\n\t\tbool over_copy_limit = false;\n};\n\nclass DeserializerDelegate',
  ) || changed;
  changed = edit(
    'src/external_copy/serializer.h',
    '\t\t\tdelegate.SetSerializer(&serializer);\n\n\t\t\t// Run serialization\n',
    '\t\t\tdelegate.SetSerializer(&serializer);\n\t\t\t// cinder (patch 13): the copy limit of the isolate whose value this is\n\t\t\tauto* environment = Executor::GetCurrentEnvironment();\n\t\t\tdelegate.SetCopyLimit(environment == nullptr ? 0 : environment->copy_limit);\n\n\t\t\t// Run serialization\n',
  ) || changed;
  changed = edit(
    'src/external_copy/serializer_nortti.cc',
    '#include "module/transferable.h"\n',
    '#include "module/transferable.h"\n#include <cstdlib>\n#include <string>\n',
  ) || changed;
  changed = edit(
    'src/external_copy/serializer_nortti.cc',
    'void SerializerDelegate::ThrowDataCloneError(Local<String> message) {\n\tIsolate::GetCurrent()->ThrowException(Exception::TypeError(message));\n}',
    COPY_LIMIT_DELEGATE,
  ) || changed;
  // The option, on new Isolate and on spawnIsolate (patch 4).
  changed = edit('src/module/isolate_handle.cc', '/**\n * Create a new Isolate. It all starts here!\n */', READ_COPY_LIMIT, '// cinder (patch 13): the isolate option') || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\tsize_t memory_limit = 128;\n\tbool inspector = false;\n',
    '\tsize_t memory_limit = 128;\n\tsize_t copy_limit = 0;\n\tbool inspector = false;\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\t\tinspector = ReadOption<bool>(options, StringTable::Get().inspector, false);\n',
    '\t\tinspector = ReadOption<bool>(options, StringTable::Get().inspector, false);\n\t\tcopy_limit = ReadCopyLimit(options);\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\tenv->error_handler = error_handler;\n\tenv->unhandled_rejection_handler = rejection_handler;\n',
    '\tenv->copy_limit = copy_limit;\n\tenv->error_handler = error_handler;\n\tenv->unhandled_rejection_handler = rejection_handler;\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\tsize_t memory_limit = 128;\n\tshared_ptr<v8::BackingStore> snapshot_blob;\n',
    '\tsize_t memory_limit = 128;\n\tsize_t copy_limit = 0;\n\tshared_ptr<v8::BackingStore> snapshot_blob;\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\t\t\tthrow RuntimeTypeError("`inspector` is not available for spawnIsolate");\n\t\t}\n',
    '\t\t\tthrow RuntimeTypeError("`inspector` is not available for spawnIsolate");\n\t\t}\n\t\tcopy_limit = ReadCopyLimit(options);\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\t\tenv->error_handler = std::move(error_handler);\n\t}\n',
    '\t\tenv->copy_limit = copy_limit;\n\t\tenv->error_handler = std::move(error_handler);\n\t}\n',
  ) || changed;
  return changed;
}

// Patch 14: see the header.
const THREAD_PRIORITY = `namespace {
// cinder (patch 14): the background class's threads go CINDER_BACKGROUND_THREAD_NICE lower still
void lower_thread_priority(bool background) {
#ifdef __linux__
	static const int guest = [] {
		const char* value = std::getenv("CINDER_GUEST_THREAD_NICE");
		const int parsed = value == nullptr ? 0 : std::atoi(value);
		return parsed < 0 ? 0 : (parsed > 19 ? 19 : parsed);
	}();
	static const int extra = [] {
		const char* value = std::getenv("CINDER_BACKGROUND_THREAD_NICE");
		const int parsed = value == nullptr ? 0 : std::atoi(value);
		return parsed < 0 ? 0 : (parsed > 19 ? 19 : parsed);
	}();
	const int nice = guest + (background ? extra : 0);
	if (nice == 0) return;
	const auto tid = static_cast<id_t>(syscall(SYS_gettid));
	const int current = getpriority(PRIO_PROCESS, tid);
	setpriority(PRIO_PROCESS, tid, current + nice > 19 ? 19 : current + nice);
#else
	static_cast<void>(background);
#endif
}
} // namespace
`;

function patchBackgroundThreads() {
  let changed = false;
  changed = edit(
    'src/lib/thread_pool.h',
    '\t\texplicit thread_pool_t(size_t desired_size) noexcept : desired_size{desired_size} {}\n',
    '\t\t// cinder (patch 14): `background`: this set\'s threads run CINDER_BACKGROUND_THREAD_NICE lower\n\t\texplicit thread_pool_t(size_t desired_size, bool background = false) noexcept : desired_size{desired_size}, background{background} {}\n',
  ) || changed;
  changed = edit(
    'src/lib/thread_pool.h',
    '\t\tsize_t desired_size;\n\t\tsize_t rr = 0;\n',
    '\t\tsize_t desired_size;\n\t\tbool background = false;\n\t\tsize_t rr = 0;\n',
  ) || changed;
  changed = edit('src/lib/thread_pool.cc', '} // namespace\n\nnamespace ivm {\n', '} // namespace\n\n' + THREAD_PRIORITY + '\nnamespace ivm {\n', '// cinder (patch 14): the background class') || changed;
  changed = edit(
    'src/lib/thread_pool.cc',
    'std::thread tmp_thread{[=]() { lower_guest_thread_priority(); entry(false, param); }};',
    'const bool in_background = background;\n\t\t\t\tstd::thread tmp_thread{[=]() { lower_thread_priority(in_background); entry(false, param); }};',
  ) || changed;
  changed = edit(
    'src/lib/thread_pool.cc',
    '  data.thread = std::thread{[this, &data]() {\n    lower_guest_thread_priority();\n',
    '  data.thread = std::thread{[this, &data]() {\n    lower_thread_priority(background);\n',
  ) || changed;
  // patch 12's function is now unused; keep the compiler quiet about it
  changed = edit('src/lib/thread_pool.cc', 'namespace {\nvoid lower_guest_thread_priority() {', 'namespace {\n[[maybe_unused]] void lower_guest_thread_priority() {') || changed;
  changed = edit(
    'src/isolate/scheduler.cc',
    '\tthread_pool_t thread_pool{std::thread::hardware_concurrency() + 1};\n',
    '\tthread_pool_t thread_pool{std::thread::hardware_concurrency() + 1};\n\t// cinder (patch 14): the background class\n\tthread_pool_t background_thread_pool{std::thread::hardware_concurrency() + 1, true};\n',
  ) || changed;
  changed = edit(
    'src/isolate/scheduler.cc',
    'void IsolatedScheduler::SendWake() {\n\tthread_pool.exec(thread_affinity, [](bool pool_thread, void* param) {',
    'void IsolatedScheduler::SendWake() {\n\t// cinder (patch 14): the class the isolate is in now; a task already running keeps its thread\n\tconst bool background = env.background.load();\n\t(background ? background_thread_pool : thread_pool).exec(background ? background_affinity : thread_affinity, [](bool pool_thread, void* param) {',
  ) || changed;
  changed = edit(
    'src/isolate/scheduler.h',
    '\t\tthread_pool_t::affinity_t thread_affinity;\n',
    '\t\tthread_pool_t::affinity_t thread_affinity;\n\t\t// cinder (patch 14): the background class\'s threads this isolate ran on\n\t\tthread_pool_t::affinity_t background_affinity;\n',
  ) || changed;
  changed = edit(
    'src/isolate/environment.h',
    '\t\tsize_t copy_limit = 0;\n',
    '\t\tsize_t copy_limit = 0;\n\t\t// cinder (patch 14): whether this isolate\'s next tasks go to the background class\'s threads\n\t\tstd::atomic<bool> background{false};\n',
  ) || changed;
  // The option, on new Isolate and on spawnIsolate.
  changed = edit(
    'src/module/isolate_handle.cc',
    '\tsize_t memory_limit = 128;\n\tsize_t copy_limit = 0;\n\tbool inspector = false;\n',
    '\tbool background = false; // cinder (patch 14)\n\tsize_t memory_limit = 128;\n\tsize_t copy_limit = 0;\n\tbool inspector = false;\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\t\tinspector = ReadOption<bool>(options, StringTable::Get().inspector, false);\n\t\tcopy_limit = ReadCopyLimit(options);\n',
    '\t\tinspector = ReadOption<bool>(options, StringTable::Get().inspector, false);\n\t\tcopy_limit = ReadCopyLimit(options);\n\t\tbackground = ReadOption<bool>(options, "background", false);\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\tenv->copy_limit = copy_limit;\n\tenv->error_handler = error_handler;\n',
    '\tenv->background = background;\n\tenv->copy_limit = copy_limit;\n\tenv->error_handler = error_handler;\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\tsize_t memory_limit = 128;\n\tsize_t copy_limit = 0;\n\tshared_ptr<v8::BackingStore> snapshot_blob;\n',
    '\tbool background = false; // cinder (patch 14)\n\tsize_t memory_limit = 128;\n\tsize_t copy_limit = 0;\n\tshared_ptr<v8::BackingStore> snapshot_blob;\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\t\t\tthrow RuntimeTypeError("`inspector` is not available for spawnIsolate");\n\t\t}\n\t\tcopy_limit = ReadCopyLimit(options);\n',
    '\t\t\tthrow RuntimeTypeError("`inspector` is not available for spawnIsolate");\n\t\t}\n\t\tcopy_limit = ReadCopyLimit(options);\n\t\tbackground = ReadOption<bool>(options, "background", false);\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\t\tenv->copy_limit = copy_limit;\n\t\tenv->error_handler = std::move(error_handler);\n',
    '\t\tenv->background = background;\n\t\tenv->copy_limit = copy_limit;\n\t\tenv->error_handler = std::move(error_handler);\n',
  ) || changed;
  // The method.
  changed = edit(
    'src/module/isolate_handle.cc',
    '// cinder (patch 8): from now on eval() and new Function() throw',
    '// cinder (patch 14): the class (background or not) of the isolate\'s next tasks\nauto IsolateHandle::SetBackground(bool background) -> Local<Value> {\n\tauto env = this->isolate->GetIsolate();\n\tif (!env) {\n\t\tthrow RuntimeGenericError("Isolate is disposed");\n\t}\n\tenv->background = background;\n\treturn Undefined(Isolate::GetCurrent());\n}\n\n// cinder (patch 8): from now on eval() and new Function() throw',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.cc',
    '\t\t"disallowCodeGeneration", MemberFunction<decltype(&IsolateHandle::DisallowCodeGeneration), &IsolateHandle::DisallowCodeGeneration>{},\n',
    '\t\t"disallowCodeGeneration", MemberFunction<decltype(&IsolateHandle::DisallowCodeGeneration), &IsolateHandle::DisallowCodeGeneration>{},\n\t\t"setBackground", MemberFunction<decltype(&IsolateHandle::SetBackground), &IsolateHandle::SetBackground>{},\n',
  ) || changed;
  changed = edit(
    'src/module/isolate_handle.h',
    '\t\tauto DisallowCodeGeneration() -> v8::Local<v8::Value>;\n',
    '\t\tauto DisallowCodeGeneration() -> v8::Local<v8::Value>;\n\t\tauto SetBackground(bool background) -> v8::Local<v8::Value>;\n',
  ) || changed;
  return changed;
}

function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const candidates = [];
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push('/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('node-gyp not found; run this script through npm');
  return found;
}

/** A directory holding include/node headers of exactly the Node that runs us: its own install
 *  prefix (Node's npm packages and official builds ship them), else npm's `nodedir` if it is the
 *  same version. Null: node-gyp would have to download them. */
function headersDir() {
  const candidates = [join(dirname(process.execPath), '..'), process.env.npm_config_nodedir].filter(Boolean);
  return candidates.find((dir) => {
    const header = join(dir, 'include', 'node', 'node_version.h');
    if (!existsSync(header)) return false;
    const text = readFileSync(header, 'utf8');
    const part = (name) => text.match(new RegExp(`#define ${name} (\\d+)`))?.[1];
    return `${part('NODE_MAJOR_VERSION')}.${part('NODE_MINOR_VERSION')}.${part('NODE_PATCH_VERSION')}` === process.versions.node;
  }) ?? null;
}

/** Build one addon with node-gyp unless its stamp says it was built for this Node and `level`. */
function build(name, dir, level, addon) {
  const stamp = join(dir, 'build', '.cinder-built');
  const want = `${level} node-${process.versions.node}`;
  if (existsSync(join(dir, 'build', 'Release', addon)) && existsSync(stamp) && readFileSync(stamp, 'utf8').startsWith(want + ' ')) {
    console.log(`[cinder] ${name} already built (${want})`);
    return;
  }
  console.log(`[cinder] building ${name} for Node ${process.versions.node} (about a minute)...`);
  const args = [findNodeGyp(), 'rebuild', '--release', '-j', 'max'];
  // node-gyp lets npm's environment (npm_config_nodedir) override its own --nodedir flag.
  const env = { ...process.env };
  delete env.npm_config_nodedir;
  const nodedir = headersDir();
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  execFileSync(process.execPath, args, { cwd: dir, stdio: 'inherit', env });
  writeFileSync(stamp, `${want} ${new Date().toISOString()}\n`);
  console.log(`[cinder] ${name} built`);
}

// Patch 15: see the header.
function patchNamespaceAtLink() {
  return edit(
    'src/module/module_handle.cc',
    '\t\tif (try_catch.HasCaught()) {\n\t\t\ttry_catch.ReThrow();\n\t\t\tthrow RuntimeError();\n\t\t}\n\t}\n\n\tauto Phase3() -> Local<Value> final {\n\t\tClassHandle::Unwrap<ModuleLinker>',
    '\t\tif (try_catch.HasCaught()) {\n\t\t\ttry_catch.ReThrow();\n\t\t\tthrow RuntimeError();\n\t\t}\n\t\t// cinder (patch 15): V8 hands out the namespace of a linked module (its bindings uninitialized\n\t\t// until evaluation), so a call that takes it can be queued behind `evaluate`\n\t\tContext::Scope context_scope{context_local};\n\t\tinfo->global_namespace = RemoteHandle<Value>(mod->GetModuleNamespace());\n\t}\n\n\tauto Phase3() -> Local<Value> final {\n\t\tClassHandle::Unwrap<ModuleLinker>',
    '// cinder (patch 15)',
  );
}

/** Apply every patch to the isolated-vm source tree in `dir`; true if any file changed. Throws,
 *  naming the file, when a patch finds neither its target nor its result. */
export function applyPatches(dir) {
  ivmDir = dir;
  const results = [patchGyp(), patchRunningSlice(), patchSnapshotContexts(), patchSpawnIsolate(), patchModuleCodeCache(), patchModuleCachedDataAfterRun(), patchPreludeAsDefaultContext(), patchDisallowCodeGeneration(), patchExportLevel(), patchInspectorConnectLock(), patchContinuationData(), patchGuestThreadNice(), patchCopyLimit(), patchBackgroundThreads(), patchNamespaceAtLink()];
  return results.some(Boolean);
}

function main() {
  const dir = dirname(require.resolve('isolated-vm/package.json'));
  applyPatches(dir);
  // The package's prebuilt binaries are unpatched; node-gyp-build would load one if our build were missing.
  rmSync(join(dir, 'prebuilds'), { recursive: true, force: true });
  build('isolated-vm', dir, PATCH_LEVEL, 'isolated_vm.node');
  build('better-sqlite3', dirname(require.resolve('better-sqlite3/package.json')), 'better-sqlite3', 'better_sqlite3.node');
}

// Run as a script (npm's prepare step): build for the project's Node, whatever Node started it.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (!runsOnRequiredNode()) reexec([], fileURLToPath(import.meta.url), process.argv.slice(2));
  else main();
}
