// Which workers run in the background class of isolate threads (src/runtime/background-class.ts),
// on a fake clock: moved by a CPU breach, kept while breaches keep coming, back once calm.
import { describe, expect, it } from 'vitest';
import { BackgroundClass, backgroundClassOptionsFromEnv, DEFAULT_CALM_MS } from '../../src/runtime/background-class.js';

describe('BackgroundClass', () => {
  it('moves a worker on a breach and brings it back once calm for calmMs', () => {
    let now = 0;
    const classes = new BackgroundClass({ enabled: true, calmMs: 1000 }, () => now);
    expect(classes.has('a')).toBe(false);
    expect(classes.breached('a')).toBe(true);
    expect(classes.has('a')).toBe(true);
    expect(classes.has('b')).toBe(false);
    now = 900;
    // another breach while there: not a new move, and the calm period starts again
    expect(classes.breached('a')).toBe(false);
    now = 1800;
    expect(classes.has('a')).toBe(true);
    expect(classes.count()).toBe(1);
    now = 1900;
    expect(classes.has('a')).toBe(false);
    expect(classes.count()).toBe(0);
    expect(classes.breached('a')).toBe(true);
    expect(classes.counts()).toEqual([{ worker: 'a', moves: 2 }]);
    classes.forget('a');
    expect(classes.has('a')).toBe(false);
    expect(classes.counts()).toEqual([]);
  });

  it('moves nobody when off', () => {
    const classes = new BackgroundClass({ enabled: false, calmMs: 1000 }, () => 0);
    expect(classes.breached('a')).toBe(false);
    expect(classes.has('a')).toBe(false);
    expect(classes.counts()).toEqual([]);
  });

  it('reads its options from the environment', () => {
    const saved = process.env.CINDER_BACKGROUND_THREAD_NICE;
    try {
      process.env.CINDER_BACKGROUND_THREAD_NICE = '0';
      expect(backgroundClassOptionsFromEnv({}).enabled).toBe(false);
      process.env.CINDER_BACKGROUND_THREAD_NICE = '10';
      expect(backgroundClassOptionsFromEnv({ CINDER_BACKGROUND_CALM_MS: '2500' })).toEqual({ enabled: true, calmMs: 2500 });
      expect(backgroundClassOptionsFromEnv({ CINDER_BACKGROUND_CALM_MS: 'soon' }).calmMs).toBe(DEFAULT_CALM_MS);
    } finally {
      if (saved === undefined) delete process.env.CINDER_BACKGROUND_THREAD_NICE;
      else process.env.CINDER_BACKGROUND_THREAD_NICE = saved;
    }
  });
});
