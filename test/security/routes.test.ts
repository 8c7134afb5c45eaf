// Issue 22, routes: "*/*" was accepted from a tenant and answered `Host: good.x` (with the
// victim's cookie); `good.example.com:443/*` and `good.example.com/login*` were accepted beside
// `good.example.com/*` and took its traffic, because the conflict check compared strings. Now
// patterns are normalised (port, case, trailing dot, IDNA) and compared across accounts by what
// they match; wildcard-only hosts are the operator's; a worker's hosts `<name>.<anything>` are
// its account's. Every attack below is refused and the victim's traffic is unchanged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostsOverlap, normalizeHost, parsePattern } from '../../src/model/route-pattern.js';
import { multipart, textWorker, type TestCinder } from '../control/helpers.js';
import { cookieWorker, twoTenants, type Tenant } from './tenants.js';

let cinder: TestCinder;
let good: Tenant;
let evil: Tenant;

/** The victim's site answers as itself on every spelling of its host. */
async function victimUntouched() {
  for (const host of ['good.example.com', 'GOOD.Example.COM', 'good.example.com.', 'good.example.com:443', 'good.example.com.:8787']) {
    for (const path of ['/', '/login', '/login/x']) {
      const res = await cinder.get(host, path);
      expect(res.status, `${host}${path}`).toBe(200);
      expect(res.text, `${host}${path}`).toMatch(/^site /);
      expect(res.headers['set-cookie']).toBe('session=site');
    }
  }
  // the Unicode host, as clients send it (punycode)
  expect((await cinder.get('xn--gd-fkaa.example.com', '/')).text).toMatch(/^site /);
}

beforeAll(async () => {
  ({ cinder, good, evil } = await twoTenants());
  expect((await good.deploy('site', cookieWorker('site'), { routes: ['good.example.com/*', 'gööd.example.com/*'] })).status).toBe(201);
  // a worker reached by its name only: its hosts are shop.<anything>
  expect((await good.deploy('shop', cookieWorker('shop'))).status).toBe(201);
  expect((await evil.deploy('thief', cookieWorker('thief'))).status).toBe(201);
});
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('pattern normalisation', () => {
  it('stores one spelling per host: no scheme, port, case, trailing dot; punycode', () => {
    expect(parsePattern('HTTPS://Good.Example.com.:443/login*').parts).toEqual({ host: 'good.example.com', path: '/login*' });
    expect(parsePattern('gööd.example.com').parts).toEqual({ host: 'xn--gd-fkaa.example.com', path: '/*' });
    expect(parsePattern('ｇｏｏｄ．example.com/*').parts?.host).toBe('good.example.com');
    expect(parsePattern('bad host/*').error).toMatch(/invalid route pattern/);
    expect(parsePattern('a..b/*').error).toMatch(/invalid route pattern/);
    expect(normalizeHost('Good.Example.com.:8787')).toBe('good.example.com');
  });

  it('decides overlap by what two host patterns match', () => {
    expect(hostsOverlap('good.example.com', 'good.example.com')).toBe(true);
    expect(hostsOverlap('*.example.com', 'good.example.com')).toBe(true);
    expect(hostsOverlap('*', 'good.example.com')).toBe(true);
    expect(hostsOverlap('*.example.com', 'example.com')).toBe(false);
    expect(hostsOverlap('good.example.com', 'bad.example.com')).toBe(false);
    expect(hostsOverlap('a*.example.com', '*b.example.com')).toBe(true);
    expect(hostsOverlap('a*.example.com', 'b*.example.com')).toBe(false);
    expect(hostsOverlap('*.example.com', '*.example.org')).toBe(false);
  });
});

describe('a tenant cannot claim another account\'s traffic', () => {
  const attacks: [pattern: string, status: number, message: RegExp][] = [
    ['*/*', 403, /matches every host; only the operator/],
    ['*', 403, /matches every host/],
    ['*.*/*', 403, /matches every host/],
    ['*.com/*', 403, /whole top-level domain/],
    ['good.*/*', 403, /wildcard inside the host/],
    ['good.example.com:443/*', 409, /could match hosts of the route "good\.example\.com\/\*"/],
    ['good.example.com/login*', 409, /good\.example\.com\/\*/],
    ['GOOD.EXAMPLE.COM./*', 409, /good\.example\.com/],
    ['https://good.example.com/*', 409, /good\.example\.com/],
    ['*.example.com/*', 409, /good\.example\.com/],
    ['*od.example.com/*', 409, /good\.example\.com/],
    ['xn--gd-fkaa.example.com/*', 409, /xn--gd-fkaa\.example\.com/],
    // good's worker "shop" owns shop.<anything>
    ['shop.evil.example/*', 409, /the worker name "shop"/],
  ];
  for (const [pattern, status, message] of attacks) {
    it(`refuses "${pattern}" (${status}) at upload and on PUT routes, and the victim keeps its traffic`, async () => {
      const upload = await evil.deploy('thief', cookieWorker('thief v2'), { routes: ['thief.example.net/*', pattern] });
      expect(upload.status, upload.text).toBe(status);
      expect(upload.body.error).toMatch(message);
      const update = await evil.admin('PUT', '/workers/thief/routes', { json: { routes: [pattern] } });
      expect(update.status, update.text).toBe(status);
      // nothing was stored: no new version, no route
      expect((await evil.admin('GET', '/workers/thief/versions')).body.versions).toHaveLength(1);
      expect((await evil.admin('GET', '/workers/thief/routes')).body.routes).toEqual([]);
      await victimUntouched();
    });
  }

  it('accepts a host of its own beside them', async () => {
    const res = await evil.deploy('thief', cookieWorker('thief'), { routes: ['good-example.com/*', '*.evil.example/*'] });
    expect(res.status, res.text).toBe(201);
    expect((await cinder.get('good-example.com')).text).toMatch(/^thief /);
    expect((await cinder.get('www.evil.example')).text).toMatch(/^thief /);
    await victimUntouched();
  });

  it('keeps its own wildcard off the victim\'s worker hosts (shop.evil.example goes to shop)', async () => {
    const res = await cinder.get('shop.evil.example', '/', {});
    expect(res.text).toMatch(/^shop /);
  });

  it('refuses the victim\'s hosts once the attacker holds a wildcard over them', async () => {
    // the other way round: the victim cannot be shadowed, and the attacker's claim stands
    const res = await good.deploy('site', cookieWorker('site'), { routes: ['good.example.com/*', 'gööd.example.com/*', 'x.evil.example/*'] });
    expect(res.status).toBe(409);
    await victimUntouched();
  });
});

describe('the operator decides zone-wide routes', () => {
  it('may claim */* as a fallback, which never takes a tenant\'s hosts', async () => {
    const up = await cinder.admin('PUT', '/workers/fallback', { body: multipart({ main_module: 'index.js', routes: ['*/*'] }, { 'index.js': textWorker('fallback') }) });
    expect(up.status, up.text).toBe(201);
    expect((await cinder.get('nobody.invalid')).text).toBe('fallback');
    // more specific routes of tenants win; a tenant worker's own hosts stay its own
    await victimUntouched();
    expect((await cinder.get('shop.anything.test')).text).toMatch(/^shop /);
    expect((await cinder.get('thief.anything.test')).text).toMatch(/^thief /);
  });
});
