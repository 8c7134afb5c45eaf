// Tenant-supplied names and client-supplied request lines, taken as untrusted input: binding names
// that collide with Object.prototype ("constructor", "__proto__") are ordinary names, and an
// absolute-form request line (`GET http://host/path HTTP/1.1`) reaches the worker its host names
// with a well-formed URL.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { parseMetadata } from '../../src/control/metadata.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    names: {
      code: `export default { fetch(request, env) { return Response.json({ keys: Object.keys(env), ctor: env.constructor, proto: Object.getOwnPropertyDescriptor(env, '__proto__')?.value, protoOfEnv: Object.getPrototypeOf(env) === Object.prototype }) } }`,
      bindings: { constructor: { type: 'plain_text', text: 'c' }, ['__proto__']: { type: 'plain_text', text: 'p' }, toString: { type: 'json', json: 1 } },
    },
    abs: `export default { fetch(request) { return Response.json({ url: request.url, host: request.headers.get('host') }) } }`,
    other: `export default { fetch() { return new Response('other') } }`,
  });
});
afterAll(() => server.close());

function raw(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1', () => socket.write(request));
    let data = '';
    socket.on('data', (c) => (data += c));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

describe('binding names', () => {
  it('"constructor", "__proto__" and "toString" are accepted once and refused when declared twice', () => {
    const meta = parseMetadata({ main_module: 'a.js', bindings: [{ type: 'plain_text', name: 'constructor', text: 'c' }, { type: 'plain_text', name: '__proto__', text: 'p' }] });
    expect(Object.keys(meta.bindings)).toEqual(['constructor', '__proto__']);
    expect(Object.getPrototypeOf(meta.bindings)).toBe(Object.prototype);
    expect(() => parseMetadata({ main_module: 'a.js', bindings: [{ type: 'plain_text', name: '__proto__', text: 'p' }, { type: 'plain_text', name: '__proto__', text: 'q' }] })).toThrow(/declared twice/);
  });

  it('reach the worker as own properties of env, without touching its prototype', async () => {
    const out = JSON.parse((await server.request('names')).text);
    expect(out).toEqual({ keys: ['constructor', '__proto__', 'toString'], ctor: 'c', proto: 'p', protoOfEnv: true });
  });
});

describe('absolute-form request lines', () => {
  it('go to the worker the target names, with a well-formed URL', async () => {
    const answer = await raw('GET http://abs.test/some/path?q=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    expect(body.url).toBe('http://abs.test/some/path?q=1');
  });

  it('any other target form is a 400', async () => {
    expect(await raw('OPTIONS * HTTP/1.1\r\nHost: abs.test\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
  });
});
