// `performance` and `navigator`, as workerd exposes them.
//
// Time: workerd fixes performance.timeOrigin at 0, which makes performance.now() the same clock
// as Date.now() (workerd PR 603; Cloudflare's docs). Its reasoning applies here even more
// directly: the sandbox is baked into a V8 snapshot, so any origin captured while this module
// runs would be the snapshot's build time, not the isolate's birth. As on Workers, the clock is
// frozen while guest code runs and moves on I/O (../clock.ts), a Spectre mitigation.
import { INTERNAL, checkInternal, setToStringTag } from './idl.js';
import { clockNow } from '../clock.js';

export class Performance {
  constructor(token?: unknown) {
    checkInternal(token);
  }

  get timeOrigin(): number {
    checkPerformance(this);
    return 0;
  }

  now(): number {
    checkPerformance(this);
    return clockNow();
  }

  toJSON(): { timeOrigin: number } {
    checkPerformance(this);
    return { timeOrigin: 0 };
  }
}

setToStringTag(Performance, 'Performance');

const performanceInstance = new Performance(INTERNAL);

function checkPerformance(self: unknown): void {
  if (self !== performanceInstance) throw new TypeError('Illegal invocation');
}

export const performance: Performance = performanceInstance;

export class Navigator {
  constructor(token?: unknown) {
    checkInternal(token);
  }

  /** What workerd reports; worker code (and libraries) test for exactly this string. */
  get userAgent(): string {
    return 'Cloudflare-Workers';
  }

  /** workerd reports 1: a worker gets one thread, whatever the machine has. */
  get hardwareConcurrency(): number {
    return 1;
  }
}

setToStringTag(Navigator, 'Navigator');

export const navigator: Navigator = new Navigator(INTERNAL);
