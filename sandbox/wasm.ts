// WebAssembly memory under the worker's memory limit. V8 keeps a wasm memory's pages outside the
// JS heap, and isolated-vm's heap statistics do not see them (externally_allocated_size stays 0),
// so the isolate's memoryLimit alone let a worker hold 400 MB of wasm memory at the 128 MB default.
// Here every memory a guest can make is known to the sandbox:
// - `new WebAssembly.Memory(...)`: its maximum is clamped to the limit (so neither `grow`, the
//   `memory.grow` instruction nor a resizable buffer can take it past it) and it is tracked;
// - modules (`new WebAssembly.Module`, `compile`, `instantiate` of bytes) are read before V8
//   compiles them: each memory the module defines gets its maximum clamped to the limit in the
//   bytes V8 compiles (the limits are rewritten in the memory section); a defined memory the module
//   does not export is charged at that maximum for as long as the instance lives (a module whose
//   unexported memory has no maximum within what is left of the limit is refused at
//   instantiation); exported ones are tracked like constructed memories.
// The tracked memories' current sizes plus the charges are checked at every construction, grow and
// instantiation (a RangeError naming the memory limit), and reported to the host after each event,
// which adds the JS heap and ends the invocation with the memory limit's 503 when over.
// The WebAssembly originals are captured at boot (below) and held in this closure; user code sees
// only the wrappers and cannot reach the originals (the prototypes' `constructor` point to the
// wrappers, the wrappers' properties are not writable).
import { intrinsics } from './api/brand.js';

const WASM_PAGE = 65536;
const LIMIT_MESSAGE = 'exceeded memory limit';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
// Captured at boot (installWasmLimits), not when the bundle is evaluated: V8 makes the
// WebAssembly namespace afresh in a context deserialized from a snapshot.
let WA: Any;
let OriginalMemory: Any;
let OriginalModule: Any;
let OriginalInstance: Any;
let originalValidate: Any;
let originalGrow: Any;
let memoryBuffer: Any;
let instanceExports: Any;
let CompileErrorCtor: Any;
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const defineProperty = Object.defineProperty;
const abByteLength: Any = intrinsics.bufferByteLength;
const sabByteLength: Any = intrinsics.sharedBufferByteLength;
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
const taBuffer: Any = intrinsics.typedArrayBuffer;
const taByteOffset: Any = getOwnPropertyDescriptor(typedArrayProto, 'byteOffset')!.get;
const taByteLength: Any = getOwnPropertyDescriptor(typedArrayProto, 'byteLength')!.get;
const dvBuffer: Any = intrinsics.dataViewBuffer;
const dvByteOffset: Any = getOwnPropertyDescriptor(DataView.prototype, 'byteOffset')!.get;
const dvByteLength: Any = getOwnPropertyDescriptor(DataView.prototype, 'byteLength')!.get;
const U8 = Uint8Array;
const u8Set = Uint8Array.prototype.set;
const apply: (fn: Any, self: Any, args: Any[]) => Any = Reflect.apply;
const construct: (fn: Any, args: Any[], target?: Any) => Any = Reflect.construct;
const promiseThen = Promise.prototype.then;
const RangeErrorCtor = RangeError;
const TypeErrorCtor = TypeError;
const WeakRefCtor = WeakRef;
const weakRefDeref = WeakRef.prototype.deref;
const WeakMapCtor = WeakMap;
const weakMapGet = WeakMap.prototype.get;
const weakMapSet = WeakMap.prototype.set;
const SetCtor = Set;
const setAdd = Set.prototype.add;
const setDelete = Set.prototype.delete;
const setValues = Set.prototype.values;
const setIteratorNext = Object.getPrototypeOf(new Set().values()).next;
const NumberCtor = Number;
const mathFloor = Math.floor;
const mathMin = Math.min;
const isFiniteNumber = Number.isFinite;
const objectKeys = Object.keys;
const isView = ArrayBuffer.isView;
const setHas = Set.prototype.has;
const PromiseCtor = Promise;
const setPrototypeOf = Object.setPrototypeOf;
const getPrototypeOf = Object.getPrototypeOf;

/** A module this reader cannot read (not user-reachable, so `instanceof` is safe). */
class ReadError extends Error {}

let limitBytes = 128 * 1024 * 1024;


const limitPages = () => mathFloor(limitBytes / WASM_PAGE);

/** Memories (constructed or exported) as weak references; charges of unexported memories by instance. */
const memories = new SetCtor<WeakRef<object>>();
const charges = new SetCtor<{ instance: WeakRef<object>; bytes: number }>();

function memoryBytes(memory: object): number {
  const buffer = apply(memoryBuffer, memory, []);
  try {
    return apply(abByteLength, buffer, []);
  } catch {
    return sabByteLength ? apply(sabByteLength, buffer, []) : 0;
  }
}

/** The set's values in an array, read with the captured iterator (guest code may have replaced
 *  the iterator protocol's methods on the shared prototypes). */
function each<T>(set: Set<T>): T[] {
  const it = apply(setValues, set, []);
  const out: T[] = [];
  for (;;) {
    const step = apply(setIteratorNext, it, []) as IteratorResult<T>;
    if (step.done) return out;
    out[out.length] = step.value;
  }
}

/** Bytes of WebAssembly memory the isolate holds now (tracked memories' sizes plus charges). */
export function wasmMemoryBytes(): number {
  // Asked after every event: a worker that never made a memory pays two size reads.
  if (apply(intrinsics.setSize, memories, []) === 0 && apply(intrinsics.setSize, charges, []) === 0) return 0;
  let total = 0;
  const refs = each(memories);
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i];
    const memory = apply(weakRefDeref, ref, []) as object | undefined;
    if (memory === undefined) apply(setDelete, memories, [ref]);
    else total += memoryBytes(memory);
  }
  const held = each(charges);
  for (let i = 0; i < held.length; i++) {
    const charge = held[i];
    if (apply(weakRefDeref, charge.instance, []) === undefined) apply(setDelete, charges, [charge]);
    else total += charge.bytes;
  }
  return total;
}

function refuse(what: string, bytes: number): never {
  const mb = (n: number) => `${Math.round((n / 1048576) * 10) / 10} MB`;
  throw new RangeErrorCtor(`${LIMIT_MESSAGE}: ${what} needs ${mb(bytes)} of WebAssembly memory with ${mb(wasmMemoryBytes())} already in use; the worker's memory limit is ${mb(limitBytes)} (WebAssembly memory included)`);
}

function check(what: string, more: number): void {
  if (wasmMemoryBytes() + more > limitBytes) refuse(what, more);
}

function track(memory: object): void {
  const refs = each(memories);
  for (let i = 0; i < refs.length; i++) if (apply(weakRefDeref, refs[i], []) === memory) return;
  apply(setAdd, memories, [new WeakRefCtor(memory)]);
}

function isMemory(value: unknown): value is object {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  try {
    apply(memoryBuffer, value, []);
    return true;
  } catch {
    return false;
  }
}

// --- reading and rewriting a module's memory declarations ------------------------------------

interface ModuleMemories {
  /** the bytes V8 compiles: the input with every defined memory's maximum clamped */
  bytes: Uint8Array;
  /** initial bytes of the memories the module defines */
  initialBytes: number;
  /** maximum bytes (clamped) of the defined memories it does not export */
  unexportedBytes: number;
  /** whether one of its unexported memories had no maximum, or one over the limit */
  unboundedUnexported: boolean;
}

const moduleInfo = new WeakMapCtor<object, ModuleMemories>();

function copyBytes(source: unknown): Uint8Array {
  let buffer: Any;
  let offset = 0;
  let length: number;
  if (isView(source)) {
    try {
      buffer = apply(taBuffer, source, []);
      offset = apply(taByteOffset, source, []);
      length = apply(taByteLength, source, []);
    } catch {
      buffer = apply(dvBuffer, source, []);
      offset = apply(dvByteOffset, source, []);
      length = apply(dvByteLength, source, []);
    }
  } else {
    buffer = source;
    try {
      length = apply(abByteLength, source, []);
    } catch {
      try {
        length = sabByteLength ? apply(sabByteLength, source, []) : NaN;
      } catch {
        throw new TypeErrorCtor('WebAssembly: the module bytes must be an ArrayBuffer or an ArrayBuffer view');
      }
    }
  }
  const out = new U8(length);
  apply(u8Set, out, [new U8(buffer, offset, length)]);
  return out;
}

class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array, readonly end: number) {}
  byte(): number {
    if (this.pos >= this.end) throw new ReadError('truncated');
    return this.b[this.pos++];
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.byte();
      result += (byte & 0x7f) * 2 ** shift;
      if (!(byte & 0x80)) return result;
      shift += 7;
      if (shift > 63) throw new ReadError('bad LEB');
    }
  }
  s33(): void {
    for (let i = 0; i < 10; i++) if (!(this.byte() & 0x80)) return;
    throw new ReadError('bad LEB');
  }
  skip(n: number): void {
    if (this.pos + n > this.end) throw new ReadError('truncated');
    this.pos += n;
  }
  name(): void {
    this.skip(this.u32());
  }
  limits(): { flags: number; min: number; max: number | undefined } {
    const flags = this.byte();
    const min = this.u32();
    const max = flags & 1 ? this.u32() : undefined;
    return { flags, min, max };
  }
  refOrValType(): void {
    const t = this.byte();
    if (t === 0x63 || t === 0x64) this.s33();
  }
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = mathFloor(n / 128);
    if (n > 0) byte |= 0x80;
    out[out.length] = byte;
  } while (n > 0);
  return out;
}

/** Read the import, memory and export sections; rewrite the memory section's maxima. Throws a
 *  CompileError-like message for a module it cannot read (V8 would refuse most of those anyway). */
function readModule(bytes: Uint8Array): ModuleMemories {
  const pages = limitPages();
  if (bytes.length < 8) return { bytes, initialBytes: 0, unexportedBytes: 0, unboundedUnexported: false }; // V8 refuses it
  const r = new Reader(bytes, bytes.length);
  r.skip(8);
  let importedMemories = 0;
  const defined: { min: number; max: number | undefined }[] = [];
  const exported = new SetCtor<number>();
  let memorySection: { start: number; end: number } | null = null;
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    const end = start + size;
    if (end > bytes.length) throw new ReadError('truncated section');
    const s = new Reader(bytes, end);
    s.pos = start;
    if (id === 2) {
      const count = s.u32();
      for (let i = 0; i < count; i++) {
        s.name();
        s.name();
        const kind = s.byte();
        if (kind === 0x00) s.u32();
        else if (kind === 0x01) {
          s.refOrValType();
          s.limits();
        } else if (kind === 0x02) {
          s.limits();
          importedMemories++;
        } else if (kind === 0x03) {
          s.refOrValType();
          s.byte();
        } else if (kind === 0x04) {
          s.byte();
          s.u32();
        } else throw new ReadError(`unknown import kind ${kind}`);
      }
    } else if (id === 5) {
      memorySection = { start: r.pos - 0, end };
      const count = s.u32();
      for (let i = 0; i < count; i++) {
        const limits = s.limits();
        if (limits.flags & 4) throw new RangeErrorCtor('WebAssembly: 64-bit memories are not supported by Cinder');
        defined[defined.length] = { min: limits.min, max: limits.max };
      }
      memorySection.start = start;
    } else if (id === 7) {
      const count = s.u32();
      for (let i = 0; i < count; i++) {
        s.name();
        const kind = s.byte();
        const index = s.u32();
        if (kind === 0x02) apply(setAdd, exported, [index]);
      }
    }
    r.pos = end;
  }
  let initialBytes = 0;
  let unexportedBytes = 0;
  let unboundedUnexported = false;
  for (let i = 0; i < defined.length; i++) {
    const memory = defined[i];
    initialBytes += memory.min * WASM_PAGE;
    const index = importedMemories + i;
    if (!apply(setHas, exported, [index])) {
      if (memory.max === undefined || memory.max > pages) unboundedUnexported = true;
      unexportedBytes += mathMin(memory.max ?? pages, pages) * WASM_PAGE;
    }
  }
  if (!memorySection || !defined.length) return { bytes, initialBytes, unexportedBytes, unboundedUnexported };
  // The memory section again, every maximum at most the limit (a shared memory keeps its flag).
  const section: number[] = leb(defined.length);
  const again = new Reader(bytes, memorySection.end);
  again.pos = memorySection.start;
  again.u32();
  for (let i = 0; i < defined.length; i++) {
    const { flags, min, max } = again.limits();
    section[section.length] = flags | 1;
    const minBytes = leb(min);
    for (let j = 0; j < minBytes.length; j++) section[section.length] = minBytes[j];
    const maxBytes = leb(mathMin(max ?? pages, pages));
    for (let j = 0; j < maxBytes.length; j++) section[section.length] = maxBytes[j];
  }
  // header of the section: its id byte and size precede memorySection.start
  let headerStart = memorySection.start - 1;
  while (bytes[headerStart - 1] & 0x80) headerStart--;
  headerStart--; // the id byte
  const head = bytes.subarray(0, headerStart);
  const tail = bytes.subarray(memorySection.end);
  const sizeBytes = leb(section.length);
  const out = new U8(head.length + 1 + sizeBytes.length + section.length + tail.length);
  apply(u8Set, out, [head, 0]);
  let at = head.length;
  out[at++] = 5;
  apply(u8Set, out, [new U8(sizeBytes), at]);
  at += sizeBytes.length;
  apply(u8Set, out, [new U8(section), at]);
  at += section.length;
  apply(u8Set, out, [tail, at]);
  return { bytes: out, initialBytes, unexportedBytes, unboundedUnexported };
}

function prepare(source: unknown): ModuleMemories {
  const bytes = copyBytes(source);
  try {
    return readModule(bytes);
  } catch (error) {
    if (!(error instanceof ReadError)) throw error;
    // Not readable by this reader: V8 refuses it (or a form we do not know, refused to be safe).
    throw new CompileErrorCtor(`WebAssembly.Module(): Cinder could not read the module's memory declarations (${(error as Error).message})`);
  }
}

// --- the wrappers -------------------------------------------------------------------------------

function Memory(this: unknown, descriptor: Any): object {
  if (new.target === undefined) throw new TypeErrorCtor("WebAssembly.Memory must be invoked with 'new'");
  if ((typeof descriptor !== 'object' && typeof descriptor !== 'function') || descriptor === null) throw new TypeErrorCtor('WebAssembly.Memory(): Argument 0 must be a memory descriptor');
  // Each field read and converted once (a valueOf could answer differently the second time); V8
  // gets plain numbers.
  const initial = descriptor.initial;
  const maximum = descriptor.maximum;
  const shared = descriptor.shared;
  const pages = limitPages();
  const initialPages = initial === undefined ? undefined : NumberCtor(initial);
  // No prototype: V8 reads the descriptor's properties with ordinary lookups, which would also see
  // ones a worker put on Object.prototype.
  const clean: Any = { __proto__: null, initial: initialPages };
  if (shared !== undefined) clean.shared = !!shared;
  // The maximum is the limit at most: growth past it (by any path) fails as V8 fails it.
  const maxPages = maximum === undefined ? pages : NumberCtor(maximum);
  clean.maximum = maxPages > pages ? pages : maxPages;
  if (initialPages !== undefined && isFiniteNumber(initialPages) && initialPages >= 0) check('new WebAssembly.Memory()', initialPages * WASM_PAGE);
  const memory = construct(OriginalMemory, [clean], new.target === Memory ? OriginalMemory : new.target);
  track(memory);
  return memory;
}

function grow(this: unknown, delta: unknown): number {
  const pages = NumberCtor(delta);
  if (isMemory(this) && isFiniteNumber(pages) && pages > 0) check('WebAssembly.Memory.prototype.grow()', pages * WASM_PAGE);
  return apply(originalGrow, this, [pages]);
}

function Module(this: unknown, bytes: unknown): object {
  if (new.target === undefined) throw new TypeErrorCtor("WebAssembly.Module must be invoked with 'new'");
  const info = prepare(bytes);
  const module = construct(OriginalModule, [info.bytes], new.target === Module ? OriginalModule : new.target);
  apply(weakMapSet, moduleInfo, [module, info]);
  return module;
}

/** Before an instance of `module` is made: is there room for its memories? */
function beforeInstance(module: unknown): ModuleMemories {
  const info = apply(weakMapGet, moduleInfo, [module]) as ModuleMemories | undefined;
  if (!info) throw new TypeErrorCtor('WebAssembly.Instance(): Argument 0 must be a WebAssembly.Module');
  if (info.unboundedUnexported) refuse('a module whose unexported memory has no maximum within the limit', limitBytes);
  check('WebAssembly.Instance()', info.unexportedBytes + info.initialBytes);
  return info;
}

function afterInstance(instance: object, info: ModuleMemories): void {
  if (info.unexportedBytes > 0) apply(setAdd, charges, [{ instance: new WeakRefCtor(instance), bytes: info.unexportedBytes }]);
  const exports = apply(instanceExports, instance, []);
  const names = objectKeys(exports);
  for (let i = 0; i < names.length; i++) {
    const value = exports[names[i]];
    if (isMemory(value)) track(value);
  }
  if (wasmMemoryBytes() > limitBytes) refuse('WebAssembly.Instance()', 0);
}

function Instance(this: unknown, module: unknown, imports?: unknown): object {
  if (new.target === undefined) throw new TypeErrorCtor("WebAssembly.Instance must be invoked with 'new'");
  const info = beforeInstance(module);
  const instance = construct(OriginalInstance, imports === undefined ? [module] : [module, imports], new.target === Instance ? OriginalInstance : new.target);
  afterInstance(instance, info);
  return instance;
}

// compile() and instantiate() compile and instantiate synchronously, in a promise: guest code runs
// on isolated-vm's threads (never the serving thread), so nothing is blocked but the guest, the
// work is on the isolate's CPU clock, and the answer does not depend on V8's background compile
// handing its result back to an isolate that isolated-vm may not be pumping (an awaited
// WebAssembly.instantiate of bytes hung, now and then, under load).
function settled<T>(work: () => T): Promise<T> {
  return new PromiseCtor<T>((resolve, reject) => {
    try {
      resolve(work());
    } catch (error) {
      reject(error);
    }
  });
}

function compile(bytes: unknown): Promise<object> {
  return settled(() => {
    const info = prepare(bytes);
    const module = construct(OriginalModule, [info.bytes], OriginalModule);
    apply(weakMapSet, moduleInfo, [module, info]);
    return module;
  });
}

function instantiate(source: unknown, imports?: unknown): Promise<unknown> {
  if (apply(weakMapGet, moduleInfo, [source])) {
    return settled(() => {
      const info = beforeInstance(source);
      const instance = construct(OriginalInstance, imports === undefined ? [source] : [source, imports], OriginalInstance);
      afterInstance(instance, info);
      return instance;
    });
  }
  return apply(promiseThen, compile(source), [(module: object) => apply(promiseThen, instantiate(module, imports), [(instance: object) => ({ module, instance })])]);
}

/**
 * A CompiledWasm module of the worker's upload, compiled by the loader before any of the worker's
 * code runs (never a guest call). Its memories are clamped and tracked like any module's, and the
 * compiled module itself is charged at its size for as long as it lives: V8 keeps its code off
 * the JS heap, where the isolate's heap limit does not see it.
 */
export function compileUploadedModule(bytes: Uint8Array): object {
  const info = prepare(bytes);
  const module = construct(OriginalModule, [info.bytes], OriginalModule);
  apply(weakMapSet, moduleInfo, [module, info]);
  apply(setAdd, charges, [{ instance: new WeakRefCtor(module), bytes: info.bytes.length }]);
  check('a CompiledWasm module', 0);
  return module;
}

function validate(bytes: unknown): boolean {
  return apply(originalValidate, WA, [copyBytes(bytes)]);
}

function replace(target: Any, name: string, value: unknown): void {
  defineProperty(target, name, { value, writable: false, configurable: false, enumerable: false });
}

function wrapClass(name: string, wrapper: Any, original: Any): void {
  defineProperty(wrapper, 'name', { value: name });
  defineProperty(wrapper, 'prototype', { value: original.prototype, writable: false, configurable: false, enumerable: false });
  defineProperty(original.prototype, 'constructor', { value: wrapper, writable: true, configurable: true, enumerable: false });
  setPrototypeOf(wrapper, getPrototypeOf(original));
  replace(WA, name, wrapper);
}

let installed = false;

/** At boot, before any worker code: capture the originals and put the wrappers in their place.
 *  `memoryMb` is the isolate's memory limit. */
export function installWasmLimits(memoryMb: number): void {
  if (typeof memoryMb === 'number' && memoryMb > 0) limitBytes = memoryMb * 1024 * 1024;
  if (installed) return;
  installed = true;
  WA = (globalThis as Any).WebAssembly;
  if (!WA || !WA.Memory || !WA.Module || !WA.Instance) return;
  OriginalMemory = WA.Memory;
  OriginalModule = WA.Module;
  OriginalInstance = WA.Instance;
  originalValidate = WA.validate;
  originalGrow = OriginalMemory.prototype.grow;
  memoryBuffer = getOwnPropertyDescriptor(OriginalMemory.prototype, 'buffer')!.get;
  instanceExports = getOwnPropertyDescriptor(OriginalInstance.prototype, 'exports')!.get;
  CompileErrorCtor = WA.CompileError;
  wrapClass('Memory', Memory, OriginalMemory);
  wrapClass('Module', Module, OriginalModule);
  wrapClass('Instance', Instance, OriginalInstance);
  // Module's statics (exports, imports, customSections) take a Module: the originals serve.
  for (const key of ['exports', 'imports', 'customSections']) {
    const fn = OriginalModule[key];
    if (typeof fn === 'function') defineProperty(Module, key, { value: fn, writable: false, configurable: false, enumerable: false });
  }
  defineProperty(grow, 'name', { value: 'grow' });
  replace(OriginalMemory.prototype, 'grow', grow);
  replace(WA, 'compile', compile);
  replace(WA, 'instantiate', instantiate);
  replace(WA, 'validate', validate);
  // Streaming compilation needs an embedder's Response support Cinder does not give V8.
  for (const key of ['compileStreaming', 'instantiateStreaming']) if (key in WA) delete WA[key];
}
