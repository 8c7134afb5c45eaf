// `cinder dev --inspect`: DevTools discovery endpoints, a WebSocket session on the worker's isolate
// speaking the inspector protocol (Runtime.evaluate in the worker's context, console lines, a
// breakpoint that pauses a request), and the guards (Host check, unknown worker).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import WebSocket from 'ws';
import { startDev, type DevServer } from '../../src/app/dev.js';
import { parseInspectOption } from '../../src/app/inspector.js';
import { captureLogger } from '../helpers/server.js';
import { waitFor } from './helpers.js';

const WORKER = `globalThis.marker = 'from the worker';
export default {
  async fetch(request) {
    console.log('handling ' + new URL(request.url).pathname);
    if (new URL(request.url).pathname === '/spin') for (;;) {}
    const answer = 6 * 7;
    return new Response('answer ' + answer);
  },
};
`;

/** A protocol client: numbered commands, notifications collected. */
class Client {
  private nextId = 1;
  private readonly pending = new Map<number, (message: any) => void>();
  readonly notifications: any[] = [];
  readonly opened: Promise<void>;
  closeInfo: { code: number; reason: string } | null = null;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.id !== undefined) this.pending.get(message.id)?.(message);
      else this.notifications.push(message);
    });
    ws.on('close', (code, reason) => (this.closeInfo = { code, reason: String(reason) }));
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  notification(method: string, match: (params: any) => boolean = () => true): Promise<any> {
    return waitFor(() => this.notifications.find((n) => n.method === method && match(n.params)), { what: method });
  }
}

describe('cinder dev --inspect', () => {
  let dev: DevServer;
  const { logger } = captureLogger();

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cinder-inspect-'));
    writeFileSync(join(dir, 'app.js'), WORKER);
    dev = await startDev({ paths: [join(dir, 'app.js')], port: 0, logger, inspect: { port: 0 } });
  });
  afterAll(async () => {
    await dev?.close();
  });

  const inspectorUrl = () => `http://127.0.0.1:${dev.inspector!.port}`;

  it('lists the workers as DevTools targets', async () => {
    const version = await (await fetch(`${inspectorUrl()}/json/version`)).json();
    expect(version['Protocol-Version']).toBe('1.3');
    expect(version['V8-Version']).toBe(process.versions.v8);
    const list = await (await fetch(`${inspectorUrl()}/json/list`)).json();
    expect(list).toEqual([
      expect.objectContaining({
        id: 'app',
        type: 'node',
        webSocketDebuggerUrl: `ws://127.0.0.1:${dev.inspector!.port}/app`,
        devtoolsFrontendUrl: expect.stringContaining(`ws=127.0.0.1:${dev.inspector!.port}/app`),
      }),
    ]);
  });

  it('opens a session: protocol handshake, Runtime.evaluate in the worker\'s context, console lines', async () => {
    const list = await (await fetch(`${inspectorUrl()}/json/list`)).json();
    const client = new Client(new WebSocket(list[0].webSocketDebuggerUrl));
    await client.opened;
    try {
      expect(await client.send('Runtime.enable')).toEqual({ id: 1, result: {} });
      const created = await client.notification('Runtime.executionContextCreated');
      expect(created.params.context).toMatchObject({ name: 'app', auxData: { isDefault: true } });
      // isolated-vm's own context is not shown.
      expect(client.notifications.filter((n) => n.method === 'Runtime.executionContextCreated')).toHaveLength(1);

      // No contextId: it runs in the worker's context, where its top level ran.
      const evaluated = await client.send('Runtime.evaluate', { expression: 'globalThis.marker + " " + (1 + 2) + " " + typeof Request' });
      expect(evaluated.result.result).toEqual({ type: 'string', value: 'from the worker 3 function' });
      const thrown = await client.send('Runtime.evaluate', { expression: 'null.x' });
      expect(thrown.result.exceptionDetails.exception.description).toMatch(/TypeError/);

      // The worker's console output shows in the DevTools console.
      const response = await request(`${dev.url}/hello`);
      expect(await response.body.text()).toBe('answer 42');
      const logged = await client.notification('Runtime.consoleAPICalled', (p) => p.args[0]?.value === 'handling /hello');
      expect(logged.params).toMatchObject({ type: 'log', executionContextId: created.params.context.id });
    } finally {
      client.ws.close();
    }
  });

  it('pauses a request at a breakpoint and resumes it', async () => {
    const client = new Client(new WebSocket(`ws://127.0.0.1:${dev.inspector!.port}/app`));
    await client.opened;
    try {
      await client.send('Runtime.enable');
      await client.send('Debugger.enable');
      const script = await client.notification('Debugger.scriptParsed', (p) => p.url === 'file:///app.js');
      expect(script.params.url).toBe('file:///app.js');
      // The line of `const answer = 6 * 7;` in the bundle dev serves.
      const source = (await client.send('Debugger.getScriptSource', { scriptId: script.params.scriptId })).result.scriptSource as string;
      const lineNumber = source.split('\n').findIndex((line) => line.includes('6 * 7'));
      expect(lineNumber).toBeGreaterThan(0);
      const breakpoint = await client.send('Debugger.setBreakpointByUrl', { url: 'file:///app.js', lineNumber });
      expect(breakpoint.result.breakpointId).toBeTruthy();

      let answered = false;
      const pending = request(`${dev.url}/paused`).then(async (res) => {
        answered = true;
        return res.body.text();
      });
      const paused = await client.notification('Debugger.paused');
      expect(paused.params.hitBreakpoints).toEqual([breakpoint.result.breakpointId]);
      // While paused: the request waits, and the paused frame can be inspected.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(answered).toBe(false);
      const frame = paused.params.callFrames[0];
      const onFrame = await client.send('Debugger.evaluateOnCallFrame', { callFrameId: frame.callFrameId, expression: 'new URL(request.url).pathname' });
      expect(onFrame.result.result.value).toBe('/paused');
      await client.send('Debugger.removeBreakpoint', { breakpointId: breakpoint.result.breakpointId });
      await client.send('Debugger.resume');
      expect(await pending).toBe('answer 42');
    } finally {
      client.ws.close();
    }
  });

  it('closes the session, saying why, when the isolate is replaced', async () => {
    const client = new Client(new WebSocket(`ws://127.0.0.1:${dev.inspector!.port}/app`));
    await client.opened;
    await client.send('Runtime.enable');
    dev.runtime.evict('app');
    await waitFor(() => client.closeInfo, { what: 'the socket to close' });
    expect(client.closeInfo!.code).toBe(1001);
    expect(client.closeInfo!.reason).toMatch(/reconnect/);
    // Reconnecting attaches to a new isolate.
    const again = new Client(new WebSocket(`ws://127.0.0.1:${dev.inspector!.port}/app`));
    await again.opened;
    const evaluated = await again.send('Runtime.evaluate', { expression: 'globalThis.marker', returnByValue: true });
    expect(evaluated.result.result.value).toBe('from the worker');
    again.ws.close();
  });

  it('survives a CPU limit breach with a session open', async () => {
    const client = new Client(new WebSocket(`ws://127.0.0.1:${dev.inspector!.port}/app`));
    await client.opened;
    await client.send('Runtime.enable');
    await client.send('Debugger.enable');
    const spun = await request(`${dev.url}/spin`);
    expect(spun.statusCode).toBe(503);
    await spun.body.dump();
    await waitFor(() => client.closeInfo, { what: 'the socket to close' });
    expect(client.closeInfo!.code).toBe(1001);
    const again = await request(`${dev.url}/`);
    expect(await again.body.text()).toBe('answer 42');
  });

  it('refuses foreign Host headers (DNS rebinding) and unknown workers', async () => {
    const foreign = await request(`${inspectorUrl()}/json/list`, { headers: { host: 'evil.example:9229' } });
    expect(foreign.statusCode).toBe(403);
    await foreign.body.dump();
    const unknown = new WebSocket(`ws://127.0.0.1:${dev.inspector!.port}/nope`);
    const status = await new Promise<number>((resolve) => unknown.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(404);
  });

  it('parses --inspect values as node does', () => {
    expect(parseInspectOption(undefined)).toBeNull();
    expect(parseInspectOption('')).toEqual({ host: '127.0.0.1', port: 9229 });
    expect(parseInspectOption('9333')).toEqual({ host: '127.0.0.1', port: 9333 });
    expect(parseInspectOption('0.0.0.0:9333')).toEqual({ host: '0.0.0.0', port: 9333 });
    expect(() => parseInspectOption('worker.js')).toThrow(/\[host:\]port/);
  });
});

describe('cinder dev --inspect (the CLI)', () => {
  it('announces the inspector and keeps the worker path after a bare --inspect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cinder-inspect-cli-'));
    writeFileSync(join(dir, 'app.js'), WORKER);
    const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
    const child = spawn(process.execPath, [bin, 'dev', '--port', '0', '--inspect=127.0.0.1:0', join(dir, 'app.js')], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let stderr = '';
      child.stderr!.on('data', (chunk) => (stderr += chunk));
      const address = await waitFor(() => /inspector on (127\.0\.0\.1:\d+)/.exec(stderr)?.[1], { what: `the inspector line in:\n${stderr}`, timeout: 20_000 });
      const list = await (await fetch(`http://${address}/json/list`)).json();
      expect(list.map((t: { id: string }) => t.id)).toEqual(['app']);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
