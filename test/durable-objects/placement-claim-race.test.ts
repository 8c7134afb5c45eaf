// A claim whose compare-and-set is under way when the process's lease lapses and it registers as
// a new holder: the record names the old identity, so the object must not be held (fenced) under
// the new one; it is located again and claimed by the new identity, token raised.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { sqlitePlacementBackend } from '../../src/app/placement-sqlite.js';
import { LeasedObjectPlacement, type PlacementBackend } from '../../src/app/object-placement.js';

const dir = mkdtempSync(join(tmpdir(), 'cinder-claim-race-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a claim racing a lease lapse', () => {
  it('holds the object only under the identity the record names', async () => {
    const real = sqlitePlacementBackend(dir);
    let lapseDuringSwap: (() => Promise<void>) | null = null;
    let renewals = 0;
    const backend: PlacementBackend = {
      ...real,
      // every renewal fails: the lease lapsed (the process re-registers as a new holder)
      lease: (node, holder, ms, address, renew) => (renew ? Promise.resolve(false) : real.lease(node, holder, ms, address, renew)),
      async swap(key, expected, next) {
        const swapped = await real.swap(key, expected, next);
        const lapse = lapseDuringSwap;
        lapseDuringSwap = null;
        // the old identity's lease is over in the store (that is what a lapse is)
        if (lapse) await real.release('n1', JSON.parse(next).holder).then(lapse);
        return swapped;
      },
    };
    const placement = new LeasedObjectPlacement({ backend, node: 'n1', logger: pino({ level: 'silent' }), leaseMs: 60_000 });
    await placement.start('127.0.0.1:1', 'secret');
    const renew = () => {
      renewals++;
      return (placement as unknown as { renew(): Promise<void> }).renew();
    };
    lapseDuringSwap = renew;
    const where = await placement.locate('ns/obj', 'Thing');
    expect(renewals).toBe(1);
    expect('here' in where).toBe(true);
    const fence = (where as { here: { holder: string; token: number } }).here;
    // The record and the fence agree: the new identity, the claim after the lapsed one's.
    const record = JSON.parse(await real.record('ns/obj'));
    expect(record.holder).toBe(fence.holder);
    expect(record.token).toBe(fence.token);
    expect(fence.token).toBe(2);
    await placement.close();
    real.close();
  });
});
