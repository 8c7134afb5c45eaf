// Static assets no version serves any more are collected: deleting a worker deletes the files only
// it used (once older than an upload session can live), keeps files another worker of the account
// serves, and keeps young files an upload in progress may be about to use.
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, startCinder, TOKEN, type TestCinder } from '../control/helpers.js';
import { AdminClient } from '../../src/app/cli/client.js';
import { uploadAssets } from '../../src/app/cli/assets.js';
import { spaBuild, type BuildDir } from './helpers.js';
import { waitFor } from '../observability/helpers.js';

let cinder: TestCinder;
let client: AdminClient;
const shared: BuildDir = spaBuild();
const own: BuildDir = spaBuild(); // its blob.bin is random: a file only worker "gone" serves

async function deploy(name: string, directory: string) {
  const report = await uploadAssets(client, name, { directory });
  const res = await cinder.admin('PUT', `/workers/${name}`, { body: multipart({ assets: { session: report.session, config: {} } }, {}) });
  expect(res.status, res.text).toBe(201);
}

/** Every file under the asset store, with its age set back two hours. */
function ageEverything(dir: string): void {
  const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) utimesSync(join(entry.parentPath, entry.name), old, old);
  }
}

const blobFile = (hash: string) => join(cinder.dataDir, 'assets', 'default', 'blobs', hash.slice(0, 2), hash);

beforeAll(async () => {
  cinder = await startCinder();
  client = new AdminClient(cinder.server.adminUrl, TOKEN);
});
afterAll(() => cinder.close({ cleanup: true }));

describe('collecting static assets', () => {
  it('deletes the files only a deleted worker served, keeps what others serve and what an upload may still use', async () => {
    await deploy('stays', shared.dist);
    await deploy('gone', own.dist);
    expect(readdirSync(join(cinder.dataDir, 'assets')).sort()).toEqual(['default', 'versions']);
    const accountDir = readdirSync(join(cinder.dataDir, 'assets')).find((d) => d !== 'versions')!;
    expect(accountDir).toBe('default');
    const onlyGone = own.sha256('/data/blob.bin');
    const sharedFile = shared.sha256('/index.html'); // same bytes in both builds
    expect(own.sha256('/index.html')).toBe(sharedFile);
    expect(existsSync(blobFile(onlyGone))).toBe(true);
    const goneLinks = readdirSync(join(cinder.dataDir, 'assets', 'versions')).length;
    expect(goneLinks).toBe(2);
    ageEverything(join(cinder.dataDir, 'assets'));
    // A young blob: an upload session in progress stored it and has not deployed yet.
    const pending = spaBuild();
    const session = await uploadAssets(client, 'later', { directory: pending.dist });
    expect(session.session).toBeTruthy();
    const young = pending.sha256('/data/blob.bin');
    expect(existsSync(blobFile(young))).toBe(true);
    // A temporary file a crash left long ago.
    const stray = `${blobFile(onlyGone)}.1a2b3c4d5e6f.tmp`;
    writeFileSync(stray, 'half a file');
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    utimesSync(stray, old, old);

    expect((await cinder.admin('DELETE', '/workers/gone')).status).toBe(200);
    const line = await waitFor(() => cinder.logs.find((l) => /collected static assets/.test(String(l.msg))), { what: 'the collection log line' });
    expect(line).toMatchObject({ versions: 1, manifests: 1, blobs: 1, bytes: statSync(join(own.dist, 'data', 'blob.bin')).size });
    expect(existsSync(blobFile(onlyGone))).toBe(false);
    expect(existsSync(stray)).toBe(false);
    expect(existsSync(blobFile(young))).toBe(true);
    expect(readdirSync(join(cinder.dataDir, 'assets', 'versions'))).toHaveLength(1);
    // The worker that stays serves every file, shared ones included.
    for (const path of Object.keys(shared.files)) {
      if (path === '/404.html') continue;
      const res = await cinder.get('stays.example.com', path.replace(/index\.html$/, '').replace(/\.html$/, ''));
      expect(res.status, path).toBe(200);
    }
    const blob = await cinder.get('stays.example.com', '/data/blob.bin');
    expect(blob.text.length).toBeGreaterThan(0);
  });

  it('keeps an old file a new upload session found already there, and that deploy serves it', async () => {
    const build = spaBuild();
    await deploy('gone2', build.dist);
    ageEverything(join(cinder.dataDir, 'assets'));
    // The session finds every file present (nothing to send), which starts their age again.
    const report = await uploadAssets(client, 'comeback', { directory: build.dist });
    expect(report.uploaded).toBe(0);
    const before = cinder.logs.filter((l) => /collected static assets/.test(String(l.msg))).length;
    expect((await cinder.admin('DELETE', '/workers/gone2')).status).toBe(200);
    await waitFor(() => cinder.logs.filter((l) => /collected static assets/.test(String(l.msg))).length > before, { what: 'the second collection' });
    expect(existsSync(blobFile(build.sha256('/data/blob.bin')))).toBe(true);
    const res = await cinder.admin('PUT', '/workers/comeback', { body: multipart({ assets: { session: report.session, config: {} } }, {}) });
    expect(res.status, res.text).toBe(201);
    expect((await cinder.get('comeback.example.com', '/data/blob.bin')).status).toBe(200);
  });
});
