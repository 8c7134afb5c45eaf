// How many Durable Objects may be live (each an isolate) in one serving process, and how many of
// them one account may hold: the server's bound keeps the process within its isolates, the
// account's keeps one tenant from taking every slot from the others (object-host.ts).

export const DEFAULT_MAX_LIVE_OBJECTS = 1_000;

/** The per-account cap for a per-server one, or the error naming what is wrong with them. */
export function liveObjectCaps(maxLive = DEFAULT_MAX_LIVE_OBJECTS, maxLivePerAccount?: number): { maxLive: number; maxLivePerAccount: number } {
  if (!Number.isSafeInteger(maxLive) || maxLive < 1) throw new TypeError(`the live Durable Object cap must be a positive integer, not ${maxLive}`);
  const perAccount = maxLivePerAccount ?? Math.max(1, Math.floor(maxLive / 2));
  if (!Number.isSafeInteger(perAccount) || perAccount < 1) throw new TypeError(`the live Durable Object cap per account must be a positive integer, not ${perAccount}`);
  if (perAccount > maxLive) throw new TypeError(`the live Durable Object cap per account (${perAccount}) is over the cap per server (${maxLive})`);
  return { maxLive, maxLivePerAccount: perAccount };
}
