// Reading an upload (`PUT /workers/:name`) into modules plus metadata. Two shapes, as Cloudflare's
// Workers script upload API takes them:
//   - the script itself as the body (`application/javascript`): one module, format detected from
//     its syntax, no bindings;
//   - multipart/form-data: a `metadata` JSON part (see metadata.ts) and one part per module, the
//     part's name being the module name other modules import. Part content types:
//       application/javascript+module   ES module
//       application/javascript          ES module or, for body_part, a service-worker script
//       text/plain                      text module (`import text from "./a.txt"`)
//       application/json                JSON module
//       application/source-map          accepted and dropped (wrangler sends them)
import { detectModuleType, type WorkerModuleSource } from '../model/worker-definition.js';
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

  const parts: { name: string; code: string; contentType: string }[] = [];
  const entries: [string, FormDataEntryValue][] = [];
  form.forEach((value, field) => entries.push([field, value]));
  for (const [field, value] of entries) {
    if (field === 'metadata') continue;
    const normalized = normalizeModuleName(field);
    if (normalized.error) throw badRequest(normalized.error);
    const name = normalized.name!;
    if (parts.some((p) => p.name === name)) throw badRequest(`module "${name}" is uploaded twice`);
    const code = typeof value === 'string' ? value : decode(await value.arrayBuffer(), `module "${name}"`);
    parts.push({ name, code, contentType: typeof value === 'string' ? '' : mediaType(value.type) });
  }

  const modules: WorkerModuleSource[] = [];
  // A worker of static assets only (as on Cloudflare): no code at all.
  if (metadata.assets && parts.length === 0 && !metadata.mainModule && !metadata.bodyPart) return { ...metadata, main: '', modules };
  let main = metadata.mainModule ?? metadata.bodyPart;
  if (main) {
    const normalized = normalizeModuleName(main).name ?? main;
    if (!parts.some((p) => p.name === normalized)) {
      const field = metadata.mainModule ? 'main_module' : 'body_part';
      throw badRequest(`metadata.${field} is "${main}" but no part of the upload has that name (parts: ${parts.map((p) => p.name).join(', ') || 'none'})`);
    }
    main = normalized;
  } else {
    const scripts = parts.filter((p) => p.contentType === '' || JS_TYPES.has(p.contentType) || ESM_TYPES.has(p.contentType) || p.contentType === 'application/octet-stream');
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

function toModule(part: { name: string; code: string; contentType: string }, isMain: boolean, serviceWorker: boolean): WorkerModuleSource | null {
  const { name, code, contentType } = part;
  if (ESM_TYPES.has(contentType)) {
    if (isMain && serviceWorker) throw badRequest(`body_part "${name}" is a service-worker script, but its part says application/javascript+module; use main_module for ES modules`);
    return { name, code, type: 'esm' };
  }
  if (JS_TYPES.has(contentType) || contentType === '' || (contentType === 'application/octet-stream' && /\.[cm]?js$/.test(name))) {
    if (isMain) return { name, code, type: serviceWorker ? 'script' : detectModuleType(code) };
    // Anything else is only reachable through `import`, so it is an ES module whatever it contains.
    return { name, code, type: 'esm' };
  }
  if (contentType === 'text/plain') return { name, code: `export default ${JSON.stringify(code)};\n`, type: 'esm' };
  if (contentType === 'application/json') {
    try {
      JSON.parse(code);
    } catch (error) {
      throw badRequest(`module "${name}" is declared application/json but is not valid JSON: ${(error as Error).message}`);
    }
    return { name, code: `export default ${code.trim()};\n`, type: 'esm' };
  }
  if (contentType === 'application/source-map') return null;
  throw badRequest(`module "${name}" has content type "${contentType}", which Cinder cannot load; use application/javascript+module (ES module), application/javascript, text/plain or application/json`);
}
