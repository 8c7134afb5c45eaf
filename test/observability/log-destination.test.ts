// The host log on stdout (observability/log-destination.ts: pino's asynchronous destination, its
// per-line length bookkeeping done once): lines written in bursts, multibyte ones and ones longer
// than a write chunk among them, all reach stdout whole and in order, including those still
// pending when the process exits.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('./fixtures/log-burst.mjs', import.meta.url));

describe('host log destination', () => {
  it('writes every line of a burst whole and in order, multibyte and long ones too', () => {
    const lines = 3000;
    const run = spawnSync(process.execPath, [fixture, String(lines)], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    expect(run.status).toBe(0);
    const got = run.stdout.split('\n');
    expect(got.pop()).toBe('');
    expect(got.length).toBe(lines);
    got.forEach((line, n) => {
      const parsed = JSON.parse(line);
      expect(parsed.n).toBe(n);
      const text = n % 7 === 0 ? 'caf\u00e9 \u{1F600} \u4e2d\u6587'.repeat(n % 50 === 0 ? 2000 : 3) : 'x'.repeat(n % 97);
      expect(parsed.text).toBe(text);
      expect(parsed.msg).toBe('line');
    });
  });
});
