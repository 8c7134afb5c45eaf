// The snapshot self-test: run by the builder (scripts/build-snapshot.mjs, in its child process)
// before it writes a snapshot, and again in the server before the first isolate is made from one.
//
// Two checks. Every global the sandbox bundle defines must be present. And the Web platform must
// behave exactly as it does in an isolate that ran the bundle itself. Cinder's earlier platform
// (isolated-vm 5 / V8 11.3) scrambled every one-character string held in a snapshot's heap and
// dropped lone one-letter globals; the current one does neither (test/integration/snapshot-pool),
// but a snapshot can still freeze what should differ per isolate (a top-level Math.random draw),
// or a future V8 can regress, and such a snapshot is never used.
import ivm from './ivm.js';

export interface SandboxGlobals {
  globals: string[];
}

/** Guest code exercising the snapshot-held parts of the Web platform without the host bridge;
 *  evaluates to a JSON string of [name, result] pairs. */
export const PLATFORM_PROBE = `(async () => {
  const checks = {
    url: () => { const u = new URL('https://user@Example.COM:443/a/../b?x=1&y=%20#f'); return [u.href, u.host, u.pathname, u.search, u.hash, u.searchParams.get('y'), new URL('../c?d#e', u).href, new URL('http://ÉXAMPLE.com/ a').href]; },
    searchParams: () => { const p = new URLSearchParams('b=2&a=1&a=0&c=%2F+x'); p.sort(); p.append('k', 'v w/&='); return [p.toString(), p.getAll('a'), p.get('c')]; },
    headers: () => { const h = new Headers([['Set-Cookie', 'a=1'], ['set-cookie', 'b=2'], ['X-A', '1'], ['x-a', '2'], ['Content-Type', 'text/plain']]); return [[...h], h.getSetCookie(), h.get('x-a')]; },
    response: async () => { const r = new Response('ok', { status: 201, statusText: 'Created', headers: { 'X-B': 'b' } }); const j = Response.json({ a: [1, '/'] }); return [r.status, r.statusText, r.ok, [...r.headers], await r.text(), j.headers.get('content-type'), await j.text(), Response.redirect('http://x/y', 302).headers.get('location')]; },
    request: async () => { const q = new Request('http://x.test/p?q=1', { method: 'post', body: 'b=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }); return [q.method, q.url, q.headers.get('content-type'), (await q.clone().formData()).get('b'), await q.text()]; },
    encoding: () => { const bytes = new TextEncoder().encode('hé€/𝄞'); return [Array.from(bytes), new TextDecoder().decode(bytes), new TextDecoder('latin1').encoding, new TextDecoder('utf-16le').decode(new Uint8Array([104, 0, 105, 0]))]; },
    base64: () => [btoa('hi/+?'), atob('aGkvKz8='), btoa(String.fromCharCode(0, 255))],
    clone: () => { const c = structuredClone({ m: new Map([['/', 1]]), s: new Set(['x']), d: new Date(0), r: /a.b/g }); return [[...c.m], [...c.s], c.d.toISOString(), String(c.r)]; },
    streams: async () => [await new Response(ReadableStream.from(['a', '/', 'é']).pipeThrough(new TextEncoderStream())).text(), await new Response(new Blob(['x', 'yz']).stream()).text()],
    formData: async () => { const fd = new FormData(); fd.append('f', new File(['x'], 'x.txt', { type: 'text/plain' })); fd.append('t', 'a b'); const parsed = await new Response(fd).formData(); return [parsed.get('t'), parsed.get('f').name, parsed.get('f').type, await parsed.get('f').text()]; },
    blob: async () => { const b = new Blob(['abc', '/'], { type: 'Text/Plain' }); return [b.size, b.type, await b.slice(1, 3).text()]; },
    events: () => { const t = new EventTarget(); const seen = []; t.addEventListener('x', (e) => seen.push(e.type, e.detail)); t.dispatchEvent(new CustomEvent('x', { detail: '/' })); const ac = new AbortController(); ac.abort(); return [seen, ac.signal.aborted, ac.signal.reason.name, new DOMException('m', 'AbortError').code]; },
  };
  const out = [];
  for (const [name, check] of Object.entries(checks)) {
    try { out.push([name, await check()]); } catch (error) { out.push([name, 'threw ' + String(error)]); }
  }
  return JSON.stringify(out);
})()`;

async function probe(context: ivm.Context): Promise<[string, unknown][]> {
  const result = await context.eval(PLATFORM_PROBE, { promise: true, timeout: 5000 } as ivm.ContextEvalOptions);
  return JSON.parse(result as string) as [string, unknown][];
}

/** What the Web platform answers in an isolate that ran `bundleCode` itself (no snapshot). */
export async function referenceAnswers(bundleCode: string): Promise<[string, unknown][]> {
  const isolate = new ivm.Isolate({ memoryLimit: 64 });
  try {
    const context = isolate.createContextSync();
    isolate.compileScriptSync(bundleCode, { filename: 'cinder:sandbox.js' }).runSync(context);
    return await probe(context);
  } finally {
    isolate.dispose();
  }
}

/** Problems with `snapshot` (empty: fit to use): globals missing, and every probe whose answer
 *  differs from `reference` (from referenceAnswers). */
export async function snapshotProblems(
  snapshot: ivm.ExternalCopy<ArrayBuffer>,
  manifest: SandboxGlobals,
  reference: [string, unknown][],
): Promise<string[]> {
  const isolate = new ivm.Isolate({ snapshot, memoryLimit: 64 });
  try {
    const context = isolate.createContextSync();
    const missing = JSON.parse(
      context.evalSync(`JSON.stringify(${JSON.stringify(manifest.globals)}.filter((n) => typeof globalThis[n] === 'undefined'))`) as string,
    ) as string[];
    const problems = missing.length ? [`missing globals: ${missing.join(', ')}`] : [];
    const answers = new Map((await probe(context)).map(([name, value]) => [name, JSON.stringify(value)]));
    for (const [name, expected] of reference) {
      const got = answers.get(name);
      if (got !== JSON.stringify(expected)) problems.push(`${name}: ${got ?? 'no answer'} (expected ${JSON.stringify(expected)})`);
    }
    return problems;
  } finally {
    isolate.dispose();
  }
}
