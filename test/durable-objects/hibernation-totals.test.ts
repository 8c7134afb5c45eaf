// The hibernation tables' bounds across objects (bindings/durable-objects/hibernation.ts): one
// account making many objects (newUniqueId()) reaches its account's bound on pending sockets and on
// bytes held, refused by name, while another account still accepts; what is released is counted back.
import { describe, expect, it } from 'vitest';
import { HIBERNATION_TOTALS, HibernatableSockets, MAX_PENDING_SOCKETS, type ObjectRef } from '../../bindings/durable-objects/hibernation.js';

function server(): HibernatableSockets {
  return new HibernatableSockets({ wake: async () => {}, isLive: () => true, version: () => 'v1' });
}

function ref(account: string, n: number): ObjectRef {
  return { key: `${account}/Room/${n}`, namespace: { account, script: 'chat', className: 'Room', dir: 'Room', sqlite: true }, id: String(n), name: null };
}

describe('hibernatable WebSockets across objects', () => {
  it('one account reaches its bound on pending sockets over many objects; another account still accepts', () => {
    const sockets = server();
    const objects = HIBERNATION_TOTALS.pendingPerAccount / MAX_PENDING_SOCKETS;
    for (let n = 0; n < objects; n++) {
      const table = sockets.table(ref('a', n), true)!;
      for (let i = 0; i < MAX_PENDING_SOCKETS; i++) table.accept([], 'v1');
    }
    const another = sockets.table(ref('a', objects), true)!;
    expect(() => another.accept([], 'v1')).toThrow(`this account's Durable Objects have ${HIBERNATION_TOTALS.pendingPerAccount} accepted WebSockets whose clients have not connected yet, the most one account may have`);
    expect(sockets.table(ref('b', 0), true)!.accept([], 'v1')).toBe(1);
    // Released sockets are counted back: the account accepts again.
    sockets.table(ref('a', 0), false)!.closeAll(1001, 'gone');
    expect(another.accept([], 'v1')).toBe(1);
    expect(sockets.totals.server.pending).toBe(HIBERNATION_TOTALS.pendingPerAccount - MAX_PENDING_SOCKETS + 2);
  });

  it('one account reaches its bound on bytes held for clients not connected yet; another account still sends', async () => {
    const sockets = server();
    const megabyte = new ArrayBuffer(1024 * 1024);
    const perObject = 8; // 8 sockets × 1 MiB: each object's own bound
    const objects = HIBERNATION_TOTALS.bytesPerAccount / (perObject * megabyte.byteLength);
    for (let n = 0; n < objects; n++) {
      const table = sockets.table(ref('a', n), true)!;
      for (let i = 0; i < perObject; i++) await table.send(table.accept([], 'v1'), [megabyte]);
    }
    const another = sockets.table(ref('a', objects), true)!;
    const id = another.accept([], 'v1');
    await expect(another.send(id, [megabyte])).rejects.toThrow(`this account's Durable Objects hold ${HIBERNATION_TOTALS.bytesPerAccount} bytes of WebSocket attachments and messages awaiting their clients, the most one account may hold`);
    expect(() => another.serializeAttachment(id, 'x')).toThrow(/the most one account may hold/);
    const other = sockets.table(ref('b', 0), true)!;
    await expect(other.send(other.accept([], 'v1'), [megabyte])).resolves.toBeUndefined();
    for (let n = 0; n <= objects; n++) sockets.table(ref('a', n), false)!.closeAll(1001, 'gone');
    expect(sockets.totals.of('a')).toEqual({ pending: 0, bytes: 0, sockets: 0 });
    other.closeAll(1001, 'gone');
    expect(sockets.totals.server).toEqual({ pending: 0, bytes: 0, sockets: 0 });
  });
});
