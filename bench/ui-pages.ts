import { ID_PREFIX, newId } from '../src/domain/ids.js';
import { startBenchRelay } from './relay.js';

/**
 * `node dist/bench/ui-pages.js`: how long the API calls behind each dashboard and portal page take with many stored
 * messages (BENCH_UI_MESSAGES, default 1,000,000) on SQLite. Rows are written straight into the store's tables (one
 * message, one finished delivery and one attempt each, over the last 24 hours; 1 in 1000 parked), then each call is
 * timed over HTTP: the median of BENCH_UI_RUNS (default 7) after one warm-up.
 */
const MESSAGES = Number(process.env.BENCH_UI_MESSAGES ?? 1_000_000);
const RUNS = Number(process.env.BENCH_UI_RUNS ?? 7);
const TYPES = ['order.created', 'order.paid', 'order.shipped', 'invoice.paid', 'invoice.failed', 'user.created', 'user.deleted', 'refund.created', 'payout.paid', 'order.cancelled'];

const bench = await startBenchRelay({ dispatch: 'off' });
try {
  for (const name of TYPES) await bench.api('POST', '/api/v1/event-type', { name, description: name });
  const app = await bench.api('POST', '/api/v1/app', { name: 'Big customer', uid: 'big' });
  const endpoint = await bench.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: 'https://receiver.example.com/hook' });
  const small = await bench.api('POST', '/api/v1/app', { name: 'Small customer', uid: 'small' });

  const seeded = performance.now();
  const now = Date.now();
  const start = now - 24 * 3_600_000;
  const step = (now - start) / MESSAGES;
  const message = bench.db.prepare('INSERT INTO message (id, app_id, event_type, event_id, payload, content_type, channels, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const delivery = bench.db.prepare(
    'INSERT INTO delivery (message_id, app_id, endpoint_id, status, attempt_count, retry_index, next_attempt_at, manual, created_at, updated_at) VALUES (?, ?, ?, ?, 1, 0, NULL, 0, ?, ?)',
  );
  const attempt = bench.db.prepare(
    "INSERT INTO attempt (id, delivery_id, message_id, endpoint_id, app_id, url, started_at, duration_ms, status_code, succeeded, response_body, error, trigger) VALUES (?, ?, ?, ?, ?, ?, ?, 12, ?, ?, ?, NULL, 'scheduled')",
  );
  let lastId = '';
  let lastEventId = '';
  const insert = bench.db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const at = Math.floor(start + i * step);
      const id = newId(ID_PREFIX.message, at);
      // One message in a hundred belongs to the small customer, whose endpoints are not involved.
      if (i % 100 === 99) {
        message.run(id, small.id, TYPES[i % TYPES.length], null, Buffer.from(`{"n":${i}}`), 'application/json', null, null, at);
        continue;
      }
      const eventId = `evt-${i}`;
      const payload = Buffer.from(JSON.stringify({ id: `ord_${i}`, amount: i % 9973, currency: 'EUR', customer: `cus_${i % 5000}` }));
      message.run(id, app.id, TYPES[i % TYPES.length], eventId, payload, 'application/json', i % 2 ? '["eu"]' : '["us"]', i % 1000 === 0 ? '["rare"]' : null, at);
      const parked = i % 1000 === 1;
      const { lastInsertRowid } = delivery.run(id, app.id, endpoint.id, parked ? 'failed' : 'succeeded', at, at + 12);
      attempt.run(newId(ID_PREFIX.attempt, at + 1), lastInsertRowid, id, endpoint.id, app.id, endpoint.url, at + 1, parked ? 500 : 200, parked ? 0 : 1, parked ? 'down' : 'ok');
      lastId = id;
      lastEventId = eventId;
    }
  });
  for (let i = 0; i < MESSAGES; i += 50_000) insert(i, Math.min(MESSAGES, i + 50_000));
  bench.db.exec('ANALYZE');
  console.log(`seeded ${MESSAGES.toLocaleString('en')} messages (with deliveries and attempts) in ${((performance.now() - seeded) / 1000).toFixed(1)} s`);

  const base = `/api/v1/app/${app.id}`;
  const first = await bench.api('GET', `${base}/msg?limit=50&with_content=false`);
  const midday = new Date(start + 12 * 3_600_000).toISOString();
  const calls: [page: string, path: string][] = [
    ['Overview (last hour)', '/api/v1/stats/overview?minutes=60'],
    ['Overview (last 24 hours)', '/api/v1/stats/overview?minutes=1440'],
    ['Applications', '/api/v1/app?limit=50'],
    ['Endpoints', `${base}/endpoint?limit=50`],
    ['Endpoint', `${base}/endpoint/${endpoint.id}`],
    ['Messages, first page', `${base}/msg?limit=50&with_content=false`],
    ['Messages, next page', `${base}/msg?limit=50&with_content=false&iterator=${first.iterator}`],
    ['Messages by event type (1 in 10)', `${base}/msg?limit=50&with_content=false&event_types=refund.created`],
    ['Messages by channel (1 in 2)', `${base}/msg?limit=50&with_content=false&channel=eu`],
    ['Messages by tag (1 in 1000)', `${base}/msg?limit=50&with_content=false&tag=rare`],
    ['Messages before midday yesterday', `${base}/msg?limit=50&with_content=false&before=${midday}`],
    ['Message by id', `${base}/msg/${lastId}`],
    ['Message by event id', `${base}/msg/${lastEventId}`],
    ['Message: endpoints', `${base}/msg/${lastId}/endpoint`],
    ['Message: attempts', `${base}/attempt/msg/${lastId}`],
    ['Endpoint: recent attempts', `${base}/attempt/endpoint/${endpoint.id}?limit=20`],
    ['Endpoint: parked messages (1 in 1000)', `${base}/endpoint/${endpoint.id}/msg?status=2&limit=50&with_content=false`],
    ['Event types', '/api/v1/event-type?limit=250&with_content=false'],
  ];
  const rows: string[] = [];
  for (const [page, path] of calls) {
    await bench.api('GET', path);
    const times: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const t = performance.now();
      await bench.api('GET', path);
      times.push(performance.now() - t);
    }
    times.sort((x, y) => x - y);
    rows.push(`| ${page} | ${times[Math.floor(times.length / 2)].toFixed(1)} | ${times[times.length - 1].toFixed(1)} |`);
  }
  console.log(`\n| page (API call) | median ms | max ms |\n| --- | --- | --- |\n${rows.join('\n')}`);
} finally {
  await bench.close();
}
