import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { skipWithoutPrometheus, startPrometheus, type TestPrometheus } from '../helpers/prometheus.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

const METRICS_TOKEN = 'metrics_token_0123456789abcdef';

/** The samples of an exposition text, keyed by name and labels exactly as written (`name{a="b"}`). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

describe('GET /metrics, scraped by a real Prometheus', { skip: skipWithoutPrometheus() }, () => {
  let relay: TestRelay;
  let ok: Receiver;
  let failing: Receiver;
  let prometheus: TestPrometheus | null = null;
  const ids: string[] = [];

  before(async () => {
    ok = await startReceiver(() => ({ status: 204 }));
    failing = await startReceiver(() => ({ status: 500, body: 'down' }));
    // Three attempts per delivery (0, 100 ms, 200 ms), then parked; no circuit, so the count of attempts is exact.
    relay = await startRelay({ circuitThreshold: '0' }, { HOOKRELAY_METRICS_TOKEN: METRICS_TOKEN });
    const app = await relay.svix.application.create({ name: 'metrics' });
    const good = await relay.svix.endpoint.create(app.id, { url: `${ok.url}/ok` });
    const bad = await relay.svix.endpoint.create(app.id, { url: `${failing.url}/bad` });
    const paused = await relay.svix.endpoint.create(app.id, { url: `${ok.url}/paused`, disabled: true });
    ids.push(app.id, good.id, bad.id, paused.id);
    for (let i = 0; i < 3; i++) ids.push((await relay.svix.message.create(app.id, { eventType: 'invoice.paid', payload: { n: i } })).id);
    await ok.waitFor(3);
    await failing.waitFor(9);
    await waitUntil('the failing deliveries to be parked', async () => {
      const page = await relay.api('GET', `/api/v1/app/${app.id}/endpoint/${bad.id}/msg?status=2`);
      return page.body.data.length === 3;
    });
    const source = await relay.svix.ingest.source.create({ name: 'gh', type: 'github', config: { secret: 'a-github-secret' } });
    const refused = await fetch(source.ingestUrl!, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push' }, body: '{}' });
    assert.equal(refused.status, 401);
  });

  after(async () => {
    await prometheus?.close();
    await relay?.close();
    await ok?.close();
    await failing?.close();
  });

  const scrape = async (token: string | null) => {
    const response = await fetch(`${relay.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
  };

  it('answers the metrics token and the admin token only', async () => {
    const anonymous = await scrape(null);
    assert.equal(anonymous.status, 401);
    assert.equal(JSON.parse(anonymous.text).code, 'unauthorized');
    assert.equal((await scrape('metrics_token_0123456789abcdeX')).status, 401);
    const key = await relay.api('POST', `/api/v1/app/${ids[0]}/api-key`, { name: 'tenant' });
    assert.equal((await scrape(key.body.key)).status, 401, "an application's key cannot read the operator's metrics");
    assert.equal((await scrape(relay.adminToken)).status, 200);
    const scraped = await scrape(METRICS_TOKEN);
    assert.equal(scraped.status, 200);
    assert.match(scraped.type ?? '', /^text\/plain; version=0\.0\.4/);
  });

  it('counts accepts, attempts by outcome, durations, verification failures, and reads the backlog and endpoints from the store', async () => {
    const { text } = await scrape(METRICS_TOKEN);
    const s = samples(text);
    assert.equal(s.get('hookrelay_messages_accepted_total{origin="api"}'), 3);
    assert.equal(s.get('hookrelay_attempts_total{destination="http",outcome="succeeded"}'), 3);
    assert.equal(s.get('hookrelay_attempts_total{destination="http",outcome="retrying"}'), 6);
    assert.equal(s.get('hookrelay_attempts_total{destination="http",outcome="parked"}'), 3);
    assert.equal(s.get('hookrelay_attempt_duration_seconds_count{destination="http"}'), 12);
    assert.equal(s.get('hookrelay_ingest_verification_failures_total{source_type="github"}'), 1);
    assert.ok((s.get('hookrelay_store_commit_duration_seconds_count{operation="accept"}') ?? 0) >= 3);
    assert.ok((s.get('hookrelay_store_commit_duration_seconds_count{operation="complete"}') ?? 0) >= 1);
    assert.equal(s.get('hookrelay_deliveries_pending'), 0);
    assert.equal(s.get('hookrelay_deliveries_due'), 0);
    assert.equal(s.get('hookrelay_deliveries_in_flight'), 0);
    assert.equal(s.get('hookrelay_oldest_due_delivery_age_seconds'), 0);
    assert.equal(s.get('hookrelay_endpoints{state="closed"}'), 2);
    assert.equal(s.get('hookrelay_endpoints{state="disabled"}'), 1);
    assert.equal(s.get('hookrelay_endpoints{state="open"}'), 0);
    // The process defaults, event-loop lag among them.
    for (const name of ['nodejs_eventloop_lag_seconds', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) {
      assert.ok(s.has(name), `${name} is exported`);
    }
  });

  it('shows the backlog of a process that does not deliver, and leaves a disabled endpoint\'s deliveries out of the due ones', async () => {
    const idle = await startRelay({ dispatch: 'off' }, { HOOKRELAY_METRICS_TOKEN: METRICS_TOKEN });
    try {
      const app = await idle.svix.application.create({ name: 'backlog' });
      const endpoint = await idle.svix.endpoint.create(app.id, { url: `${ok.url}/later` });
      for (let i = 0; i < 2; i++) await idle.svix.message.create(app.id, { eventType: 'invoice.paid', payload: { n: i } });
      const read = async () => samples(await (await fetch(`${idle.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text());
      const due = await waitUntil<Map<string, number> | null>('the first delivery to have been due for a moment', async () => {
        const s = await read();
        return (s.get('hookrelay_oldest_due_delivery_age_seconds') ?? 0) > 0 ? s : null;
      });
      assert.equal(due!.get('hookrelay_deliveries_pending'), 2);
      assert.equal(due!.get('hookrelay_deliveries_due'), 2);
      await idle.svix.endpoint.patch(app.id, endpoint.id, { disabled: true });
      const disabled = await read();
      assert.equal(disabled.get('hookrelay_deliveries_pending'), 2, 'still pending: re-enabling the endpoint delivers them');
      assert.equal(disabled.get('hookrelay_deliveries_due'), 0);
      assert.equal(disabled.get('hookrelay_oldest_due_delivery_age_seconds'), 0);
    } finally {
      await idle.close();
    }
  });

  it('keeps labels bounded: no application, endpoint or message id, and no URL', async () => {
    const { text } = await scrape(METRICS_TOKEN);
    for (const id of ids) assert.ok(!text.includes(id), `${id} appears in the metrics`);
    for (const url of [ok.url, failing.url]) assert.ok(!text.includes(new URL(url).host), `${url} appears in the metrics`);
  });

  it('is scraped by Prometheus, which answers queries with the values hookrelay counted', async () => {
    prometheus = await startPrometheus({ url: relay.url, token: METRICS_TOKEN });
    const p = prometheus;
    await waitUntil('Prometheus to scrape hookrelay', async () => (await p.value('up{job="hookrelay"}')) === 1, 30_000, 200);
    assert.equal(await p.value('hookrelay_messages_accepted_total{origin="api"}'), 3);
    assert.equal(await p.value('sum(hookrelay_attempts_total{outcome="parked"})'), 3);
    assert.equal(await p.value('hookrelay_endpoints{state="disabled"}'), 1);

    // A value that changes after the first scrape shows up in a later one.
    const app = ids[0];
    await relay.svix.message.create(app, { eventType: 'invoice.paid', payload: { n: 4 } });
    await waitUntil('Prometheus to see the fourth accept', async () => (await p.value('hookrelay_messages_accepted_total{origin="api"}')) === 4, 30_000, 200);
  });
});
