import { useEffect } from 'preact/hooks';
import type { Api } from './api.js';
import { Alert, Spinner, useLoad, When } from './common.js';

interface Overview {
  since: string;
  until: string;
  perMinute: { minute: string; messages: number; attempts: number; failedAttempts: number }[];
  failureRate: number | null;
  pending: number;
  inFlight: number;
  oldestDue: string | null;
}

const REFRESH_MS = 30_000;

/** The operator's overview: the last hour per minute, drawn from GET /api/v1/stats/overview; refreshed every 30 s. */
export function OverviewPage({ api }: { api: Api }) {
  const stats = useLoad(() => api.get<Overview>('/api/v1/stats/overview?minutes=60'), []);
  useEffect(() => {
    const timer = setInterval(stats.reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  const s = stats.value;
  if (!s) return <>{stats.error ? <Alert error={stats.error} /> : <Spinner when />}</>;
  const total = (key: 'messages' | 'attempts' | 'failedAttempts') => s.perMinute.reduce((sum, m) => sum + m[key], 0);
  const overdue = s.oldestDue !== null && Date.parse(s.oldestDue) < Date.parse(s.until);
  return (
    <section aria-labelledby="overview-title">
      <div class="heading">
        <h2 id="overview-title">Overview — last hour</h2>
        <button type="button" onClick={stats.reload}>
          Refresh
        </button>
      </div>
      <dl class="tiles">
        <div>
          <dt>Messages</dt>
          <dd>{total('messages')}</dd>
        </div>
        <div>
          <dt>Attempts</dt>
          <dd>{total('attempts')}</dd>
        </div>
        <div>
          <dt>Failure rate</dt>
          <dd>{s.failureRate === null ? '—' : `${(s.failureRate * 100).toFixed(1)} %`}</dd>
        </div>
        <div>
          <dt>Queue (pending)</dt>
          <dd>{s.pending}</dd>
        </div>
        <div>
          <dt>In flight</dt>
          <dd>{s.inFlight}</dd>
        </div>
        <div>
          <dt>Oldest due</dt>
          <dd class={overdue ? 'warn-text' : undefined}>
            <When iso={s.oldestDue} />
          </dd>
        </div>
      </dl>
      <BarChart title="Messages per minute" points={s.perMinute.map((m) => ({ at: m.minute, value: m.messages }))} />
      <BarChart title="Attempts per minute (failed in red)" points={s.perMinute.map((m) => ({ at: m.minute, value: m.attempts, part: m.failedAttempts }))} />
      <BarChart
        title="Failure rate per minute (%)"
        max={100}
        points={s.perMinute.map((m) => ({ at: m.minute, value: m.attempts ? Math.round((m.failedAttempts / m.attempts) * 100) : 0, part: m.attempts ? Math.round((m.failedAttempts / m.attempts) * 100) : 0 }))}
      />
    </section>
  );
}

interface Point {
  at: string;
  value: number;
  /** The part of `value` drawn as failures. */
  part?: number;
}

const WIDTH = 720;
const HEIGHT = 140;
const AXIS = 28;

/** A bar per minute, hand-drawn SVG (no chart library): the data is small and the shapes are plain. */
function BarChart({ title, points, max }: { title: string; points: Point[]; max?: number }) {
  const top = Math.max(1, max ?? Math.max(...points.map((p) => p.value)));
  const step = (WIDTH - AXIS) / points.length;
  const y = (v: number) => HEIGHT - 16 - (v / top) * (HEIGHT - 24);
  const time = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const peak = Math.max(...points.map((p) => p.value));
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={`${title}: peak ${peak}, ${points.length} minutes`} preserveAspectRatio="none">
        <line class="axis" x1={AXIS} x2={WIDTH} y1={HEIGHT - 16} y2={HEIGHT - 16} />
        <text class="tick" x={AXIS - 4} y={y(top) + 4} text-anchor="end">
          {String(top)}
        </text>
        <text class="tick" x={AXIS - 4} y={HEIGHT - 14} text-anchor="end">
          0
        </text>
        {points.map((p, i) => {
          const x = AXIS + i * step + 1;
          const w = Math.max(1, step - 2);
          return (
            <g key={p.at}>
              <title>{`${time(p.at)}: ${p.value}${p.part ? ` (${p.part} failed)` : ''}`}</title>
              {p.value > 0 ? <rect class="bar" x={x} y={y(p.value)} width={w} height={HEIGHT - 16 - y(p.value)} /> : null}
              {p.part ? <rect class="bar failed" x={x} y={y(p.part)} width={w} height={HEIGHT - 16 - y(p.part)} /> : null}
            </g>
          );
        })}
        {(
          [
            [0, 'start', AXIS],
            [Math.floor(points.length / 2), 'middle', AXIS + Math.floor(points.length / 2) * step + step / 2],
            [points.length - 1, 'end', WIDTH - 2],
          ] as const
        ).map(([i, anchor, x]) =>
          points[i] ? (
            <text key={anchor} class="tick" x={x} y={HEIGHT - 2} text-anchor={anchor}>
              {time(points[i].at)}
            </text>
          ) : null,
        )}
      </svg>
    </figure>
  );
}
