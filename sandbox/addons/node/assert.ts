// node:assert and node:assert/strict on the `assert` npm package (Node's assert, ported); its
// util imports are the sandbox's inspect and node:util/types (scripts/node-compat-aliases.mjs).
import assert from 'assert';

const NAMES = [
  'AssertionError', 'deepEqual', 'deepStrictEqual', 'doesNotMatch', 'doesNotReject', 'doesNotThrow', 'equal', 'fail', 'ifError',
  'match', 'notDeepEqual', 'notDeepStrictEqual', 'notEqual', 'notStrictEqual', 'ok', 'rejects', 'strictEqual', 'throws', 'strict',
];

function namespaceOf(fn: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { default: fn };
  for (const name of NAMES) if (fn[name] !== undefined) out[name] = fn[name];
  return out;
}

export function assertNamespace(): Record<string, unknown> {
  return namespaceOf(assert);
}

export function assertStrictNamespace(): Record<string, unknown> {
  return namespaceOf(assert.strict);
}
