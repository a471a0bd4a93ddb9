import { useState } from 'preact/hooks';
import { enc, q, rawField, type Api, type Attempt, type Endpoint, type Message, type Page, type SentRequest } from './api.js';
import type { Go } from './app-view.js';
import { ActionButton, Alert, AttemptStatus, Badge, PayloadView, Spinner, useLoad, usePager, When, type Can } from './common.js';
import { AttemptTable } from './endpoints.js';

interface Filters {
  eventType: string;
  channel: string;
  tag: string;
  after: string;
  before: string;
}

const NO_FILTERS: Filters = { eventType: '', channel: '', tag: '', after: '', before: '' };
const isoOf = (local: string) => (local ? new Date(local).toISOString() : null);

/** The message log: newest first, searchable by event type, channel, tag and time, or opened by id. */
export function MessageList({ api, base, go }: { api: Api; base: string; go: Go }) {
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [lookup, setLookup] = useState('');
  const pager = usePager();
  const query = q({
    limit: 50,
    iterator: pager.iterator,
    with_content: 'false',
    event_types: filters.eventType,
    channel: filters.channel,
    tag: filters.tag,
    after: isoOf(filters.after),
    before: isoOf(filters.before),
  });
  const page = useLoad(() => api.get<Page<Message>>(`${base}/msg${query}`), [base, query]);
  const field = (name: keyof Filters, label: string, time = false) => {
    const props = { id: `filter-${name}`, value: draft[name], onInput: (e: { currentTarget: HTMLInputElement }) => setDraft({ ...draft, [name]: e.currentTarget.value }) };
    return (
      <div class="field">
        <label for={`filter-${name}`}>{label}</label>
        {time ? <input type="datetime-local" {...props} /> : <input type="text" {...props} />}
      </div>
    );
  };
  return (
    <section aria-labelledby="messages-title">
      <h2 id="messages-title">Messages</h2>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          pager.reset();
          setFilters(draft);
        }}
      >
        {field('eventType', 'Event type')}
        {field('channel', 'Channel')}
        {field('tag', 'Tag')}
        {field('after', 'After', true)}
        {field('before', 'Before', true)}
        <button type="submit">Search</button>
      </form>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (lookup.trim()) go({ kind: 'message', id: lookup.trim() });
        }}
      >
        <label for="message-id">Message id or event id</label>
        <input id="message-id" value={lookup} onInput={(e) => setLookup(e.currentTarget.value)} />
        <button type="submit">Open</button>
      </form>
      <Alert error={page.error} />
      <Spinner when={page.loading && !page.value} />
      {page.value && page.value.data.length === 0 ? <p class="muted">No messages.</p> : null}
      {page.value && page.value.data.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th scope="col">Event type</th>
              <th scope="col">Message id</th>
              <th scope="col">Channels</th>
              <th scope="col">Time</th>
            </tr>
          </thead>
          <tbody>
            {page.value.data.map((m) => (
              <tr key={m.id}>
                <td>
                  <a href={`#message/${m.id}`} onClick={(e) => (e.preventDefault(), go({ kind: 'message', id: m.id }))}>
                    {m.eventType}
                  </a>
                </td>
                <td class="mono small">{m.id}</td>
                <td class="small">{m.channels?.join(', ') ?? ''}</td>
                <td class="small">
                  <When iso={m.timestamp} />
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

type MessageEndpoint = Endpoint & { status: number; statusText: string; nextAttempt: string | null };

export function MessageDetail({ api, base, id, go, can }: { api: Api; base: string; id: string; go: Go; can: Can }) {
  const path = `${base}/msg/${enc(id)}`;
  const message = useLoad(() => api.callWithText<Message>('GET', path), [path]);
  const m = message.value?.value ?? null;
  const raw = message.value ? rawField(message.value.text, 'payload') : null;
  const targets = useLoad(() => (m ? api.get<Page<MessageEndpoint>>(`${base}/msg/${enc(m.id)}/endpoint${q({ limit: 250 })}`) : Promise.resolve(null)), [m?.id]);
  const [notice, setNotice] = useState<string | null>(null);
  if (!m)
    return (
      <>
        <a href="#messages" onClick={(e) => (e.preventDefault(), go({ kind: 'messages' }))}>
          ← Messages
        </a>
        {message.error ? <Alert error={message.error} /> : <Spinner when />}
      </>
    );
  return (
    <section aria-labelledby="message-title">
      <p>
        <a href="#messages" onClick={(e) => (e.preventDefault(), go({ kind: 'messages' }))}>
          ← Messages
        </a>
      </p>
      <h2 id="message-title">{m.eventType}</h2>
      <dl class="facts">
        <dt>Message id</dt>
        <dd class="mono">{m.id}</dd>
        <dt>Event id</dt>
        <dd class="mono">{m.eventId ?? '—'}</dd>
        <dt>Channels</dt>
        <dd>{m.channels?.join(', ') ?? '—'}</dd>
        <dt>Tags</dt>
        <dd>{m.tags?.join(', ') ?? '—'}</dd>
        <dt>Created</dt>
        <dd>
          <When iso={m.timestamp} />
        </dd>
      </dl>
      <h3>Payload</h3>
      <PayloadView raw={raw ?? JSON.stringify(m.payload)} testId="payload" />
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <h3>Endpoints</h3>
      <Alert error={targets.error} />
      {targets.value && targets.value.data.length === 0 ? <p class="muted">No endpoint was subscribed to this message.</p> : null}
      {targets.value && targets.value.data.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th scope="col">Endpoint</th>
              <th scope="col">Delivery</th>
              <th scope="col">Next attempt</th>
              {can('CreateAttempts') ? <th scope="col">Action</th> : null}
            </tr>
          </thead>
          <tbody>
            {targets.value.data.map((t) => (
              <tr key={t.id}>
                <td class="wrap">{t.url}</td>
                <td>
                  <Badge tone={t.status === 0 ? 'ok' : t.status === 2 ? 'bad' : 'warn'}>{t.statusText}</Badge>
                </td>
                <td class="small">
                  <When iso={t.nextAttempt} />
                </td>
                {can('CreateAttempts') ? (
                  <td>
                    <ActionButton
                      label="Resend"
                      action={async () => {
                        await api.call('POST', `${base}/msg/${enc(m.id)}/endpoint/${enc(t.id)}/resend`);
                        setNotice(`The message will be sent to ${t.url} again.`);
                        targets.reload();
                      }}
                    />
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <h3>Attempts</h3>
      <AttemptTable api={api} path={`${base}/attempt/msg/${enc(m.id)}`} go={go} />
    </section>
  );
}

/** The method and headers an attempt sent, as a name/value table of plain text (receivers and senders choose them). */
function RequestHeaders({ request }: { request: SentRequest | null }) {
  return (
    <>
      <h3>Request headers</h3>
      {request ? (
        <>
          <p class="muted small">
            Sent with <span class="mono">{request.method}</span>, in this order; the HTTP client adds <span class="mono">host</span>, <span class="mono">connection</span> and{' '}
            <span class="mono">content-length</span>.
          </p>
          <table data-testid="request-headers">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Value</th>
              </tr>
            </thead>
            <tbody>
              {request.headers.map(([name, value], i) => (
                <tr key={i}>
                  <td class="mono">{name}</td>
                  <td class="mono wrap">{value}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : (
        <p class="muted small">Not recorded: the attempt sent no HTTP request (another destination, or it failed before sending), its content was deleted, or it predates recording.</p>
      )}
    </>
  );
}

/** One attempt: where it went, what the receiver answered (as text), how long it took, or why it failed. */
export function AttemptDetail({ api, base, msgId, id, go }: { api: Api; base: string; msgId: string; id: string; go: Go }) {
  const attempt = useLoad(() => api.get<Attempt>(`${base}/msg/${enc(msgId)}/attempt/${enc(id)}`), [msgId, id]);
  const message = useLoad(() => api.callWithText<Message>('GET', `${base}/msg/${enc(msgId)}`), [msgId]);
  const body = message.value ? rawField(message.value.text, 'payload') : null;
  const a = attempt.value;
  if (!a) return <>{attempt.error ? <Alert error={attempt.error} /> : <Spinner when />}</>;
  return (
    <section aria-labelledby="attempt-title">
      <p>
        <a href={`#message/${a.msgId}`} onClick={(e) => (e.preventDefault(), go({ kind: 'message', id: a.msgId }))}>
          ← Message
        </a>
      </p>
      <div class="heading">
        <h2 id="attempt-title">Attempt</h2>
        <AttemptStatus status={a.status} code={a.responseStatusCode} />
      </div>
      <dl class="facts">
        <dt>URL</dt>
        <dd class="wrap">{a.url}</dd>
        <dt>Status code</dt>
        <dd>{a.responseStatusCode || '—'}</dd>
        <dt>Duration</dt>
        <dd>{a.responseDurationMs} ms</dd>
        <dt>Trigger</dt>
        <dd>{a.triggerType === 1 ? 'manual' : 'scheduled'}</dd>
        <dt>Time</dt>
        <dd>
          <When iso={a.timestamp} />
        </dd>
        {a.error ? (
          <>
            <dt>Error</dt>
            <dd>{a.error}</dd>
          </>
        ) : null}
        <dt>Attempt id</dt>
        <dd class="mono">{a.id}</dd>
      </dl>
      <RequestHeaders request={a.request ?? null} />
      <h3>Request body</h3>
      <p class="muted small">The message's payload as stored and sent, byte for byte — unless the endpoint encrypts it (a JWE, see the content type above) or a transformation changed it.</p>
      {body !== null ? <PayloadView raw={body} testId="request" /> : <Alert error={message.error} />}
      <h3>Response body</h3>
      <pre class="payload" data-testid="response" tabIndex={0}>
        {a.response}
      </pre>
    </section>
  );
}
