// `performance` and `navigator`, as workerd exposes them.
//
// Time: workerd fixes performance.timeOrigin at 0, which makes performance.now() the same clock
// as Date.now(). Its reasoning applies here even more directly: the sandbox is baked into a V8
// snapshot, so any origin captured while this module runs would be the snapshot's build time,
// not the isolate's birth. Cinder follows workerd: timeOrigin is 0 and now() reads V8's own
// Date.now() (the host's wall clock, with millisecond resolution), with no bridge call. Unlike
// workerd, Cinder does not freeze the clock during execution (that is a Spectre mitigation for
// shared processes; here timing code sees real elapsed time), so now() also advances during
// synchronous work. The clock is not monotonic if the host's wall clock steps backwards.
import { INTERNAL, checkInternal, setToStringTag } from './idl.js';

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
    return Date.now();
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
