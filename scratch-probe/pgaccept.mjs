import { freshDatabase } from '/work/main/dist/test/helpers/postgres.js';
import { startChild } from '/work/main/dist/test/process/child.js';
import { Pool } from 'undici';
const N = Number(process.env.N ?? 1), M = Number(process.env.M ?? 5000), C = Number(process.env.C ?? 64);
const db = await freshDatabase();
const kids = await Promise.all(Array.from({ length: N }, () => startChild({ db: db.url })));
const app = await kids[0].svix.application.create({ name: 'p' });
await kids[0].api('POST', `/api/v1/app/${app.id}/endpoint`, { url: 'http://127.0.0.1:9/x', disabled: false });
const pools = kids.map((k) => new Pool(k.url, { connections: C }));
let issued = 0, ok = 0, bad = 0; const t0 = performance.now();
await Promise.all(Array.from({ length: C }, async (_, w) => {
  while (issued < M) { const i = issued++; const r = await pools[i % N].request({ path: `/api/v1/app/${app.id}/msg`, method: 'POST', headers: { authorization: `Bearer ${kids[0].adminToken}`, 'content-type': 'application/json', ...(process.env.IDEM ? { 'idempotency-key': `k${i}` } : {}) }, body: JSON.stringify({ eventType: 'e', payload: { i, pad: 'x'.repeat(900) } }) }); await r.body.text(); r.statusCode === 202 ? ok++ : bad++; }
}));
const s = (performance.now() - t0) / 1000;
console.log(`N=${N} C=${C} ${ok} ok ${bad} bad in ${s.toFixed(2)}s = ${Math.round(ok / s)}/s`);
for (const k of kids) k.proc.kill('SIGKILL');
await Promise.all(pools.map((p) => p.close())); await db.drop(); process.exit(0);
