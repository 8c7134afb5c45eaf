import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

describe('guest harness', () => {
  let guest: Guest;
  beforeAll(async () => { guest = await createGuest(); });
  afterAll(() => guest.dispose());

  it('runs code in an isolate with sandbox globals and no Node', async () => {
    expect(await guest.run('return [typeof Response, typeof process, typeof require]')).toEqual(['function', 'undefined', 'undefined']);
  });
  it('timers fire through the host', async () => {
    expect(await guest.run('return await new Promise(r => setTimeout(() => r("fired"), 5))')).toBe('fired');
  });
});
