// atob / btoa inside a real isolate: HTML's definitions on top of Infra's forgiving-base64
// (cases in the style of WPT html/webappapis/atob/base64.any.js).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

let guest: Guest;
beforeAll(async () => {
  guest = await createGuest();
});
afterAll(() => guest.dispose());

const PRELUDE = `
  const attempt = (f) => { try { return { ok: f() }; } catch (e) { return { name: e.name, code: e.code, dom: e instanceof DOMException }; } };
  const codes = (s) => Array.from(s, (c) => c.charCodeAt(0));
`;
const run = <T = unknown>(code: string) => guest.run<T>(PRELUDE + code);
const invalidCharacter = { name: 'InvalidCharacterError', code: 5, dom: true };

describe('btoa', () => {
  it('encodes with padding', async () => {
    expect(await run(`return ['', 'f', 'fo', 'foo', 'foob', 'fooba', 'foobar', 'hi'].map((s) => btoa(s))`)).toEqual([
      '', 'Zg==', 'Zm8=', 'Zm9v', 'Zm9vYg==', 'Zm9vYmE=', 'Zm9vYmFy', 'aGk=',
    ]);
  });

  it('treats each code unit up to 0xFF as a byte', async () => {
    expect(await run(`return [btoa('\\u00ff\\u00fe\\u0000'), btoa(String.fromCharCode(0xfb, 0xff))]`)).toEqual(['//4A', '+/8=']);
  });

  it('converts non-strings with ToString', async () => {
    expect(await run(`return [btoa(undefined), btoa(null), btoa(12), btoa(true), btoa({ toString: () => 'x' })]`)).toEqual([
      'dW5kZWZpbmVk', 'bnVsbA==', 'MTI=', 'dHJ1ZQ==', 'eA==',
    ]);
  });

  it('throws InvalidCharacterError for code points above 0xFF', async () => {
    expect(await run(`return ['\\u0100', '\\u20ac', 'abc\\u{1F600}', '\\ud800'].map((s) => attempt(() => btoa(s)))`)).toEqual(
      Array(4).fill(invalidCharacter),
    );
  });

  it('requires an argument', async () => {
    expect(await run(`return attempt(() => btoa())`)).toEqual({ name: 'TypeError', dom: false });
  });
});

describe('atob', () => {
  it('decodes padded and unpadded input', async () => {
    expect(await run(`return ['', 'Zg==', 'Zg', 'Zm8=', 'Zm8', 'Zm9v', 'Zm9vYmFy', 'aGk='].map((s) => atob(s))`)).toEqual([
      '', 'f', 'f', 'fo', 'fo', 'foo', 'foobar', 'hi',
    ]);
  });

  it('ignores ASCII whitespace anywhere, but no other whitespace', async () => {
    expect(await run(`return [attempt(() => atob(' Zm 9v\\t\\nYm\\fFy\\r ')), attempt(() => atob('Zg =\\n=')), attempt(() => atob('\\u00a0Zg==')), attempt(() => atob('Zg\\u000b==')),
      attempt(() => atob(' Zg==\\u00a0')), attempt(() => atob('\\u2028Zg ==')), attempt(() => atob('\\ufeffZ g=='))]`)).toEqual([
      { ok: 'foobar' }, { ok: 'f' }, invalidCharacter, invalidCharacter, invalidCharacter, invalidCharacter, invalidCharacter,
    ]);
  });

  it('rejects bad padding, bad length and characters outside the alphabet', async () => {
    const bad = ['Zg=', 'Zg===', 'Z', 'Zm9vY', '=', '==', 'Zg=a', '=Zg=', 'Zm9v====', 'Z===', 'Zg-_', 'Zg.=', 'Zé==', 'a\u0000b=='];
    expect(await run(`return ${JSON.stringify(bad)}.map((s) => attempt(() => atob(s)))`)).toEqual(Array(bad.length).fill(invalidCharacter));
  });

  it('ignores leftover bits after the last full byte', async () => {
    // "Zh" and "Zg" both carry the byte 0x66; the low bits of the last character are discarded.
    expect(await run(`return [atob('Zh'), atob('Zm9='), atob('Zm8=')]`)).toEqual(['f', 'fo', 'fo']);
  });

  it('converts arguments with ToString: null decodes, undefined does not', async () => {
    expect(await run(`return [attempt(() => codes(atob(null))), attempt(() => atob(undefined)), attempt(() => atob(1234))]`)).toEqual([
      { ok: [0x9e, 0xe9, 0x65] },
      invalidCharacter,
      { ok: String.fromCharCode(0xd7, 0x6d, 0xf8) },
    ]);
  });

  it('requires an argument', async () => {
    expect(await run(`return attempt(() => atob())`)).toEqual({ name: 'TypeError', dom: false });
  });

  it('round-trips every byte value and long input', async () => {
    expect(
      await run(`let all = ''; for (let i = 0; i < 256; i++) all += String.fromCharCode(i);
        const long = all.repeat(400);
        return [atob(btoa(all)) === all, atob(btoa(long)) === long, btoa(all).slice(0, 8), btoa(all).slice(-8)]`),
    ).toEqual([true, true, 'AAECAwQF', '/P3+/w==']);
  });
});
