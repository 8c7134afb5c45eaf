// node:assert and node:assert/strict (the `assert` npm port of Node's): kept apart from
// nodejs-compat for its size (it brings a set of ES shims). Its Buffer is nodejs-compat's.
import { assertNamespace, assertStrictNamespace } from './node/assert.js';
import type { AddonExports } from '../../protocol/addons.js';

export default function install(): AddonExports {
  const assert = assertNamespace();
  const strict = assertStrictNamespace();
  return { modules: { 'node:assert': assert, assert, 'node:assert/strict': strict, 'assert/strict': strict } };
}
