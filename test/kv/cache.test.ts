// The host read cache: bounded in entries and bytes, honours cacheTtl, and never lets a read that
// raced a local write hide that write.
import { describe, expect, it } from 'vitest';
import { KVService, MemoryBackend, type KVBackend, type StoredEntry } from '../../bindings/kv/index.js';
import { TestClock } from './fixtures.js';

/** A backend that counts reads and can hold a read (after it has looked at storage) until told. */
class ProbedBackend extends MemoryBackend {
  reads = 0;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open?.();
    this.gate = null;
  }

  override async get(namespace: string, key: string, now: number): Promise<StoredEntry | null> {
    this.reads++;
    const entry = await super.get(namespace, key, now);
    const seen = entry && { ...entry };
    if (this.gate) await this.gate;
    return seen;
  }
}

function service(backend: KVBackend, cache: ConstructorParameters<typeof KVService>[0]['cache'] = {}, clock = new TestClock()) {
  return new KVService({ backend, cache, clock: clock.now, sweepIntervalMs: 0 });
}

describe('KV read cache', () => {
  it('serves repeated reads from memory', async () => {
    const backend = new ProbedBackend();
    const kv = service(backend);
    await kv.put('ns', 'k', 'v');
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await kv.get('ns', 'k'))!.cacheStatus);
    expect(statuses).toEqual(['MISS', 'HIT', 'HIT', 'HIT', 'HIT']);
    expect(backend.reads).toBe(1);
    expect(kv.cache!.hits).toBe(4);
  });

  it('is bounded in entries', async () => {
    const kv = service(new MemoryBackend(), { maxEntries: 10 });
    for (let i = 0; i < 50; i++) {
      await kv.put('ns', `k${i}`, 'v');
      await kv.get('ns', `k${i}`);
    }
    expect(kv.cache!.size).toBe(10);
    // The most recent survive; the oldest were evicted.
    expect((await kv.get('ns', 'k49'))!.cacheStatus).toBe('HIT');
    expect((await kv.get('ns', 'k0'))!.cacheStatus).toBe('MISS');
  });

  it('is bounded in bytes, and never holds a value bigger than maxEntryBytes', async () => {
    const kv = service(new MemoryBackend(), { maxBytes: 20_000, maxEntryBytes: 8_000 });
    for (let i = 0; i < 30; i++) {
      await kv.put('ns', `k${i}`, 'x'.repeat(1000));
      await kv.get('ns', `k${i}`);
    }
    expect(kv.cache!.bytes).toBeLessThanOrEqual(20_000);
    expect(kv.cache!.size).toBeLessThan(30);
    await kv.put('ns', 'big', 'x'.repeat(10_000));
    await kv.get('ns', 'big');
    expect((await kv.get('ns', 'big'))!.cacheStatus).toBe('MISS');
  });

  it('honours cacheTtl and the default TTL', async () => {
    const clock = new TestClock();
    const backend = new MemoryBackend();
    const kv = service(backend, { defaultTtlSeconds: 60 }, clock);
    await kv.put('ns', 'k', 'v1');
    await kv.get('ns', 'k', { cacheTtl: 3600 });
    // Someone else writes straight to storage (another node).
    await backend.put('ns', 'k', { value: Buffer.from('v2'), metadata: null, expiration: null });
    clock.advance(45_000);
    expect((await kv.get('ns', 'k', { cacheTtl: 3600 }))!.value.toString()).toBe('v1');
    expect((await kv.get('ns', 'k'))!.value.toString()).toBe('v1');
    expect((await kv.get('ns', 'k', { cacheTtl: 30 }))!.value.toString()).toBe('v2');
    await backend.put('ns', 'k', { value: Buffer.from('v3'), metadata: null, expiration: null });
    clock.advance(61_000);
    expect((await kv.get('ns', 'k'))!.value.toString()).toBe('v3');
  });

  it('does not serve a cached value past the key expiration', async () => {
    const clock = new TestClock();
    const kv = service(new MemoryBackend(), {}, clock);
    await kv.put('ns', 'k', 'v', { expirationTtl: 60 });
    expect((await kv.get('ns', 'k', { cacheTtl: 3600 }))!.cacheStatus).toBe('MISS');
    clock.advance(30_000);
    expect((await kv.get('ns', 'k', { cacheTtl: 3600 }))!.cacheStatus).toBe('HIT');
    clock.advance(31_000);
    expect(await kv.get('ns', 'k', { cacheTtl: 3600 })).toBeNull();
  });

  it('does not cache a read that raced a local write (read-your-writes holds)', async () => {
    const backend = new ProbedBackend();
    const kv = service(backend);
    await kv.put('ns', 'k', 'old');
    backend.hold();
    const racing = kv.get('ns', 'k'); // has read "old" from storage, not yet returned
    await new Promise((r) => setTimeout(r, 5));
    backend.release();
    await kv.put('ns', 'k', 'new');
    expect((await racing)!.value.toString()).toBe('old');
    const after = await kv.get('ns', 'k');
    expect(after!.value.toString()).toBe('new');

    // And the other order: the write lands while the read is held.
    backend.hold();
    const racing2 = kv.get('ns', 'k');
    await new Promise((r) => setTimeout(r, 5));
    const write = kv.put('ns', 'k', 'newer');
    await write;
    backend.release();
    expect((await racing2)!.value.toString()).toBe('new');
    expect((await kv.get('ns', 'k'))!.value.toString()).toBe('newer');
  });

  it('drops the pending read when the backend fails, and can be turned off', async () => {
    const failing = new MemoryBackend();
    failing.get = async () => {
      throw new Error('storage down');
    };
    const kv = service(failing);
    await expect(kv.get('ns', 'k')).rejects.toThrow('storage down');
    const uncached = service(new ProbedBackend(), false);
    await uncached.put('ns', 'k', 'v');
    await uncached.get('ns', 'k');
    await uncached.get('ns', 'k');
    expect((uncached.backend as ProbedBackend).reads).toBe(2);
    expect(uncached.cache).toBeNull();
  });
});
