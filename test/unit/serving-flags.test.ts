// The serving processes' Node flags (src/app/serving-flags.ts): a 4 MB young generation unless the
// operator chose a semi-space size, on the command line or in NODE_OPTIONS.
import { describe, expect, it } from 'vitest';
import { servingExecArgv } from '../../src/app/serving-flags.js';

describe('servingExecArgv', () => {
  it('adds --max-semi-space-size=4 to the supervisor\'s own flags', () => {
    expect(servingExecArgv(['--no-node-snapshot'], '')).toEqual(['--no-node-snapshot', '--max-semi-space-size=4']);
  });

  it('keeps a semi-space size the operator chose', () => {
    expect(servingExecArgv(['--no-node-snapshot', '--max-semi-space-size=32'], '')).toEqual(['--no-node-snapshot', '--max-semi-space-size=32']);
    expect(servingExecArgv(['--min_semi_space_size=8'], '')).toEqual(['--min_semi_space_size=8']);
    expect(servingExecArgv(['--no-node-snapshot'], '--max-old-space-size=4096 --max-semi-space-size=16')).toEqual(['--no-node-snapshot']);
  });
});
