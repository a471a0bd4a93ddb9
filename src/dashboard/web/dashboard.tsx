import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Api, ApiError, enc, q, type Application, type EventType, type Page } from './api.js';
import { AppView, useView } from './app-view.js';
import { ActionButton, Alert, messageOf, Spinner, useLoad, usePager, When } from './common.js';
import { OverviewPage } from './overview.js';

/**
 * The operator dashboard at /ui. Signing in trades the admin token for an HttpOnly session cookie (POST /ui/session);
 * the page then calls the public API with that cookie and the session's CSRF header, never with the token.
 */
type Section = { kind: 'overview' } | { kind: 'apps' } | { kind: 'app'; app: Application } | { kind: 'event-types' } | { kind: 'sources' };

async function session(): Promise<string | null> {
  const response = await fetch('/ui/session', { credentials: 'same-origin' });
  if (response.status === 401) return null;
  if (!response.ok) throw new Error(`GET /ui/session answered ${response.status}`);
  return ((await response.json()) as { csrf: string }).csrf;
}

function Dashboard() {
  const [csrf, setCsrf] = useState<string | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    session().then(setCsrf, (e) => setError(messageOf(e)));
  }, []);
  if (error) return <Alert error={error} />;
  if (csrf === undefined) return <Spinner when />;
  if (csrf === null) return <SignIn onSignedIn={setCsrf} />;
  return <Signed api={new Api({ csrf })} onSignedOut={() => setCsrf(null)} />;
}

function SignIn({ onSignedIn }: { onSignedIn: (csrf: string) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <main class="narrow">
      <h1>hookrelay</h1>
      <form
        class="form"
        onSubmit={async (event) => {
          event.preventDefault();
          setBusy(true);
          setError(null);
          const response = await fetch('/ui/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }), credentials: 'same-origin' });
          setToken('');
          setBusy(false);
          if (response.status !== 204) return setError(response.status === 401 ? 'That is not the admin token.' : `Sign-in failed (${response.status}).`);
          const csrf = await session();
          if (csrf) onSignedIn(csrf);
          else setError('The session cookie was not kept: are cookies allowed for this site?');
        }}
      >
        <label for="admin-token">Admin token</label>
        <input id="admin-token" name="token" type="password" autocomplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <Alert error={error} />
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy}>
            Sign in
          </button>
        </div>
      </form>
    </main>
  );
}

function Signed({ api, onSignedOut }: { api: Api; onSignedOut: () => void }) {
  const [section, setSection] = useState<Section>({ kind: 'overview' });
  const [view, go] = useView({ kind: 'endpoints' });
  const current = section.kind === 'app' ? 'apps' : section.kind;
  const navButton = (kind: 'overview' | 'apps' | 'event-types' | 'sources', label: string) => (
    <button type="button" aria-current={current === kind ? 'page' : undefined} onClick={() => setSection({ kind } as Section)}>
      {label}
    </button>
  );
  return (
    <>
      <header class="top">
        <h1>hookrelay</h1>
        <ActionButton
          label="Sign out"
          action={async () => {
            await api.call('DELETE', '/ui/session');
            onSignedOut();
          }}
        />
      </header>
      <main>
        <nav class="tabs" aria-label="Sections">
          {navButton('overview', 'Overview')}
          {navButton('apps', 'Applications')}
          {navButton('event-types', 'Event types')}
          {navButton('sources', 'Sources')}
        </nav>
        {section.kind === 'overview' ? <OverviewPage api={api} /> : null}
        {section.kind === 'apps' ? (
          <Applications
            api={api}
            open={(app) => {
              go({ kind: 'endpoints' });
              setSection({ kind: 'app', app });
            }}
          />
        ) : null}
        {section.kind === 'app' ? (
          <>
            <div class="heading">
              <h2>{section.app.name}</h2>
              <PortalLink api={api} app={section.app} />
            </div>
            <AppView api={api} app={section.app} can={() => true} view={view} go={go} />
          </>
        ) : null}
        {section.kind === 'event-types' ? <EventTypes api={api} /> : null}
        {section.kind === 'sources' ? <Sources api={api} /> : null}
      </main>
    </>
  );
}

function Applications({ api, open }: { api: Api; open: (app: Application) => void }) {
  const pager = usePager();
  const page = useLoad(() => api.get<Page<Application>>(`/api/v1/app${q({ limit: 50, iterator: pager.iterator })}`), [pager.iterator]);
  const [name, setName] = useState('');
  const [uid, setUid] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <section aria-labelledby="apps-title">
      <h2 id="apps-title">Applications</h2>
      <form
        class="inline-form"
        aria-label="Create application"
        onSubmit={async (event) => {
          event.preventDefault();
          setError(null);
          try {
            const app = await api.call<Application>('POST', '/api/v1/app', { name, uid: uid || null });
            open(app);
          } catch (e) {
            setError(e instanceof ApiError ? e.message : String(e));
          }
        }}
      >
        <label for="app-name">Name</label>
        <input id="app-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <label for="app-uid">UID (optional)</label>
        <input id="app-uid" value={uid} onInput={(e) => setUid(e.currentTarget.value)} />
        <button type="submit" class="primary">
          Create application
        </button>
      </form>
      <Alert error={error} />
      <Alert error={page.error} />
      <Spinner when={page.loading && !page.value} />
      {page.value && page.value.data.length === 0 ? <p class="muted">No applications yet.</p> : null}
      {page.value && page.value.data.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">UID</th>
              <th scope="col">Id</th>
            </tr>
          </thead>
          <tbody>
            {page.value.data.map((app) => (
              <tr key={app.id}>
                <td>
                  <a href={`#app/${app.id}`} onClick={(e) => (e.preventDefault(), open(app))}>
                    {app.name}
                  </a>
                </td>
                <td class="mono small">{app.uid ?? ''}</td>
                <td class="mono small">{app.id}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {page.value ? pager.controls(page.value.iterator, page.value.done) : null}
    </section>
  );
}

/** Mints a portal link for the application's customer (POST /api/v1/auth/app-portal-access) and shows it. */
function PortalLink({ api, app }: { api: Api; app: Application }) {
  const [url, setUrl] = useState<string | null>(null);
  return url ? (
    <p class="small wrap">
      Customer portal link (valid 7 days): <code aria-label="Portal link">{url}</code>
    </p>
  ) : (
    <ActionButton label="Portal link" action={async () => setUrl((await api.call<{ url: string }>('POST', `/api/v1/auth/app-portal-access/${enc(app.id)}`, {})).url)} />
  );
}

function EventTypes({ api }: { api: Api }) {
  const pager = usePager();
  const page = useLoad(() => api.get<Page<EventType & { featureFlag: string | null }>>(`/api/v1/event-type${q({ limit: 100, iterator: pager.iterator, include_archived: 'true', with_content: 'false' })}`), [pager.iterator]);
  return (
    <section aria-labelledby="types-title">
      <h2 id="types-title">Event types</h2>
      <Alert error={page.error} />
      {page.value ? (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Description</th>
              <th scope="col">Feature flag</th>
              <th scope="col">State</th>
            </tr>
          </thead>
          <tbody>
            {page.value.data.map((t) => (
              <tr key={t.name}>
                <td class="mono">{t.name}</td>
                <td>{t.description}</td>
                <td class="small">{t.featureFlag ?? ''}</td>
                <td class="small">{t.archived ? 'archived' : 'active'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {page.value ? pager.controls(page.value.iterator, page.value.done) : null}
    </section>
  );
}

interface Source {
  id: string;
  name: string;
  type: string;
  appId: string;
  ingestUrl: string;
  createdAt: string;
  /** Broker sources only: this process's consumer (null until it has started). */
  consumer?: { state: string; error: string | null } | null;
}

/** A broker source's consumer as one line: its state, and the broker's (or the store's) message when failing. */
const consumerText = (consumer: Source['consumer']) => (consumer ? `consumer ${consumer.state}${consumer.error ? `: ${consumer.error}` : ''}` : 'consumer starting');

function Sources({ api }: { api: Api }) {
  const pager = usePager();
  const page = useLoad(() => api.get<Page<Source>>(`/ingest/api/v1/source${q({ limit: 50, iterator: pager.iterator })}`), [pager.iterator]);
  const [open, setOpen] = useState<Source | null>(null);
  return (
    <section aria-labelledby="sources-title">
      <h2 id="sources-title">Sources</h2>
      <Alert error={page.error} />
      {page.value && page.value.data.length === 0 ? <p class="muted">No sources.</p> : null}
      {page.value && page.value.data.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Provider</th>
              <th scope="col">Ingest URL or consumer</th>
              <th scope="col">Created</th>
              <th scope="col">Refused requests</th>
            </tr>
          </thead>
          <tbody>
            {page.value.data.map((s) => (
              <tr key={s.id}>
                <td>{s.name}</td>
                <td class="small">{s.type}</td>
                {s.consumer !== undefined ? <td class="small wrap">{consumerText(s.consumer)}</td> : <td class="mono small wrap">{s.ingestUrl}</td>}
                <td class="small">
                  <When iso={s.createdAt} />
                </td>
                <td>
                  <button type="button" aria-pressed={open?.id === s.id} onClick={() => setOpen(open?.id === s.id ? null : s)}>
                    {`Failures of ${s.name}`}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {page.value ? pager.controls(page.value.iterator, page.value.done) : null}
      {open ? <SourceFailures key={open.id} api={api} source={open} /> : null}
    </section>
  );
}

/** Why recent requests to a source's ingest URL were refused (this process's memory of them). */
function SourceFailures({ api, source }: { api: Api; source: Source }) {
  const failures = useLoad(() => api.get<{ data: { at: string; reason: string }[]; total: number }>(`/ingest/api/v1/source/${enc(source.id)}/verification-failures`), [source.id]);
  return (
    <section aria-labelledby="failures-title">
      <div class="heading">
        <h3 id="failures-title">{`Verification failures of ${source.name}`}</h3>
        <button type="button" onClick={failures.reload}>
          Refresh
        </button>
      </div>
      <Alert error={failures.error} />
      {failures.value ? <p class="muted small">{`${failures.value.total} refused since this hookrelay process started; the last ${failures.value.data.length}:`}</p> : null}
      {failures.value && failures.value.data.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {failures.value.data.map((f, i) => (
              <tr key={`${f.at}-${i}`}>
                <td class="small">
                  <When iso={f.at} />
                </td>
                <td class="wrap">{f.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

render(<Dashboard />, document.getElementById('root')!);
