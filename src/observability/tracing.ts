import type { Context, Span, Tracer } from '@opentelemetry/api';
import type { ClaimedDelivery } from '../domain/types.js';
import type { SendResult } from '../pipeline/destinations/destination.js';

/**
 * Traces (OpenTelemetry, exported as OTLP over HTTP): a server span per API request and ingest, the W3C trace context
 * of the span that accepted a message stored with it, and a span per attempt, child of that one, whose traceparent
 * HTTP endpoints receive. Off unless the standard OTEL_* variables ask for it; when off, none of this is loaded and
 * the pipeline only tests one null (no span, NULL trace context).
 */

/** The OTEL_* variables, as given to the process (kept in the settings so that a test can give its own). */
export type OtelEnv = Readonly<Record<string, string>>;

export interface RequestSpan {
  /** `00-<trace id>-<span id>-<flags>` of this request's span: stored with the message it accepts. */
  traceparent: string;
  end(statusCode: number): void;
}

export interface AttemptSpan {
  /** Sent to the endpoint, so that its own spans are children of the attempt. */
  traceparent: string;
  end(result: SendResult, at: number): void;
}

export interface Tracing {
  /** A server span for a request, child of the caller's `traceparent` when it sent a valid one. */
  request(method: string, route: string, headers: Record<string, string | string[] | undefined>, attributes?: Record<string, string>): RequestSpan;
  /** A span for one attempt, child of the span that accepted its message (a root span when none was stored). */
  attempt(claimed: ClaimedDelivery, startedAt: number): AttemptSpan;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

/** Why tracing is off, or null when the variables turn it on. */
export function tracingOff(env: OtelEnv): string | null {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return 'OTEL_SDK_DISABLED=true';
  const exporters = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').map((e) => e.trim().toLowerCase());
  if (exporters.includes('none') || !exporters.includes('otlp')) return `OTEL_TRACES_EXPORTER=${env.OTEL_TRACES_EXPORTER}`;
  if (!env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT && !env.OTEL_EXPORTER_OTLP_ENDPOINT) return 'no OTEL_EXPORTER_OTLP_ENDPOINT';
  return null;
}

/** Problems with the variables that tracing cannot work with: each names the variable. */
export function otelProblems(env: OtelEnv): string[] {
  const problems: string[] = [];
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol !== undefined && protocol !== 'http/json' && protocol !== 'http/protobuf') {
    problems.push(`OTEL_EXPORTER_OTLP_PROTOCOL: ${JSON.stringify(protocol)} is not supported: use http/protobuf or http/json (OTLP over HTTP)`);
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT']) {
    const value = env[name];
    if (value === undefined) continue;
    try {
      const url = new URL(value);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') problems.push(`${name}: must be an http:// or https:// URL`);
    } catch {
      problems.push(`${name}: ${JSON.stringify(value)} is not a URL`);
    }
  }
  return problems;
}

const positive = (text: string | undefined, fallback: number) => {
  const n = Number(text);
  return text !== undefined && Number.isFinite(n) && n > 0 ? n : fallback;
};

/** `k1=v1,k2=v2` (values percent-encoded), as OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES are written. */
function keyValues(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (text ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    out[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return out;
}

/** Loads the SDK and starts exporting; null when the variables leave tracing off. */
export async function startTracing(env: OtelEnv, version: string): Promise<Tracing | null> {
  if (tracingOff(env) !== null) return null;
  const [api, core, base, resources, otlpHttp, otlpProto] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/core'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/exporter-trace-otlp-proto'),
  ]);
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  const url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? `${env.OTEL_EXPORTER_OTLP_ENDPOINT!.replace(/\/+$/, '')}/v1/traces`;
  const exporterConfig = {
    url,
    headers: { ...keyValues(env.OTEL_EXPORTER_OTLP_HEADERS), ...keyValues(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS) },
    timeoutMillis: positive(env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? env.OTEL_EXPORTER_OTLP_TIMEOUT, 10_000),
  };
  const exporter = protocol === 'http/json' ? new otlpHttp.OTLPTraceExporter(exporterConfig) : new otlpProto.OTLPTraceExporter(exporterConfig);
  const attributes = { 'service.name': 'hookrelay', ...keyValues(env.OTEL_RESOURCE_ATTRIBUTES), ...(env.OTEL_SERVICE_NAME ? { 'service.name': env.OTEL_SERVICE_NAME } : {}), 'service.version': version };
  const provider = new base.BasicTracerProvider({
    resource: resources.resourceFromAttributes(attributes),
    sampler: samplerOf(env, base),
    spanProcessors: [
      new base.BatchSpanProcessor(exporter, {
        scheduledDelayMillis: positive(env.OTEL_BSP_SCHEDULE_DELAY, 5000),
        maxQueueSize: positive(env.OTEL_BSP_MAX_QUEUE_SIZE, 2048),
        maxExportBatchSize: positive(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512),
        exportTimeoutMillis: positive(env.OTEL_BSP_EXPORT_TIMEOUT, 30_000),
      }),
    ],
  });
  const tracer = provider.getTracer('hookrelay', version);
  return new OtelTracing(tracer, api, new core.W3CTraceContextPropagator(), () => provider.shutdown());
}

type Api = typeof import('@opentelemetry/api');
type Base = typeof import('@opentelemetry/sdk-trace-base');

/** OTEL_TRACES_SAMPLER and its argument; parent-based always-on by default, as the specification says. */
function samplerOf(env: OtelEnv, base: Base) {
  const ratio = Math.min(1, Math.max(0, Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1') || 0));
  switch ((env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').toLowerCase()) {
    case 'always_on':
      return new base.AlwaysOnSampler();
    case 'always_off':
      return new base.AlwaysOffSampler();
    case 'traceidratio':
      return new base.TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_off':
      return new base.ParentBasedSampler({ root: new base.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new base.ParentBasedSampler({ root: new base.TraceIdRatioBasedSampler(ratio) });
    default:
      return new base.ParentBasedSampler({ root: new base.AlwaysOnSampler() });
  }
}

class OtelTracing implements Tracing {
  private readonly getter = {
    keys: (carrier: Record<string, string | string[] | undefined>) => Object.keys(carrier),
    get: (carrier: Record<string, string | string[] | undefined>, key: string) => carrier[key],
  };
  private readonly setter = {
    set: (carrier: Record<string, string>, key: string, value: string) => {
      carrier[key] = value;
    },
  };

  constructor(
    private readonly tracer: Tracer,
    private readonly api: Api,
    private readonly propagator: import('@opentelemetry/core').W3CTraceContextPropagator,
    readonly shutdown: () => Promise<void>,
  ) {}

  request(method: string, route: string, headers: Record<string, string | string[] | undefined>, attributes: Record<string, string> = {}): RequestSpan {
    const parent = this.propagator.extract(this.api.ROOT_CONTEXT, headers, this.getter);
    const span = this.tracer.startSpan(
      `${method} ${route}`,
      { kind: this.api.SpanKind.SERVER, attributes: { 'http.request.method': method, 'http.route': route, ...attributes } },
      parent,
    );
    let ended = false;
    return {
      traceparent: this.traceparentOf(span),
      end: (statusCode) => {
        if (ended) return;
        ended = true;
        span.setAttribute('http.response.status_code', statusCode);
        if (statusCode >= 500) span.setStatus({ code: this.api.SpanStatusCode.ERROR });
        span.end();
      },
    };
  }

  attempt({ delivery, endpoint, message }: ClaimedDelivery, startedAt: number): AttemptSpan {
    let parent: Context = this.api.ROOT_CONTEXT;
    if (message.traceContext) parent = this.propagator.extract(parent, { traceparent: message.traceContext }, this.getter);
    const kind = endpoint.destination?.type ?? 'http';
    const span = this.tracer.startSpan(
      `deliver ${kind}`,
      {
        kind: this.api.SpanKind.CLIENT,
        startTime: startedAt,
        attributes: {
          'hookrelay.destination.kind': kind,
          'hookrelay.endpoint.id': endpoint.id,
          'hookrelay.app.id': delivery.appId,
          'hookrelay.message.id': message.id,
          'hookrelay.event_type': message.eventType,
          'hookrelay.attempt.retry': delivery.retryIndex,
          'hookrelay.attempt.trigger': delivery.manual ? 'manual' : 'scheduled',
        },
      },
      parent,
    );
    return {
      traceparent: this.traceparentOf(span),
      end: (result, at) => {
        span.setAttribute('hookrelay.attempt.outcome', result.kind);
        if (result.statusCode > 0) span.setAttribute('http.response.status_code', result.statusCode);
        if (result.kind !== 'success') {
          const error = result.kind === 'retry' || result.kind === 'fatal' ? result.error : null;
          span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: error ?? `status ${result.statusCode}` });
        }
        span.end(at);
      },
    };
  }

  private traceparentOf(span: Span): string {
    const carrier: Record<string, string> = {};
    this.propagator.inject(this.api.trace.setSpan(this.api.ROOT_CONTEXT, span), carrier, this.setter);
    return carrier.traceparent ?? '';
  }
}
