// One request's invocation budget (32) holds across serving processes (`cinder serve --processes 2`
// without Redis): a chain of objects placed on both processes, each calling the next and then two
// leaves of its own, is cut at the request's cap, not given a fresh budget at each hop to another
// process, and what a hop spent there is charged back to its caller.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, get, startNode, stopNode, type Node } from '../scale/helpers.js';

const HOPS = 20;
const WORKER = `
import { DurableObject } from 'cloudflare:workers';
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const hop = url.searchParams.get('touch');
    if (hop !== null) return env.HOP.getByName('hop-' + hop).fetch('https://hop/touch');
    // 1 for this invocation
    return new Response(String(1 + (await env.HOP.getByName('hop-0').chain(0))));
  },
};
export class Hop extends DurableObject {
  fetch() { return new Response('here'); }
  leaf() { return 1; }
  // Invocations that ran from here on: this one, the rest of the chain, then two leaves.
  async chain(n) {
    let ran = 1;
    try {
      if (n + 1 < ${HOPS}) ran += await this.env.HOP.getByName('hop-' + (n + 1)).chain(n + 1);
      for (let j = 0; j < 2; j++) ran += await this.env.HOP.getByName('leaf-' + n + '-' + j).leaf();
    } catch (error) {
      if (!/Too many worker invocations/.test(String(error))) throw error;
    }
    return ran;
  }
}
`;
const METADATA = {
  bindings: [{ type: 'durable_object_namespace', name: 'HOP', class_name: 'Hop' }],
  migrations: { new_tag: 'v1', new_sqlite_classes: ['Hop'] },
};

let node: Node;
beforeAll(async () => {
  node = await startNode({ processes: 2 });
  const deployed = await deploy(node, 'hops', WORKER, METADATA);
  expect(deployed.status, deployed.text).toBe(201);
}, 120_000);
afterAll(async () => {
  if (node) await stopNode(node);
});

describe('a request tree across serving processes', () => {
  it('is cut at 32 invocations however its objects are spread', async () => {
    // A connection of its own per hop: the processes take turns, so the hops are claimed by both.
    for (let i = 0; i < HOPS; i++) {
      const res = await get(node, 'hops', `/?touch=${i}`, false);
      expect(res.text).toBe('here');
    }
    const res = await get(node, 'hops', '/', false);
    expect(res.status, res.text).toBe(200);
    // The workload asks for 1 + 3 * HOPS invocations; the request may run 32 of them.
    expect(Number(res.text)).toBe(32);
  }, 120_000);
});
