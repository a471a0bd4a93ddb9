import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

/** A span as the OTLP/JSON export writes it, its attributes flattened. */
interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  status?: { code?: number; message?: string };
  attributes: Record<string, string | number | boolean>;
  service: string;
}

/** OTLP span kinds and status codes (opentelemetry-proto trace.proto). */
const SERVER = 2;
const CLIENT = 3;
const STATUS_ERROR = 2;

/** An OTLP/HTTP receiver on loopback: keeps every span of every export (JSON), and what each request was. */
async function startCollector() {
  const spans: ExportedSpan[] = [];
  const requests: { path: string; contentType: string; bytes: number; headers: Record<string, unknown> }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const contentType = req.headers['content-type'] ?? '';
      requests.push({ path: req.url!, contentType, bytes: body.length, headers: req.headers });
      if (contentType.startsWith('application/json')) {
        for (const resourceSpans of JSON.parse(body.toString('utf8')).resourceSpans ?? []) {
          const service = resourceSpans.resource.attributes.find((a: { key: string }) => a.key === 'service.name')?.value.stringValue;
          for (const scope of resourceSpans.scopeSpans) {
            for (const span of scope.spans) {
              const attributes: ExportedSpan['attributes'] = {};
              for (const { key, value } of span.attributes ?? []) attributes[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : value.boolValue);
              spans.push({ traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId || undefined, name: span.name, kind: span.kind, status: span.status, attributes, service });
            }
          }
        }
      }
      res.writeHead(200, { 'content-type': contentType || 'application/json' });
      res.end(contentType.startsWith('application/json') ? '{}' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

describe('traces (OpenTelemetry over OTLP/HTTP)', () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let relay: TestRelay;
  let receiver: Receiver;
  let calls = 0;

  before(async () => {
    collector = await startCollector();
    // The first delivery fails, so one message has two attempts (retry 0 and 1).
    receiver = await startReceiver(() => ({ status: calls++ === 0 ? 500 : 200 }));
    relay = await startRelay({}, {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=abc%20123',
      OTEL_SERVICE_NAME: 'hookrelay-under-test',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
  });
  after(async () => {
    await relay?.close();
    await receiver?.close();
    await collector?.close();
  });

  const spanWhere = (what: string, test: (s: ExportedSpan) => boolean) => waitUntil(what, () => collector.spans.find(test));

  it('links the caller, the accepting request and every attempt, and sends each attempt’s traceparent to the endpoint', async () => {
    const app = (await relay.api('POST', '/api/v1/app', { name: 'traced' })).body;
    const endpoint = (await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: receiver.url })).body;
    const sent = await relay.api('POST', `/api/v1/app/${app.id}/msg`, { eventType: 'order.paid', payload: { n: 1 } }, { headers: { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` } });
    assert.equal(sent.status, 202, sent.text);

    const request = (await spanWhere('the request span', (s) => s.name === 'POST /api/v1/app/:app_id/msg'))!;
    assert.equal(request.traceId, TRACE_ID, 'the caller’s trace goes on');
    assert.equal(request.parentSpanId, CALLER_SPAN, 'the request span is the caller’s child');
    assert.equal(request.kind, SERVER);
    assert.equal(request.attributes['http.response.status_code'], 202);
    assert.equal(request.service, 'hookrelay-under-test');

    const attempts = (await waitUntil('two attempt spans', () => {
      const found = collector.spans.filter((s) => s.name === 'deliver http' && s.attributes['hookrelay.message.id'] === sent.body.id);
      return found.length === 2 ? found.sort((a, b) => Number(a.attributes['hookrelay.attempt.retry']) - Number(b.attributes['hookrelay.attempt.retry'])) : null;
    }))!;
    for (const [retry, attempt] of attempts.entries()) {
      assert.equal(attempt.traceId, TRACE_ID);
      assert.equal(attempt.parentSpanId, request.spanId, 'every attempt is a child of the accepting request');
      assert.equal(attempt.kind, CLIENT);
      assert.equal(attempt.attributes['hookrelay.attempt.retry'], retry);
      assert.equal(attempt.attributes['hookrelay.endpoint.id'], endpoint.id);
      assert.equal(attempt.attributes['hookrelay.destination.kind'], 'http');
    }
    assert.equal(attempts[0].attributes['http.response.status_code'], 500);
    assert.equal(attempts[0].status?.code, STATUS_ERROR);
    assert.equal(attempts[1].attributes['http.response.status_code'], 200);
    assert.notEqual(attempts[1].status?.code, STATUS_ERROR);

    // Each delivery carries its own attempt's context, so the receiver's spans hang under the attempt.
    const deliveries = await receiver.waitFor(2);
    assert.deepEqual(deliveries.map((d) => d.headers.traceparent), attempts.map((a) => `00-${TRACE_ID}-${a.spanId}-01`));
    assert.ok(collector.requests.every((r) => r.path === '/v1/traces' && r.headers['x-collector-key'] === 'abc 123'), 'exported to /v1/traces with OTEL_EXPORTER_OTLP_HEADERS');
  });

  it('traces an ingest the same way: the provider’s request, then the forwarded attempts', async () => {
    const source = (await relay.api('POST', '/ingest/api/v1/source', { name: 'traced source', type: 'none', config: { insecure: true } })).body;
    await relay.api('POST', `/ingest/api/v1/source/${source.id}/endpoint`, { url: `${receiver.url}/from-source` });
    const posted = await fetch(source.ingestUrl, { method: 'POST', headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID.replace(/^4/, '5')}-${CALLER_SPAN}-01` }, body: '{"hello":"world"}' });
    assert.equal(posted.status, 200);
    const messageId = ((await posted.json()) as { id: string }).id;
    const ingest = (await spanWhere('the ingest span', (s) => s.name === 'POST /ingest/:token'))!;
    assert.equal(ingest.attributes['hookrelay.ingest'], 'true');
    assert.equal(ingest.parentSpanId, CALLER_SPAN);
    assert.ok(!JSON.stringify(ingest).includes(source.ingestUrl.split('/').pop()), 'the ingest token is not in the span');
    const attempt = (await spanWhere('the forwarded attempt', (s) => s.name === 'deliver http' && s.attributes['hookrelay.message.id'] === messageId))!;
    assert.equal(attempt.parentSpanId, ingest.spanId);
    assert.equal(attempt.traceId, ingest.traceId);
  });
});

describe('traces off', () => {
  it('exports nothing, stores no trace context and sends no traceparent when no OTEL_* endpoint is set', async () => {
    const receiver = await startReceiver();
    const relay = await startRelay();
    try {
      const app = (await relay.api('POST', '/api/v1/app', { name: 'untraced' })).body;
      await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: receiver.url });
      const sent = await relay.api('POST', `/api/v1/app/${app.id}/msg`, { eventType: 'a', payload: {} }, { headers: { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` } });
      const [delivered] = await receiver.waitFor(1);
      assert.equal(delivered.headers.traceparent, undefined);
      assert.equal((await relay.store.getMessage(app.id, sent.body.id))?.traceContext, null);
    } finally {
      await relay.close();
      await receiver.close();
    }
  });

  it('refuses OTEL_* settings it cannot honour, naming the variable', () => {
    assert.throws(() => loadSettings({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), /OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported/);
    assert.throws(() => loadSettings({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), /OTEL_EXPORTER_OTLP_ENDPOINT: must be an http/);
  });
});

describe('traces over OTLP/HTTP with protobuf (the default protocol)', () => {
  it('exports to /v1/traces as application/x-protobuf', async () => {
    const collector = await startCollector();
    const relay = await startRelay({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/custom/traces`, OTEL_BSP_SCHEDULE_DELAY: '50' });
    try {
      await relay.api('GET', '/api/v1/app');
      const exported = (await waitUntil('an export', () => collector.requests.find((r) => r.bytes > 0)))!;
      assert.equal(exported.path, '/custom/traces');
      assert.equal(exported.contentType, 'application/x-protobuf');
    } finally {
      await relay.close();
      await collector.close();
    }
  });
});
