// The serving processes' Node flags (src/app/serving-flags.ts): an 8 MB young generation and a
// 256 MB initial old generation for the serving thread's heap unless the operator chose them, on
// the command line or in NODE_OPTIONS; and what the serving process puts back for its isolates.
import { describe, expect, it } from 'vitest';
import { isolateHeapFlags, servingEnv, servingExecArgv } from '../../src/app/serving-flags.js';

describe('servingExecArgv', () => {
  it("adds the serving heap's shape to the supervisor's own flags", () => {
    expect(servingExecArgv(['--no-node-snapshot'], '')).toEqual(['--no-node-snapshot', '--max-semi-space-size=8', '--initial-old-space-size=256']);
  });

  it('keeps a semi-space size or an initial heap the operator chose, and adds only the other', () => {
    expect(servingExecArgv(['--no-node-snapshot', '--max-semi-space-size=32'], '')).toEqual(['--no-node-snapshot', '--max-semi-space-size=32', '--initial-old-space-size=256']);
    expect(servingExecArgv(['--min_semi_space_size=8'], '')).toEqual(['--min_semi_space_size=8', '--initial-old-space-size=256']);
    expect(servingExecArgv(['--no-node-snapshot'], '--max-old-space-size=4096 --max-semi-space-size=16')).toEqual(['--no-node-snapshot', '--initial-old-space-size=256']);
    expect(servingExecArgv(['--initial-old-space-size=64'], '')).toEqual(['--initial-old-space-size=64', '--max-semi-space-size=8']);
    expect(servingExecArgv([], '--initial_heap_size=128 --max-semi-space-size=2')).toEqual([]);
  });
});

describe('the flags put back for isolates', () => {
  it("give guest isolates the heap they had: a 4 MB young generation, V8's own initial old generation", () => {
    expect(isolateHeapFlags(servingEnv(['--no-node-snapshot'], ''))).toEqual(['--max-semi-space-size=4', '--initial-old-space-size=0']);
  });

  it('put back only what was added: nothing of what the operator chose', () => {
    expect(isolateHeapFlags(servingEnv(['--max-semi-space-size=32'], ''))).toEqual(['--initial-old-space-size=0']);
    expect(isolateHeapFlags(servingEnv([], '--initial-old-space-size=64'))).toEqual(['--max-semi-space-size=4']);
    expect(servingEnv(['--max-semi-space-size=32', '--initial-old-space-size=64'], '')).toEqual({});
    expect(isolateHeapFlags({})).toEqual([]);
  });

  it('take nothing but the two known flags from the environment', () => {
    expect(isolateHeapFlags({ CINDER_SERVING_HEAP_FLAGS: '--expose-gc,semi' })).toEqual(['--max-semi-space-size=4']);
  });
});
