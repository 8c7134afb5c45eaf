// Issue 22, property-based (fast-check) companions of admin-fuzz.test.ts. The seeded generator
// there stays as it is (its sequence of cases and assertions are kept; porting it whole would
// change what it explores); these properties sit beside it and add shrinking: metadata parsing
// answers any JSON with a parsed upload or a 4xx ControlError, and route patterns normalise
// idempotently, with the overlap check symmetric and reflexive. A failure prints fast-check's seed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ControlError } from '../../src/control/errors.js';
import { parseMetadata } from '../../src/control/metadata.js';
import { formatPattern, hostsOverlap, normalizeHost, parsePattern } from '../../src/model/route-pattern.js';

const SEED = Number(process.env.CINDER_FUZZ_SEED ?? 22);
const RUNS = Number(process.env.CINDER_FUZZ_RUNS ?? 300);
const settings = { seed: SEED, numRuns: RUNS };

const name = fc.oneof(fc.constantFrom('KV', 'GREETING', 'constructor', '__proto__', 'toString', '', ' ', 'a b', 'x'.repeat(300)), fc.string({ maxLength: 12 }));
const binding = fc.oneof(
  fc.record(
    {
      type: fc.oneof(fc.constantFrom('plain_text', 'secret_text', 'json', 'kv_namespace', 'service', 'durable_object_namespace'), fc.jsonValue({ maxDepth: 1 })),
      name,
      text: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 1 })),
      json: fc.jsonValue({ maxDepth: 2 }),
      namespace_id: fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue({ maxDepth: 1 })),
      service: fc.oneof(fc.constantFrom('victim', 'fz'), fc.jsonValue({ maxDepth: 1 })),
    },
    { requiredKeys: ['type', 'name'] },
  ),
  fc.jsonValue({ maxDepth: 2 }),
);
const limitKey = fc.constantFrom('cpu_ms', 'wall_ms', 'memory_mb', 'subrequests', 'script_bytes', 'request_body_bytes', 'startup_ms', 'unknown', '__proto__');
const limitValue = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(0, -1, 1e308, 2 ** 53), fc.jsonValue({ maxDepth: 1 }));
const metadata = fc.oneof(
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  {
    weight: 5,
    arbitrary: fc.record(
      {
        main_module: fc.oneof(fc.constantFrom('index.js', './index.js', '../x.js', ''), fc.string(), fc.jsonValue({ maxDepth: 1 })),
        body_part: fc.oneof(fc.constant('index.js'), fc.jsonValue({ maxDepth: 1 })),
        bindings: fc.oneof(fc.array(binding, { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })),
        routes: fc.oneof(fc.array(fc.oneof(fc.string(), fc.record({ pattern: fc.string(), zone_name: fc.string() }), fc.jsonValue({ maxDepth: 1 })), { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 })),
        limits: fc.oneof(fc.dictionary(limitKey, limitValue, { maxKeys: 4 }), fc.jsonValue({ maxDepth: 1 })),
        crons: fc.oneof(fc.array(fc.oneof(fc.constantFrom('* * * * *', '61 * * * *', 'nope'), fc.string()), { maxLength: 2 }), fc.jsonValue({ maxDepth: 1 })),
        vars: fc.oneof(fc.dictionary(name, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }), fc.jsonValue({ maxDepth: 1 })),
        keep_bindings: fc.jsonValue({ maxDepth: 1 }),
        compatibility_date: fc.oneof(fc.constantFrom('2025-01-01', '2025-13-45'), fc.string()),
      },
      { requiredKeys: [] },
    ),
  },
);

describe('metadata parsing, property-based', () => {
  it('answers any JSON with parsed metadata or a 4xx ControlError', () => {
    fc.assert(
      fc.property(metadata, (raw) => {
        try {
          const parsed = parseMetadata(raw);
          expect(typeof parsed).toBe('object');
        } catch (error) {
          expect(error, String((error as Error)?.stack)).toBeInstanceOf(ControlError);
          const status = (error as ControlError).status;
          expect(status >= 400 && status < 500).toBe(true);
        }
      }),
      settings,
    );
  });
});

const label = fc.stringMatching(/^[a-z0-9*]([a-z0-9-]{0,8}[a-z0-9])?$/);
const host = fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.'));
const spelledPattern = fc.record({
  host,
  path: fc.constantFrom('', '/*', '/api/*', '/login*', '/a/b'),
  scheme: fc.constantFrom('', 'http://', 'https://', 'HTTPS://'),
  port: fc.constantFrom('', ':443', ':80', ':8787'),
  upper: fc.boolean(),
  dot: fc.boolean(),
});

describe('route patterns, property-based', () => {
  it('normalise idempotently: a stored pattern parses back to itself; port, case and trailing dot do not matter', () => {
    fc.assert(
      fc.property(spelledPattern, ({ host, path, scheme, port, upper, dot }) => {
        const plain = parsePattern(host + path);
        const spelled = parsePattern(scheme + (upper ? host.toUpperCase() : host) + (dot ? '.' : '') + port + path);
        expect(spelled).toEqual(plain);
        if (plain.parts) {
          const stored = formatPattern(plain.parts);
          expect(parsePattern(stored)).toEqual(plain);
          expect(normalizeHost(plain.parts.host)).toBe(plain.parts.host);
        }
      }),
      settings,
    );
  });

  it('decide overlap symmetrically and reflexively, and a wildcard overlaps what it matches', () => {
    fc.assert(
      fc.property(host, host, (a, b) => {
        expect(hostsOverlap(a, b)).toBe(hostsOverlap(b, a));
        expect(hostsOverlap(a, a)).toBe(true);
        expect(hostsOverlap(`*.${a}`, `x.${a}`)).toBe(true);
        expect(hostsOverlap('*', b)).toBe(true);
      }),
      settings,
    );
  });

  it('never throw on any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
        const out = parsePattern(s);
        expect(Boolean(out.parts) !== Boolean(out.error)).toBe(true);
      }),
      settings,
    );
  });
});
