// Usage rows in Redis (`cinder serve --redis`): every node's metering lands in one place, so
// `GET /workers/:name/usage` on any node answers for the whole platform.
//
//   cinder:usage:{<worker>}:m:<minute>   hash  <writer> -> that writer's row for the minute (JSON)
//   cinder:usage:{<worker>}:minutes      sorted set of the minutes that have rows
// A writer is one serving process (node/pid/boot): it alone writes its field, so merging its
// flushes is a read and a write with no race between nodes, and a reader sums every field. The
// hash tag keeps one worker's rows in one slot (Redis Cluster). Keys expire after the retention.
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../store/redis-connect.js';
import { emptyMinute, fromRow, mergeMinute, toRow, type MinuteUsage, type UsageRow, type UsageStore } from './usage.js';

const RETENTION_S = 32 * 24 * 3600;

export class RedisUsageStore implements UsageStore {
  private readonly writer: string;

  constructor(
    private readonly client: RedisClient,
    node: string,
    private readonly prefix = 'cinder',
  ) {
    this.writer = `${node}/${process.pid}/${randomUUID().slice(0, 8)}`;
  }

  private minuteKey(worker: string, minute: number): string {
    return `${this.prefix}:usage:{${worker}}:m:${minute}`;
  }
  private indexKey(worker: string): string {
    return `${this.prefix}:usage:{${worker}}:minutes`;
  }

  async add(rows: MinuteUsage[]): Promise<void> {
    for (const row of rows) {
      const key = this.minuteKey(row.worker, row.minute);
      const mine = await this.client.hget(key, this.writer);
      const merged = mine ? mergeMinute(fromRow(JSON.parse(mine) as UsageRow), row) : row;
      await this.client
        .multi()
        .hset(key, this.writer, JSON.stringify(toRow(merged)))
        .expire(key, RETENTION_S)
        .zadd(this.indexKey(row.worker), row.minute, String(row.minute))
        .expire(this.indexKey(row.worker), RETENTION_S)
        .exec();
    }
  }

  async range(worker: string, fromMinute: number, toMinute: number): Promise<MinuteUsage[]> {
    const minutes = (await this.client.zrangebyscore(this.indexKey(worker), fromMinute, toMinute)).map(Number);
    if (!minutes.length) return [];
    const pipeline = this.client.pipeline();
    for (const minute of minutes) pipeline.hvals(this.minuteKey(worker, minute));
    const results = (await pipeline.exec()) ?? [];
    const rows: MinuteUsage[] = [];
    results.forEach(([error, values], i) => {
      if (error) throw error;
      const total = emptyMinute(worker, minutes[i]);
      for (const json of values as string[]) mergeMinute(total, fromRow(JSON.parse(json) as UsageRow));
      if (total.requests > 0 || (values as string[]).length) rows.push(total);
    });
    return rows;
  }

  // Rows expire by themselves (RETENTION_S); nothing to prune by hand.
  async prune(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {}
}
