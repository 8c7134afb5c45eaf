// Console lines reach the host through isolated-vm's fire-and-forget queue, while a result can come
// back at once (a synchronous entry into the isolate): the host must still report an invocation
// only after the lines it logged, so that tail readers and log files see them in order.
import { describe, expect, it } from 'vitest';
import { captureLogger } from '../helpers/server.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { singleScriptWorker } from '../../src/model/worker-definition.js';

const GET = { method: 'GET', url: 'http://x.test/', headers: [] as [string, string][], body: null };

describe('console lines and the invocation they belong to', () => {
  it('arrive before the invocation is reported, cold and warm, returning or throwing', async () => {
    const { logger } = captureLogger();
    const runtime = await Runtime.create({ logger, pool: { min: 1, max: 2 } });
    runtime.deploy(
      singleScriptWorker(
        'chatty',
        `let n = 0;
         export default { fetch() {
           n++; console.log('one', n); console.info('two', n); console.warn('three', n);
           if (n % 3 === 0) throw new RangeError('every third');
           return new Response('ok ' + n);
         } }`,
      ),
    );
    const events = new Map<string, string[]>();
    const note = (requestId: string, what: string) => events.set(requestId, [...(events.get(requestId) ?? []), what]);
    runtime.onConsole((_worker, requestId, level) => note(requestId, level));
    runtime.onInvocation((record) => note(record.requestId, `end:${record.outcome}`));
    const ids: string[] = [];
    for (let i = 1; i <= 30; i++) {
      const res = await runtime.fetch('chatty', GET);
      ids.push(res.requestId);
      expect(res.status).toBe(i % 3 === 0 ? 500 : 200);
    }
    for (const [i, id] of ids.entries()) {
      expect(events.get(id), `request ${i + 1}`).toEqual(['log', 'info', 'warn', (i + 1) % 3 === 0 ? 'end:exception' : 'end:ok']);
    }
    runtime.close();
  });
});
