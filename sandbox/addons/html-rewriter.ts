// HTMLRewriter as Workers has it: `new HTMLRewriter().on(selector, handlers).onDocument(handlers)
// .transform(response)` rewrites the body as it streams, with element, comment, text, doctype and
// end handlers, sync or async. The parser and rewriter are lol-html (Cloudflare's own, the one
// workerd uses), compiled to WebAssembly by html-rewriter-wasm and run inside this isolate: its
// CPU and memory are the worker's (its wasm memory counts against the memory limit like any).
import { provideWasmBytes } from './html-rewriter/wasm-source.js';
import { Response } from '../api/response.js';
import { ReadableStream } from '../api/streams.js';
import { Headers } from '../api/headers.js';
import { TextEncoder } from '../api/encoding.js';

declare const require: (name: string) => unknown;

interface LolHtmlRewriter {
  on(selector: string, handlers: object): void;
  onDocument(handlers: object): void;
  write(chunk: Uint8Array): Promise<void>;
  end(): Promise<void>;
  free(): void;
}
type LolHtml = { HTMLRewriter: new (sink: (chunk: Uint8Array) => void, options?: object) => LolHtmlRewriter };

type Registration = { selector: string; handlers: object } | { document: object };

// A WebIDL dictionary: null and undefined stand for an empty one; other primitives are refused.
function checkHandlers(handlers: unknown, method: string): object {
  if (handlers === null || handlers === undefined) return {};
  if (typeof handlers !== 'object' && typeof handlers !== 'function') throw new TypeError(`Failed to execute '${method}' on 'HTMLRewriter': parameter ${method === 'on' ? 2 : 1} is not of type '${method === 'on' ? 'ElementHandlers' : 'DocumentHandlers'}'.`);
  return handlers;
}

function makeHTMLRewriter(lib: LolHtml) {
  const registrations = new WeakMap<object, Registration[]>();

  class HTMLRewriter {
    constructor() {
      registrations.set(this, []);
    }

    on(selector: unknown, handlers: unknown): this {
      registrationsOf(this).push({ selector: String(selector), handlers: checkHandlers(handlers, 'on') });
      return this;
    }

    onDocument(handlers: unknown): this {
      registrationsOf(this).push({ document: checkHandlers(handlers, 'onDocument') });
      return this;
    }

    transform(response: unknown): Response {
      if (!(response instanceof Response)) throw new TypeError("Failed to execute 'transform' on 'HTMLRewriter': parameter 1 is not of type 'Response'.");
      const list = [...registrationsOf(this)];
      // The headers are kept as they are, Content-Length included (as workerd does); the body is
      // a stream of unknown length, sent chunked.
      const headers = new Headers(response.headers);
      const init = { status: response.status, statusText: response.statusText, headers };
      const input = response.body;
      if (input === null) return new Response(null, init);
      const reader = input.getReader();
      let rewriter: LolHtmlRewriter | null = null;
      let produced = 0;
      const release = () => {
        rewriter?.free();
        rewriter = null;
      };
      const output = new ReadableStream<Uint8Array>({
        start(controller) {
          // lol-html hands out views of its own memory: each chunk is copied before it leaves.
          rewriter = new lib.HTMLRewriter((chunk) => {
            if (chunk.byteLength === 0) return;
            produced++;
            controller.enqueue(new Uint8Array(chunk));
          });
          for (const r of list) {
            if ('document' in r) rewriter.onDocument(r.document);
            else rewriter.on(r.selector, r.handlers);
          }
        },
        // A stream calls pull again only after something was enqueued: keep feeding lol-html
        // until it has written output (it holds back partial tags) or the input has ended.
        async pull(controller) {
          try {
            const before = produced;
            while (produced === before) {
              const { done, value } = await reader.read();
              if (done) {
                await rewriter!.end();
                release();
                controller.close();
                return;
              }
              const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : (value as Uint8Array);
              await rewriter!.write(bytes);
            }
          } catch (error) {
            release();
            reader.cancel(error).catch(() => {});
            throw error;
          }
        },
        cancel(reason) {
          release();
          return reader.cancel(reason);
        },
      });
      return new Response(output, init);
    }
  }

  function registrationsOf(rewriter: object): Registration[] {
    const list = registrations.get(rewriter);
    if (!list) throw new TypeError('Illegal invocation');
    return list;
  }

  return HTMLRewriter;
}

export default function install(files: Record<string, ArrayBuffer>) {
  provideWasmBytes(files.wasm);
  const lib = require('html-rewriter-wasm') as LolHtml;
  return { globals: { HTMLRewriter: makeHTMLRewriter(lib) } };
}
