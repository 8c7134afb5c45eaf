// The hibernation chat room as a user runs it: a wrangler.toml project under the real `cinder dev`
// CLI (a child process), two real `ws` clients through its port that see each other's messages.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../websocket/helpers.js';
import { CHAT } from './chat-room.js';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cinder-hibernation-dev-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('cinder dev with a hibernating WebSocket chat room', () => {
  it('serves two real clients who see each other', async () => {
    const root = join(dir, 'chat');
    mkdirSync(join(root, 'src'), { recursive: true });
    writeFileSync(join(root, 'src', 'index.js'), CHAT);
    writeFileSync(
      join(root, 'wrangler.toml'),
      `name = "chat"
main = "src/index.js"
compatibility_date = "2025-09-01"

# a first Durable Object event uses ~19 ms of CPU here, of the 50 ms default: room for a slower CI
[limits]
cpu_ms = 1000

[[durable_objects.bindings]]
name = "ROOM"
class_name = "Room"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Room"]
`,
    );
    const child = spawn(process.execPath, [bin, 'dev', root, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir() });
    children.push(child);
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr!.on('data', (chunk) => {
        stderr += chunk;
        const match = /on (http:\/\/[\d.:]+)/.exec(stderr);
        if (match) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`cinder dev exited with ${code}: ${stderr}`)));
    });
    const port = Number(new URL(url).port);
    const ann = await connect(port, 'chat', '/?room=dev&user=ann');
    const bob = await connect(port, 'chat', '/?room=dev&user=bob');
    await Promise.all([ann.received(1), bob.received(1)]);
    bob.send('hello from bob');
    await ann.received(2);
    expect(JSON.parse(String(ann.messages[1]))).toEqual({ type: 'message', from: 'bob', text: 'hello from bob' });
    ann.send('ping');
    await ann.received(3);
    expect(String(ann.messages[2])).toBe('pong');
    ann.ws.close();
    bob.ws.close();
    await Promise.all([ann.closed, bob.closed]);
    child.kill('SIGTERM');
  }, 120_000);
});
