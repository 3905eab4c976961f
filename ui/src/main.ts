import './styles.css';
import { Api, ApiError, tokenStore } from './api.js';
import { h, replace } from './dom.js';
import { readStream } from './sse.js';
import type { ConnectionCounts, FeedEvent, Hello, InstanceView } from './types.js';
import { credentialsSection, publishSection } from './views/api-forms.js';
import { ConnectionsView } from './views/connections.js';
import { FeedView } from './views/feed.js';
import { InstancesView } from './views/instances.js';

const root = document.getElementById('app') as HTMLElement;

/** Waits between reconnects double up to this. */
const MAX_RETRY_MS = 10_000;

function showLogin(problem?: string): void {
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    placeholder: 'ADMIN_TOKEN',
  });
  const form = h(
    'form',
    { id: 'login', class: 'card login' },
    h('h1', {}, 'Gatehouse admin'),
    h(
      'p',
      { class: 'muted' },
      'The admin token is ADMIN_TOKEN, or the one printed on stderr at start-up when it is not set. It is kept in this tab only (sessionStorage) and sent as a bearer header.',
    ),
    problem ? h('p', { class: 'status error', id: 'login-error', role: 'alert' }, problem) : null,
    h('label', { for: 'token' }, h('span', {}, 'Admin token'), input),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit' }, 'Sign in')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token === '') return;
    tokenStore.set(token);
    showDashboard(token);
  });
  replace(root, h('main', { class: 'centered' }, form));
  input.focus();
}

function showDashboard(token: string): void {
  const api = new Api(token);
  const abort = new AbortController();
  const signOut = (problem?: string): void => {
    abort.abort();
    tokenStore.clear();
    showLogin(problem);
  };
  api.onUnauthorized = (message) => signOut(`${message}. Check the token and sign in again.`);

  const status = h('span', { id: 'stream-status', class: 'state pending', role: 'status' }, 'connecting…');
  const where = h('span', { class: 'muted', id: 'instance-id' });
  const banner = h('div', { id: 'banner', class: 'banner', role: 'alert', hidden: true });
  const leave = h('button', { type: 'button', class: 'secondary small' }, 'Sign out');
  leave.addEventListener('click', () => signOut());

  const instances = new InstancesView();
  const connections = new ConnectionsView(api);
  const feed = new FeedView();
  replace(
    root,
    h('header', { class: 'top' }, h('h1', {}, 'Gatehouse'), h('div', { class: 'top-state' }, status, where, leave)),
    banner,
    h(
      'main',
      { class: 'grid' },
      instances.element,
      connections.element,
      feed.element,
      publishSection(api),
      credentialsSection(api),
    ),
  );

  const setStatus = (state: 'live' | 'pending' | 'down', text: string): void => {
    status.className = `state ${state === 'live' ? 'ok' : state}`;
    status.textContent = text;
  };
  const redisState = (list: InstanceView[]): void => {
    const down = list.filter((i) => i.redis !== null && (!i.available || Object.values(i.redis).some((up) => !up)));
    banner.hidden = down.length === 0;
    banner.textContent =
      down.length === 0
        ? ''
        : `Redis is unavailable (${down.map((i) => i.id).join(', ')}): admin writes answer 503 and other instances cannot be reached until it is back.`;
  };

  const handle = (event: string, data: unknown): void => {
    switch (event) {
      case 'hello': {
        const hello = data as Hello;
        where.textContent = `${hello.engine} · ${hello.instance}`;
        setStatus('live', 'live');
        break;
      }
      case 'instances': {
        const list = (data as { instances: InstanceView[] }).instances;
        instances.showInstances(list);
        redisState(list);
        break;
      }
      case 'connections': {
        const counts = data as ConnectionCounts;
        instances.showCounts(counts);
        connections.offer(Object.keys(counts.by_protocol), Object.keys(counts.by_instance));
        void connections.refresh();
        break;
      }
      case 'publish':
        feed.add(data as FeedEvent);
        break;
      case 'dropped':
        feed.dropped((data as { count: number }).count);
        break;
      case 'shutdown':
        setStatus('down', 'the gateway is shutting down');
        break;
    }
  };

  void (async () => {
    let retryMs = 1000;
    while (!abort.signal.aborted) {
      let stopping = false;
      try {
        await readStream(token, abort.signal, (event, data) => {
          retryMs = 1000;
          if (event === 'shutdown') stopping = true;
          handle(event, data);
        });
        if (abort.signal.aborted) return;
        setStatus('down', stopping ? 'the gateway stopped; reconnecting…' : 'the stream ended; reconnecting…');
      } catch (err) {
        if (abort.signal.aborted) return;
        if (err instanceof ApiError && err.status === 401) {
          signOut(`${err.message}. Check the token and sign in again.`);
          return;
        }
        setStatus(
          'down',
          err instanceof ApiError ? `${err.message}; retrying…` : 'the gateway does not answer; reconnecting…',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    }
  })();
}

const saved = tokenStore.get();
if (saved) showDashboard(saved);
else showLogin();
