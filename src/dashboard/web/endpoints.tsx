import { useState } from 'preact/hooks';
import { enc, q, type Api, type Attempt, type Endpoint, type EventType, type Message, type Page } from './api.js';
import { ActionButton, Alert, AttemptStatus, Badge, Spinner, useLoad, usePager, When, type Can } from './common.js';
import type { Go } from './app-view.js';

export function EndpointHealth({ endpoint }: { endpoint: Endpoint }) {
  if (endpoint.disabled) return <Badge tone="off">disabled</Badge>;
  if (endpoint.circuit.state === 'open') return <Badge tone="bad">paused (failing)</Badge>;
  if (endpoint.circuit.state === 'half-open') return <Badge tone="warn">probing</Badge>;
  return endpoint.circuit.consecutiveFailures > 0 ? <Badge tone="warn">failing</Badge> : <Badge tone="ok">healthy</Badge>;
}

export function EndpointList({ api, base, go, can }: { api: Api; base: string; go: Go; can: Can }) {
  const pager = usePager();
  const page = useLoad(() => api.get<Page<Endpoint>>(`${base}/endpoint${q({ limit: 50, iterator: pager.iterator })}`), [base, pager.iterator]);
  return (
    <section aria-labelledby="endpoints-title">
      <div class="heading">
        <h2 id="endpoints-title">Endpoints</h2>
        {can('ManageEndpoint') ? (
          <button type="button" class="primary" onClick={() => go({ kind: 'new-endpoint' })}>
            Add endpoint
          </button>
        ) : null}
      </div>
      <Alert error={page.error} />
      <Spinner when={page.loading && !page.value} />
      {page.value && page.value.data.length === 0 ? <p class="muted">No endpoints yet.</p> : null}
      {page.value && page.value.data.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th scope="col">URL</th>
              <th scope="col">Status</th>
              <th scope="col">Events</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {page.value.data.map((e) => (
              <tr key={e.id}>
                <td class="wrap">
                  <a href={`#endpoint/${e.id}`} onClick={(event) => (event.preventDefault(), go({ kind: 'endpoint', id: e.id }))}>
                    {e.url}
                  </a>
                  {e.description ? <div class="muted small">{e.description}</div> : null}
                </td>
                <td>
                  <EndpointHealth endpoint={e} />
                </td>
                <td class="small">{e.filterTypes ? e.filterTypes.join(', ') : 'all events'}</td>
                <td class="small">
                  <When iso={e.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {page.value ? pager.controls(page.value.iterator, page.value.done) : null}
    </section>
  );
}

/** Create or edit an endpoint: URL, description, event types (none ticked = every event type) and channels. */
export function EndpointForm({ api, base, go, existing }: { api: Api; base: string; go: Go; existing?: Endpoint }) {
  const types = useLoad(() => api.get<Page<EventType>>(`/api/v1/event-type${q({ limit: 250, with_content: 'false' })}`), []);
  const [url, setUrl] = useState(existing?.url ?? '');
  const [description, setDescription] = useState(existing?.description ?? '');
  const [filter, setFilter] = useState<Set<string>>(new Set(existing?.filterTypes ?? []));
  const [channels, setChannels] = useState((existing?.channels ?? []).join(', '));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const list = channels
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean);
    const body = { url, description, filterTypes: filter.size ? [...filter] : null, channels: list.length ? list : null };
    try {
      const saved = existing
        ? await api.call<Endpoint>('PATCH', `${base}/endpoint/${enc(existing.id)}`, body)
        : await api.call<Endpoint>('POST', `${base}/endpoint`, body);
      go({ kind: 'endpoint', id: saved.id });
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setBusy(false);
    }
  };
  const toggle = (name: string) => {
    const next = new Set(filter);
    if (next.has(name)) next.delete(name);
    else next.add(name);
    setFilter(next);
  };

  return (
    <section aria-labelledby="endpoint-form-title">
      <h2 id="endpoint-form-title">{existing ? 'Edit endpoint' : 'Add endpoint'}</h2>
      <form onSubmit={submit} class="form">
        <label for="endpoint-url">Endpoint URL</label>
        <input id="endpoint-url" name="url" type="url" required placeholder="https://example.com/webhooks" value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
        <label for="endpoint-description">Description</label>
        <input id="endpoint-description" name="description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        <fieldset>
          <legend>Event types (none ticked: every event type)</legend>
          <Alert error={types.error} />
          {types.value?.data.map((t) => (
            <label key={t.name} class="check">
              <input type="checkbox" name="filterTypes" value={t.name} checked={filter.has(t.name)} onChange={() => toggle(t.name)} />
              <span>{t.name}</span>
              {t.description ? <span class="muted small"> — {t.description}</span> : null}
            </label>
          ))}
          {types.value && types.value.data.length === 0 ? <p class="muted small">No event types are defined.</p> : null}
        </fieldset>
        <label for="endpoint-channels">Channels (comma-separated, optional)</label>
        <input id="endpoint-channels" name="channels" value={channels} onInput={(e) => setChannels(e.currentTarget.value)} />
        <Alert error={error} />
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy}>
            {existing ? 'Save' : 'Create'}
          </button>
          <button type="button" onClick={() => go(existing ? { kind: 'endpoint', id: existing.id } : { kind: 'endpoints' })}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}

export function EndpointDetail({ api, base, id, go, can }: { api: Api; base: string; id: string; go: Go; can: Can }) {
  const path = `${base}/endpoint/${enc(id)}`;
  const endpoint = useLoad(() => api.get<Endpoint>(path), [path]);
  const [secret, setSecret] = useState<string | null>(null);
  const [since, setSince] = useState(() => localInput(Date.now() - 24 * 3_600_000));
  const [notice, setNotice] = useState<string | null>(null);
  const e = endpoint.value;
  if (!e) return <>{endpoint.error ? <Alert error={endpoint.error} /> : <Spinner when />}</>;
  return (
    <section aria-labelledby="endpoint-title">
      <p>
        <a href="#endpoints" onClick={(event) => (event.preventDefault(), go({ kind: 'endpoints' }))}>
          ← Endpoints
        </a>
      </p>
      <div class="heading">
        <h2 id="endpoint-title" class="wrap">
          {e.url}
        </h2>
        <EndpointHealth endpoint={e} />
      </div>
      <dl class="facts">
        <dt>Description</dt>
        <dd>{e.description || '—'}</dd>
        <dt>Event types</dt>
        <dd>{e.filterTypes ? e.filterTypes.join(', ') : 'all events'}</dd>
        <dt>Channels</dt>
        <dd>{e.channels ? e.channels.join(', ') : 'any'}</dd>
        <dt>Rate limit</dt>
        <dd>{e.rateLimit ? `${e.rateLimit} / s` : 'none'}</dd>
        {e.disabledReason ? (
          <>
            <dt>Disabled because</dt>
            <dd>{e.disabledReason}</dd>
          </>
        ) : null}
        <dt>Failures in a row</dt>
        <dd>{e.circuit.consecutiveFailures}</dd>
        <dt>Parked messages</dt>
        <dd>{e.circuit.parkedMessages}</dd>
        <dt>Endpoint id</dt>
        <dd class="mono">{e.id}</dd>
      </dl>
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      {can('ManageEndpoint') ? (
        <div class="buttons">
          <button type="button" onClick={() => go({ kind: 'edit-endpoint', id: e.id })}>
            Edit
          </button>
          <ActionButton
            label={e.disabled ? 'Enable' : 'Disable'}
            action={async () => {
              await api.call('PATCH', path, { disabled: !e.disabled });
              endpoint.reload();
            }}
          />
          <ActionButton
            label="Delete"
            kind="danger"
            confirm="Delete this endpoint? Messages will no longer be sent to it."
            action={async () => {
              await api.call('DELETE', path);
              go({ kind: 'endpoints' });
            }}
          />
        </div>
      ) : null}

      {can('ViewEndpointSecret') ? (
        <>
          <h3>Signing secret</h3>
          <p class="secret">
            <code class="mono" aria-label="Signing secret">
              {secret ?? '••••••••••••••••••••••••'}
            </code>{' '}
            {secret ? (
              <button type="button" onClick={() => setSecret(null)}>
                Hide
              </button>
            ) : (
              <ActionButton label="Reveal" action={async () => setSecret((await api.get<{ key: string }>(`${path}/secret`)).key)} />
            )}{' '}
            {can('ManageEndpointSecret') ? (
              <ActionButton
                label="Rotate secret"
                confirm="Rotate the signing secret? The old one keeps verifying for 24 hours."
                action={async () => {
                  await api.call('POST', `${path}/secret/rotate`, {});
                  setSecret((await api.get<{ key: string }>(`${path}/secret`)).key);
                  setNotice('The secret was rotated.');
                }}
              />
            ) : null}
          </p>
        </>
      ) : null}

      {can('CreateAttempts') ? (
        <>
          <h3>Recover failed messages</h3>
          <form
            class="inline-form"
            onSubmit={async (event) => {
              event.preventDefault();
              try {
                const out = await api.call<{ recovered: number }>('POST', `${path}/recover`, { since: new Date(since).toISOString() });
                setNotice(`${out.recovered} failed message(s) will be sent again.`);
              } catch (err) {
                setNotice(err instanceof Error ? err.message : String(err));
              }
            }}
          >
            <label for="recover-since">Failed since</label>
            <input id="recover-since" type="datetime-local" value={since} required onInput={(ev) => setSince(ev.currentTarget.value)} />
            <button type="submit">Recover</button>
          </form>
        </>
      ) : null}

      {can('CreateAttempts') ? <SendTestEvent api={api} path={path} endpoint={e} onDone={(text) => setNotice(text)} /> : null}

      {can('CreateAttempts') ? <ParkedMessages api={api} base={base} endpoint={e} onDone={(text) => setNotice(text)} /> : null}

      <h3>Recent attempts</h3>
      <AttemptTable api={api} path={`${base}/attempt/endpoint/${enc(e.id)}`} go={go} />
    </section>
  );
}

type EndpointMessage = Message & { status: number; statusText: string };

/** Messages whose delivery to this endpoint was parked (every retry failed): pick some and send them again. */
function ParkedMessages({ api, base, endpoint, onDone }: { api: Api; base: string; endpoint: Endpoint; onDone: (text: string) => void }) {
  const pager = usePager();
  const path = `${base}/endpoint/${enc(endpoint.id)}/msg${q({ status: 2, limit: 50, with_content: 'false', iterator: pager.iterator })}`;
  const page = useLoad(() => api.get<Page<EndpointMessage>>(path), [path]);
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const rows = page.value?.data ?? [];
  const toggle = (id: string) => {
    const next = new Set(picked);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setPicked(next);
  };
  return (
    <>
      <h3>Parked messages</h3>
      <Alert error={page.error} />
      {page.value && rows.length === 0 ? <p class="muted">No parked messages.</p> : null}
      {rows.length > 0 ? (
        <>
          <div class="buttons">
            <button type="button" onClick={() => setPicked(picked.size === rows.length ? new Set() : new Set(rows.map((m) => m.id)))}>
              {picked.size === rows.length ? 'Select none' : 'Select all'}
            </button>
            <ActionButton
              label={`Resend selected (${picked.size})`}
              disabled={picked.size === 0}
              action={async () => {
                for (const id of picked) await api.call('POST', `${base}/msg/${enc(id)}/endpoint/${enc(endpoint.id)}/resend`);
                onDone(`${picked.size} parked message(s) will be sent again.`);
                setPicked(new Set());
                page.reload();
              }}
            />
          </div>
          <table>
            <thead>
              <tr>
                <th scope="col">Pick</th>
                <th scope="col">Event type</th>
                <th scope="col">Message id</th>
                <th scope="col">Time</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((m) => (
                <tr key={m.id}>
                  <td>
                    <input type="checkbox" aria-label={`Pick ${m.id}`} checked={picked.has(m.id)} onChange={() => toggle(m.id)} />
                  </td>
                  <td>{m.eventType}</td>
                  <td class="mono small">{m.id}</td>
                  <td class="small">
                    <When iso={m.timestamp} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {page.value ? pager.controls(page.value.iterator, page.value.done) : null}
        </>
      ) : null}
    </>
  );
}

/** A time as a datetime-local input wants it: local wall-clock time, to the minute. */
function localInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function AttemptTable({ api, path, go }: { api: Api; path: string; go: Go }) {
  const pager = usePager();
  const page = useLoad(() => api.get<Page<Attempt>>(`${path}${q({ limit: 20, iterator: pager.iterator })}`), [path, pager.iterator]);
  return (
    <>
      <Alert error={page.error} />
      <Spinner when={page.loading && !page.value} />
      {page.value && page.value.data.length === 0 ? <p class="muted">No attempts yet.</p> : null}
      {page.value && page.value.data.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th scope="col">Result</th>
              <th scope="col">Message</th>
              <th scope="col">Duration</th>
              <th scope="col">Time</th>
            </tr>
          </thead>
          <tbody>
            {page.value.data.map((a) => (
              <tr key={a.id}>
                <td>
                  <a href={`#attempt/${a.id}`} onClick={(event) => (event.preventDefault(), go({ kind: 'attempt', msgId: a.msgId, id: a.id }))}>
                    <AttemptStatus status={a.status} code={a.responseStatusCode} />
                  </a>
                </td>
                <td class="mono small">{a.msgId}</td>
                <td class="small">{a.responseDurationMs} ms</td>
                <td class="small">
                  <When iso={a.timestamp} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {page.value ? pager.controls(page.value.iterator, page.value.done) : null}
    </>
  );
}

/** Sends the example of an event type (from its schema, or `{}`) to this endpoint alone, through send-example. */
function SendTestEvent({ api, path, endpoint, onDone }: { api: Api; path: string; endpoint: Endpoint; onDone: (text: string) => void }) {
  const types = useLoad(() => api.get<Page<EventType>>(`/api/v1/event-type${q({ limit: 250, with_content: 'false' })}`), []);
  const offered = (types.value?.data ?? []).filter((t) => !t.archived && (endpoint.filterTypes === null || endpoint.filterTypes.includes(t.name)));
  const [chosen, setChosen] = useState('');
  const eventType = chosen || offered[0]?.name || '';
  return (
    <>
      <h3>Send a test event</h3>
      <Alert error={types.error} />
      {types.value && offered.length === 0 ? <p class="muted">No event types to send: none are defined for this endpoint.</p> : null}
      {offered.length > 0 ? (
        <form
          class="inline-form"
          onSubmit={async (event) => {
            event.preventDefault();
            try {
              const message = await api.call<Message>('POST', `${path}/send-example`, { eventType });
              onDone(`A test ${eventType} event (${message.id}) is on its way to this endpoint; its attempt appears below.`);
            } catch (err) {
              onDone(err instanceof Error ? err.message : String(err));
            }
          }}
        >
          <label for="test-event-type">Event type</label>
          <select id="test-event-type" value={eventType} onChange={(ev) => setChosen(ev.currentTarget.value)}>
            {offered.map((t) => (
              <option key={t.name} value={t.name}>
                {t.name}
              </option>
            ))}
          </select>
          <button type="submit">Send test event</button>
        </form>
      ) : null}
    </>
  );
}
