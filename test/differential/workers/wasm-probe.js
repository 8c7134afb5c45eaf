// WebAssembly compiled from bytes: allowed while a worker starts (its top level), refused at once
// in its handlers with workerd's CompileError ("Wasm code generation disallowed by embedder"); a
// module compiled at startup is still instantiated in a handler, as CompiledWasm imports are.
// (An async compile started at startup settles in workerd only once a request runs, so the probe
// compiles synchronously at startup.)
// (module (func (export "f") (result i32) i32.const 42))
const BYTES = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 6, 1, 4, 0, 65, 42, 11]);

function describe(value) {
  if (value instanceof WebAssembly.Module) return 'Module';
  if (value instanceof WebAssembly.Instance) return `Instance f()=${value.exports.f()}`;
  if (value && value.instance) return `{module, instance} f()=${value.instance.exports.f()}`;
  return typeof value;
}
function now(make) {
  try {
    return `ok: ${describe(make())}`;
  } catch (error) {
    return `${error.constructor.name}: ${error.message}`;
  }
}
async function later(make) {
  try {
    return `ok: ${describe(await make())}`;
  } catch (error) {
    return `${error.constructor.name}: ${error.message}`;
  }
}

const atStartup = { newModule: now(() => new WebAssembly.Module(BYTES)), validate: now(() => WebAssembly.validate(BYTES)) };
const startupModule = new WebAssembly.Module(BYTES);

export default {
  async fetch() {
    return Response.json({
      atStartup,
      newModule: now(() => new WebAssembly.Module(BYTES)),
      validate: now(() => WebAssembly.validate(BYTES)),
      compile: await later(() => WebAssembly.compile(BYTES)),
      instantiateBytes: await later(() => WebAssembly.instantiate(BYTES)),
      instantiateBuffer: await later(() => WebAssembly.instantiate(BYTES.buffer)),
      instantiateStartupModule: await later(() => WebAssembly.instantiate(startupModule)),
      newInstanceOfStartupModule: now(() => new WebAssembly.Instance(startupModule)),
    });
  },
};
