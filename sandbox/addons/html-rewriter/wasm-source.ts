// Hands lol-html's WebAssembly bytes from the add-on's install(files) to html-rewriter-wasm, which
// compiles them when it is first required (scripts/build-addons.mjs points its fs read here).
let bytes: ArrayBuffer | undefined;

export function provideWasmBytes(given: ArrayBuffer): void {
  bytes = given;
}

export function wasmBytes(): ArrayBuffer {
  const given = bytes;
  if (!given) throw new Error('HTMLRewriter: lol-html was not handed to the add-on');
  bytes = undefined;
  return given;
}
