import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Api, type Application, type Page } from './api.js';
import { AppView, useView } from './app-view.js';
import { Alert, messageOf, Spinner, type Capability } from './common.js';
import { applyColor, logoOf } from './theme.js';

/**
 * The customer portal: opened from the `url` of app-portal-access, `…/portal#token=hrp_…`. The token arrives in the
 * fragment (never sent to a server), is kept in this tab's sessionStorage and sent as a bearer token; the page then
 * removes it from the address bar.
 */
const STORAGE_KEY = 'hookrelay.portal.token';

/** The capabilities' order in the token's scope bits (src/api/portal-tokens.ts CAPABILITIES). */
const CAPABILITY_BITS = ['ViewBase', 'ViewEndpointSecret', 'ManageEndpointSecret', 'ManageTransformations', 'CreateAttempts', 'ManageEndpoint'];

/**
 * The token from the fragment, kept in sessionStorage so a reload keeps working, then removed from the address bar.
 * A browser that denies storage to a third-party iframe (the portal embedded elsewhere) keeps it in the fragment.
 */
function takeToken(): string | null {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  const storage = sessionStorageIfAllowed();
  if (fromHash) {
    if (storage) {
      storage.setItem(STORAGE_KEY, fromHash);
      history.replaceState(null, '', location.pathname + location.search);
    }
    return fromHash;
  }
  return storage?.getItem(STORAGE_KEY) ?? null;
}

function sessionStorageIfAllowed(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

/** What the token allows, read from its scope (the server enforces it; this only hides buttons that would be refused). */
function capabilitiesOf(token: string): Set<string> {
  const match = /^hrp_key_[0-9A-Za-z]{25}_([A-Za-z0-9_-]+)_[A-Za-z0-9_-]{43}$/.exec(token);
  if (!match) return new Set();
  try {
    const json = atob(match[1].replace(/-/g, '+').replace(/_/g, '/'));
    const bits = (JSON.parse(json) as { c: number }).c;
    return new Set(CAPABILITY_BITS.filter((_, i) => (bits & (1 << i)) !== 0));
  } catch {
    return new Set();
  }
}

function Portal({ token }: { token: string }) {
  const [api] = useState(() => new Api({ bearer: token }));
  const [app, setApp] = useState<Application | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [signedOut, setSignedOut] = useState(false);
  const [view, go] = useView({ kind: 'endpoints' });
  const capabilities = capabilitiesOf(token);
  const can = (c: Capability) => capabilities.has(c) || (c === 'ViewEndpointSecret' && (capabilities.has('ManageEndpointSecret') || capabilities.has('ManageEndpoint')));

  useEffect(() => {
    api.get<Page<Application>>('/api/v1/app').then(
      (page) => {
        const own = page.data[0] ?? null;
        if (own) applyColor(own.metadata);
        setApp(own);
      },
      (e) => setError(messageOf(e)),
    );
  }, []);

  if (signedOut) return <Message text="You are signed out. Open a new portal link to sign in again." />;
  if (error) return <Message text={`This portal link cannot be used: ${error}`} />;
  if (!app) return <Spinner when />;
  return (
    <>
      <header class="top">
        {logoOf(app.metadata) ? <img class="logo" src={logoOf(app.metadata)!} alt="" /> : null}
        <h1>{app.metadata['portal.title'] ?? `${app.name} — webhooks`}</h1>
        <button
          type="button"
          class="link"
          onClick={async () => {
            await api.call('POST', '/api/v1/auth/logout').catch(() => undefined);
            sessionStorageIfAllowed()?.removeItem(STORAGE_KEY);
            history.replaceState(null, '', location.pathname + location.search);
            setSignedOut(true);
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        <AppView api={api} app={app} can={can} view={view} go={go} />
      </main>
    </>
  );
}

function Message({ text }: { text: string }) {
  return (
    <main>
      <Alert error={text} />
    </main>
  );
}

const root = document.getElementById('root')!;
const token = takeToken();
render(token ? <Portal token={token} /> : <Message text="This page needs a portal link with a token. Ask for a new link." />, root);
