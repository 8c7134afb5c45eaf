// Uncaught errors (a throwing event listener, timer or rejection) reach the host log as console
// lines do: cut to the longest line the host keeps before they cross the wall, so a listener
// throwing a megabyte string many times does not copy megabytes to the host each time.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';
import { MAX_LOG_LINE_CHARS } from '../../protocol/console-limits.js';

let guest: Guest;
beforeAll(async () => {
  guest = await createGuest();
});
afterAll(() => guest.dispose());

it('cuts an uncaught error line before it crosses to the host', async () => {
  await guest.run(`
    const target = new EventTarget();
    target.addEventListener('boom', () => { throw new Error('x'.repeat(1024 * 1024)); });
    for (let i = 0; i < 3; i++) target.dispatchEvent(new Event('boom'));
    return 0;`);
  const uncaught = guest.logs.filter((l) => l.level === 'error' && l.message.startsWith('Uncaught Error: xxx'));
  expect(uncaught).toHaveLength(3);
  for (const line of uncaught) expect(line.message.length).toBe(MAX_LOG_LINE_CHARS);
});
