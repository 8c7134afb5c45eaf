// The host serializes an incoming request's URL with Node's WHATWG parser and the guest takes it
// as it is (WorkerInstance.fetch): request.url must be what the sandbox's own URL parser makes of
// the same text, for the odd paths clients send.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const PATHS = ['/', '/a/./b/../c', '/%7Efoo/%2e%2E/bar', '/sp%20ace/ünï?q=a b&x=%zz', '/x?#', "/quote'\"<>`{}|", '//double//slash', '/path;params?q=1#frag', '/%E2%82%AC?€=1', '/a\\\\b'];

describe('incoming request URLs', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      url: `export default { fetch(request) { return Response.json({ url: request.url, reparsed: new URL(request.url).href }); } }`,
    });
  });
  afterAll(() => server.close());

  it('hands the worker the same URL its own parser would make', async () => {
    for (const path of PATHS) {
      const res = await server.request('url', path);
      expect(res.status, path).toBe(200);
      const seen = JSON.parse(res.text) as { url: string; reparsed: string };
      expect(seen.url, path).toBe(seen.reparsed);
      expect(seen.url.startsWith('http://url.test/'), path).toBe(true);
    }
  });
});
