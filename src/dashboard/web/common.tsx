import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.js';

/**
 * Shared pieces. Everything shown goes through JSX text, which Preact writes with textContent: payloads, headers and
 * responses come from senders and receivers and are never parsed as HTML.
 */

export type Capability = 'ManageEndpoint' | 'ViewEndpointSecret' | 'ManageEndpointSecret' | 'CreateAttempts';
export type Can = (capability: Capability) => boolean;

export interface Loaded<T> {
  value: T | null;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` now and whenever `deps` change or `reload` is called. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ value: T | null; error: string | null; loading: boolean }>({ value: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (value) => live && setState({ value, error: null, loading: false }),
      (error) => live && setState({ value: null, error: messageOf(error), loading: false }),
    );
    return () => void (live = false);
  }, [...deps, tick]);
  return { ...state, reload: useCallback(() => setTick((t) => t + 1), []) };
}

export const messageOf = (error: unknown) =>
  error instanceof ApiError ? `${error.status === 403 ? 'Not allowed: ' : ''}${error.message} (${error.status})` : String((error as Error)?.message ?? error);

export function Alert({ error }: { error: string | null }) {
  return error ? (
    <p class="alert" role="alert">
      {error}
    </p>
  ) : null;
}

export function Spinner({ when }: { when: boolean }) {
  return when ? <p class="muted" aria-live="polite">Loading…</p> : null;
}

export function When({ iso }: { iso: string | null }) {
  if (!iso) return <span class="muted">—</span>;
  const date = new Date(iso);
  return <time dateTime={iso} title={iso}>{date.toLocaleString()}</time>;
}

export function Badge({ tone, children }: { tone: 'ok' | 'bad' | 'warn' | 'off'; children: ComponentChildren }) {
  return <span class={`badge ${tone}`}>{children}</span>;
}

export function AttemptStatus({ status, code }: { status: number; code: number }) {
  return status === 0 ? <Badge tone="ok">{`${code} success`}</Badge> : <Badge tone="bad">{code ? `${code} failed` : 'failed'}</Badge>;
}

/** A button that runs `action`, disables itself meanwhile, and reports the outcome next to itself. */
export function ActionButton({
  label,
  action,
  confirm: question,
  kind,
  disabled = false,
}: {
  label: string;
  action: () => Promise<unknown>;
  confirm?: string;
  kind?: 'danger';
  disabled?: boolean;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async () => {
    if (question && !window.confirm(question)) return;
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      <button type="button" class={kind} disabled={busy || disabled} onClick={run}>
        {label}
      </button>
      {error ? (
        <span class="alert inline" role="alert">
          {error}
        </span>
      ) : null}
    </span>
  );
}

/** Cursor pagination as the API does it: keep the iterators of the pages seen to go back. */
export function usePager() {
  const [stack, setStack] = useState<(string | null)[]>([null]);
  const iterator = stack[stack.length - 1];
  return {
    iterator,
    reset: () => setStack([null]),
    controls: (next: string | null, done: boolean) => (
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={stack.length === 1} onClick={() => setStack(stack.slice(0, -1))}>
          Newer
        </button>
        <button type="button" disabled={done || !next} onClick={() => setStack([...stack, next])}>
          Older
        </button>
      </nav>
    ),
  };
}

/**
 * A payload as the API returned it: `raw` is the field's JSON text exactly as in the answer (a JSON string payload is
 * shown as its content). "Indent" reformats JSON for reading; the exact text stays one click away.
 */
export function PayloadView({ raw, testId }: { raw: string; testId: string }) {
  const [indent, setIndent] = useState(false);
  const text = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  let indented: string | null = null;
  if (!raw.startsWith('"')) {
    try {
      indented = JSON.stringify(JSON.parse(raw), null, 2);
    } catch {
      indented = null;
    }
  }
  return (
    <>
      {indented !== null ? (
        <div class="buttons">
          <button type="button" aria-pressed={indent} onClick={() => setIndent(!indent)}>
            {indent ? 'As received' : 'Indent'}
          </button>
        </div>
      ) : null}
      <pre class="payload" data-testid={testId} tabIndex={0}>
        {indent && indented !== null ? indented : text}
      </pre>
    </>
  );
}
