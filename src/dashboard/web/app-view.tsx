import { useEffect, useState } from 'preact/hooks';
import { enc, type Api, type Application, type Endpoint } from './api.js';
import { Alert, Spinner, useLoad, type Can } from './common.js';
import { EndpointDetail, EndpointForm, EndpointList } from './endpoints.js';
import { AttemptDetail, MessageDetail, MessageList } from './messages.js';

export type View =
  | { kind: 'endpoints' }
  | { kind: 'new-endpoint' }
  | { kind: 'endpoint'; id: string }
  | { kind: 'edit-endpoint'; id: string }
  | { kind: 'messages' }
  | { kind: 'message'; id: string }
  | { kind: 'attempt'; msgId: string; id: string };
export type Go = (view: View) => void;

/** Everything about one application: its endpoints, messages and attempts. The portal shows it; so does the dashboard. */
export function AppView({ api, app, can, view, go }: { api: Api; app: Application; can: Can; view: View; go: Go }) {
  const base = `/api/v1/app/${enc(app.id)}`;
  const tab = view.kind === 'messages' || view.kind === 'message' || view.kind === 'attempt' ? 'messages' : 'endpoints';
  useEffect(() => {
    document.getElementById('main-heading')?.focus();
  }, [view.kind]);
  return (
    <>
      <nav class="tabs" aria-label="Sections">
        <button type="button" aria-current={tab === 'endpoints' ? 'page' : undefined} onClick={() => go({ kind: 'endpoints' })}>
          Endpoints
        </button>
        <button type="button" aria-current={tab === 'messages' ? 'page' : undefined} onClick={() => go({ kind: 'messages' })}>
          Messages
        </button>
      </nav>
      <div id="main-heading" tabIndex={-1} class="sr-only">
        {app.name}
      </div>
      {view.kind === 'endpoints' ? <EndpointList api={api} base={base} go={go} can={can} /> : null}
      {view.kind === 'new-endpoint' ? <EndpointForm api={api} base={base} go={go} /> : null}
      {view.kind === 'edit-endpoint' ? <EditEndpoint api={api} base={base} id={view.id} go={go} /> : null}
      {view.kind === 'endpoint' ? <EndpointDetail key={view.id} api={api} base={base} id={view.id} go={go} can={can} /> : null}
      {view.kind === 'messages' ? <MessageList api={api} base={base} go={go} /> : null}
      {view.kind === 'message' ? <MessageDetail key={view.id} api={api} base={base} id={view.id} go={go} can={can} /> : null}
      {view.kind === 'attempt' ? <AttemptDetail api={api} base={base} msgId={view.msgId} id={view.id} go={go} /> : null}
    </>
  );
}

function EditEndpoint({ api, base, id, go }: { api: Api; base: string; id: string; go: Go }) {
  const endpoint = useLoad(() => api.get<Endpoint>(`${base}/endpoint/${enc(id)}`), [id]);
  if (!endpoint.value) return <>{endpoint.error ? <Alert error={endpoint.error} /> : <Spinner when />}</>;
  return <EndpointForm api={api} base={base} go={go} existing={endpoint.value} />;
}

export function useView(initial: View): [View, Go] {
  const [view, setView] = useState<View>(initial);
  return [view, setView];
}
