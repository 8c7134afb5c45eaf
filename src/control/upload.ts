// Reading an upload (`PUT /workers/:name`) into modules plus metadata. Two shapes, as Cloudflare's
// Workers script upload API takes them:
//   - the script itself as the body (`application/javascript`): one module, format detected from
//     its syntax, no bindings;
//   - multipart/form-data: a `metadata` JSON part (see metadata.ts) and one part per module, the
//     part's name being the module name other modules import. Part content types (as wrangler
//     sends them, model/worker-definition.ts MODULE_CONTENT_TYPES):
//       application/javascript+module   ES module
//       application/javascript          the entry: ES module or, for body_part, a service-worker
//                                       script; any other part: CommonJS (ES module if it has
//                                       import/export statements, as older clients send them)
//       text/plain                      Text module (`import text from "./a.txt"`: a string)
//       application/json                JSON module
//       application/octet-stream        Data module (an ArrayBuffer); a part named *.js is JS
//       application/wasm                CompiledWasm module (a WebAssembly.Module)
//       application/source-map          accepted and dropped (wrangler sends them)
import { binaryModule, detectModuleType, type WorkerModuleSource } from '../model/worker-definition.js';
import { ControlError, badRequest } from './errors.js';
import { parseMetadata, type UploadMetadata } from './metadata.js';
import { normalizeModuleName } from './validate.js';

export interface UploadSpec extends UploadMetadata {
  main: string;
  modules: WorkerModuleSource[];
}

const ESM_TYPES = new Set(['application/javascript+module', 'text/javascript+module']);
const JS_TYPES = new Set(['application/javascript', 'text/javascript', 'application/x-javascript', 'application/ecmascript', 'text/ecmascript']);

const utf8 = new TextDecoder('utf-8', { fatal: true });

function mediaType(contentType: string | null | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

function decode(bytes: ArrayBuffer, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw badRequest(`${what} is not valid UTF-8 text`);
  }
}

export async function readUpload(request: Request): Promise<UploadSpec> {
  const type = mediaType(request.headers.get('content-type'));
  if (type === 'multipart/form-data') return readMultipart(request);
  // `curl --data-binary @worker.js` labels the body as a urlencoded form; nobody uploads a worker
  // as a form, so that (and no type at all) means "this is the script".
  if (JS_TYPES.has(type) || ESM_TYPES.has(type) || type === '' || type === 'application/x-www-form-urlencoded' || type === 'application/octet-stream' || type === 'text/plain') {
    const code = decode(await request.arrayBuffer(), 'the script');
    if (!code.trim()) throw badRequest('the script is empty');
    const main = 'worker.js';
    return {
      main,
      modules: [{ name: main, code, type: ESM_TYPES.has(type) ? 'esm' : detectModuleType(code) }],
      ...parseMetadata({}),
    };
  }
  throw new ControlError(415, `unsupported content type "${type}": send the script as application/javascript, or multipart/form-data with a metadata part and one part per module`);
}

async function readMultipart(request: Request): Promise<UploadSpec> {
  let form: FormData;
  try {
    form = await request.formData();
  } catch (error) {
    throw badRequest(`malformed multipart body: ${(error as Error).message}`);
  }

  let metadata: UploadMetadata = parseMetadata({});
  const metadataPart = form.get('metadata');
  if (metadataPart !== null) {
    const text = typeof metadataPart === 'string' ? metadataPart : decode(await metadataPart.arrayBuffer(), 'the metadata part');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw badRequest(`the metadata part is not valid JSON: ${(error as Error).message}`);
    }
    metadata = parseMetadata(json);
  }

  const parts: Part[] = [];
  const entries: [string, FormDataEntryValue][] = [];
  form.forEach((value, field) => entries.push([field, value]));
  for (const [field, value] of entries) {
    if (field === 'metadata') continue;
    const normalized = normalizeModuleName(field);
    if (normalized.error) throw badRequest(normalized.error);
    const name = normalized.name!;
    if (parts.some((p) => p.name === name)) throw badRequest(`module "${name}" is uploaded twice`);
    const bytes = typeof value === 'string' ? new TextEncoder().encode(value).buffer : await value.arrayBuffer();
    parts.push({ name, bytes, contentType: typeof value === 'string' ? '' : mediaType(value.type) });
  }

  const modules: WorkerModuleSource[] = [];
  let main = metadata.mainModule ?? metadata.bodyPart;
  if (main) {
    const normalized = normalizeModuleName(main).name ?? main;
    if (!parts.some((p) => p.name === normalized)) {
      const field = metadata.mainModule ? 'main_module' : 'body_part';
      throw badRequest(`metadata.${field} is "${main}" but no part of the upload has that name (parts: ${parts.map((p) => p.name).join(', ') || 'none'})`);
    }
    main = normalized;
  } else {
    const scripts = parts.filter((p) => p.contentType === '' || JS_TYPES.has(p.contentType) || ESM_TYPES.has(p.contentType) || isLegacyJsPart(p));
    if (scripts.length !== 1) {
      throw badRequest(`the metadata part must name the entry module: main_module (ES modules) or body_part (service-worker script); this upload has ${parts.length} parts`);
    }
    main = scripts[0].name;
  }

  for (const part of parts) {
    const module = toModule(part, part.name === main, !!metadata.bodyPart);
    if (module) modules.push(module);
  }
  // Found by fuzzing: a main part sent as a source map was dropped, leaving nothing to run.
  if (!modules.some((m) => m.name === main)) throw badRequest(`the entry module "${main}" is a source map; send it as application/javascript+module or application/javascript`);
  return { ...metadata, main, modules };
}

interface Part {
  name: string;
  bytes: ArrayBuffer;
  contentType: string;
}

// Older Cinder CLIs sent every module as application/octet-stream: a part so named is still JS.
function isLegacyJsPart(part: Part): boolean {
  return part.contentType === 'application/octet-stream' && /\.[cm]?js$/.test(part.name);
}

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

function toModule(part: Part, isMain: boolean, serviceWorker: boolean): WorkerModuleSource | null {
  const { name, contentType } = part;
  const text = () => decode(part.bytes, `module "${name}"`);
  const isJs = ESM_TYPES.has(contentType) || JS_TYPES.has(contentType) || contentType === '' || isLegacyJsPart(part);
  if (isMain && !isJs) {
    if (contentType === 'application/source-map') return null;
    throw badRequest(`the entry module "${name}" has content type "${contentType}"; the entry must be JavaScript (application/javascript+module or application/javascript)`);
  }
  if (ESM_TYPES.has(contentType)) {
    if (isMain && serviceWorker) throw badRequest(`body_part "${name}" is a service-worker script, but its part says application/javascript+module; use main_module for ES modules`);
    return { name, code: text(), type: 'esm' };
  }
  if (isJs) {
    const code = text();
    if (isMain) return { name, code, type: serviceWorker ? 'script' : detectModuleType(code) };
    // Anything else is only reachable through `import`/`require`: CommonJS as Cloudflare reads
    // application/javascript, unless it is written as an ES module.
    return { name, code, type: detectModuleType(code) === 'esm' ? 'esm' : 'commonjs' };
  }
  if (contentType === 'text/plain') return { name, code: text(), type: 'text' };
  if (contentType === 'application/json') {
    const code = text();
    try {
      JSON.parse(code);
    } catch (error) {
      throw badRequest(`module "${name}" is declared application/json but is not valid JSON: ${(error as Error).message}`);
    }
    return { name, code, type: 'json' };
  }
  if (contentType === 'application/octet-stream') return binaryModule(name, 'data', new Uint8Array(part.bytes));
  if (contentType === 'application/wasm') {
    const bytes = new Uint8Array(part.bytes);
    if (bytes.length < 8 || WASM_MAGIC.some((b, i) => bytes[i] !== b)) throw badRequest(`module "${name}" is declared application/wasm but is not a WebAssembly binary (it does not start with \\0asm)`);
    return binaryModule(name, 'wasm', bytes);
  }
  if (contentType === 'application/source-map') return null;
  throw badRequest(
    `module "${name}" has content type "${contentType}", which Cinder cannot load; use application/javascript+module (ES module), application/javascript (CommonJS), text/plain (Text), application/json, application/octet-stream (Data) or application/wasm (CompiledWasm)`,
  );
}
