// A small users API on Drizzle ORM's D1 driver, written as for Cloudflare Workers, unchanged.
import { drizzle } from 'drizzle-orm/d1';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { asc, eq, sql } from 'drizzle-orm';

export const users = sqliteTable('users', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  name: text('name').notNull(),
  email: text('email').notNull().unique(),
  active: integer('active', { mode: 'boolean' }).notNull().default(true),
  profile: text('profile', { mode: 'json' }).$type<{ bio: string }>(),
});

interface Env {
  DB: D1Database;
}
type D1Database = Parameters<typeof drizzle>[0];

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const db = drizzle(env.DB);
    const url = new URL(request.url);
    const id = Number(url.pathname.split('/')[2]);
    try {
      if (request.method === 'POST' && url.pathname === '/users') {
        const body = (await request.json()) as { name: string; email: string; bio?: string };
        const [row] = await db.insert(users).values({ name: body.name, email: body.email, profile: body.bio ? { bio: body.bio } : null }).returning();
        return Response.json(row, { status: 201 });
      }
      if (request.method === 'GET' && url.pathname === '/users') {
        return Response.json(await db.select().from(users).orderBy(asc(users.id)));
      }
      if (request.method === 'GET' && url.pathname.startsWith('/users/')) {
        const row = await db.select().from(users).where(eq(users.id, id)).get();
        return row ? Response.json(row) : new Response('not found', { status: 404 });
      }
      if (request.method === 'PATCH' && url.pathname.startsWith('/users/')) {
        const body = (await request.json()) as { name?: string; active?: boolean };
        const rows = await db.update(users).set(body).where(eq(users.id, id)).returning({ id: users.id, name: users.name, active: users.active });
        return rows.length ? Response.json(rows[0]) : new Response('not found', { status: 404 });
      }
      if (request.method === 'POST' && url.pathname === '/batch') {
        const [inserted, counted] = await db.batch([
          db.insert(users).values({ name: 'batch', email: 'batch@example.com' }).returning({ id: users.id }),
          db.select({ n: sql<number>`count(*)` }).from(users),
        ]);
        return Response.json({ inserted, counted });
      }
      if (request.method === 'GET' && url.pathname === '/active') {
        const rows = await db.select({ name: users.name }).from(users).where(eq(users.active, true)).all();
        return Response.json(rows.map((r) => r.name));
      }
      return new Response('no route', { status: 404 });
    } catch (error) {
      const e = error as Error & { cause?: Error };
      return Response.json({ error: e.message, cause: e.cause?.message ?? null }, { status: 500 });
    }
  },
};
