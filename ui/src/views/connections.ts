import { describeFailure, type Api } from '../api.js';
import { h, replace, time } from '../dom.js';
import type { ClientInfo, ConnectionsPage } from '../types.js';
import { CallResult } from './call-result.js';

const PAGE_SIZE = 25;

/**
 * One page of `GET /admin/connections` with its filters. It is fetched again when the
 * stream says the counts changed, never on a timer.
 */
export class ConnectionsView {
  readonly element: HTMLElement;
  private readonly rows = h('tbody');
  private readonly summary = h('p', { class: 'muted', id: 'connections-summary', 'aria-live': 'polite' });
  private readonly problem = h('p', { class: 'status error', id: 'connections-error', role: 'alert', hidden: true });
  private readonly prev = h('button', { type: 'button', class: 'secondary', disabled: true }, '← Previous');
  private readonly next = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Next →');
  private readonly protocol = h(
    'select',
    { name: 'protocol', id: 'filter-protocol' },
    h('option', { value: '' }, 'any'),
  );
  private readonly instance = h(
    'select',
    { name: 'instance', id: 'filter-instance' },
    h('option', { value: '' }, 'any'),
  );
  private readonly user = h('input', {
    name: 'user',
    id: 'filter-user',
    type: 'search',
    placeholder: 'user id',
    autocomplete: 'off',
  });
  private readonly channel = h('input', {
    name: 'channel',
    id: 'filter-channel',
    type: 'search',
    placeholder: 'channel',
    autocomplete: 'off',
  });
  private readonly action = new CallResult();
  /** The cursor each page was fetched with: the last one is the current page. */
  private cursors: (string | null)[] = [null];
  private nextCursor: string | null = null;
  private loading = false;
  private again = false;

  constructor(private readonly api: Api) {
    const filters = h(
      'form',
      { class: 'filters', id: 'connection-filters' },
      field('Protocol', this.protocol),
      field('User', this.user),
      field('Channel', this.channel),
      field('Instance', this.instance),
    );
    const changed = (): void => {
      this.cursors = [null];
      void this.refresh();
    };
    filters.addEventListener('submit', (event) => {
      event.preventDefault();
      changed();
    });
    this.protocol.addEventListener('change', changed);
    this.instance.addEventListener('change', changed);
    // Typed filters apply once typing pauses.
    let typing: ReturnType<typeof setTimeout> | undefined;
    for (const input of [this.user, this.channel]) {
      input.addEventListener('input', () => {
        clearTimeout(typing);
        typing = setTimeout(changed, 300);
      });
    }
    this.prev.addEventListener('click', () => {
      if (this.cursors.length > 1) this.cursors.pop();
      void this.refresh();
    });
    this.next.addEventListener('click', () => {
      if (this.nextCursor === null) return;
      this.cursors.push(this.nextCursor);
      void this.refresh();
    });
    this.element = h(
      'section',
      { class: 'card', id: 'connections', 'aria-labelledby': 'connections-title' },
      h('h2', { id: 'connections-title' }, 'Connections'),
      filters,
      this.problem,
      this.summary,
      h(
        'div',
        { class: 'scroll' },
        h(
          'table',
          { class: 'clients' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'Client'),
              h('th', {}, 'Protocol'),
              h('th', {}, 'User'),
              h('th', {}, 'Channels'),
              h('th', {}, 'Instance'),
              h('th', {}, 'Since'),
              h('th', {}, h('span', { class: 'sr-only' }, 'Actions')),
            ),
          ),
          this.rows,
        ),
      ),
      h('div', { class: 'pager' }, this.prev, this.next),
      this.action.element,
    );
  }

  /** The protocols and instances the filters offer, from the stream's counts. */
  offer(protocols: string[], instances: string[]): void {
    offerOptions(this.protocol, protocols);
    offerOptions(this.instance, instances);
  }

  /** Fetches the current page; a call while one is running runs once more after it. */
  async refresh(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    try {
      do {
        this.again = false;
        await this.load();
      } while (this.again);
    } finally {
      this.loading = false;
    }
  }

  private async load(): Promise<void> {
    const filters: Record<'protocol' | 'user' | 'channel' | 'instance', string> = {
      protocol: this.protocol.value,
      user: this.user.value.trim(),
      channel: this.channel.value.trim(),
      instance: this.instance.value,
    };
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const [name, value] of Object.entries<string>(filters)) if (value !== '') query.set(name, value);
    const cursor = this.cursors.at(-1);
    if (cursor) query.set('cursor', cursor);
    const answer = await this.api.call('GET', `/admin/connections?${query.toString()}`);
    if (!answer.ok) {
      this.problem.hidden = false;
      this.problem.textContent = `Could not list the connections: ${describeFailure(answer.status, answer.body)}`;
      return;
    }
    this.problem.hidden = true;
    const page = answer.body as ConnectionsPage;
    if (page.clients.length === 0 && this.cursors.length > 1) {
      // The page emptied (its clients left): step back rather than show nothing.
      this.cursors.pop();
      this.again = true;
      return;
    }
    this.nextCursor = page.next_cursor;
    this.prev.disabled = this.cursors.length <= 1;
    this.next.disabled = page.next_cursor === null;
    const first = (this.cursors.length - 1) * PAGE_SIZE;
    this.summary.textContent =
      page.total === 0
        ? 'No connections match.'
        : `${first + 1}–${first + page.clients.length} of ${page.total} connection${page.total === 1 ? '' : 's'}`;
    replace(
      this.rows,
      page.clients.map((client) => this.row(client)),
    );
  }

  private row(client: ClientInfo): HTMLElement {
    const kick = h(
      'button',
      { type: 'button', class: 'small danger', 'aria-label': `Disconnect ${client.id}` },
      'Disconnect',
    );
    kick.addEventListener('click', () => {
      kick.disabled = true;
      void this.api.call('DELETE', `/admin/connections/${encodeURIComponent(client.id)}`).then((answer) => {
        this.action.show(answer, `disconnected ${client.id}`);
        if (!answer.ok) {
          kick.disabled = false;
          return;
        }
        // The close handshake may still be under way; the stream reports the close when it is done.
        kick.closest('tr')?.remove();
      });
    });
    return h(
      'tr',
      { 'data-client': client.id },
      h('td', { 'data-label': 'Client' }, h('code', { class: 'clip', title: client.id }, client.id)),
      h('td', { 'data-label': 'Protocol' }, client.protocol),
      h(
        'td',
        { 'data-label': 'User' },
        client.user === null
          ? h('span', { class: 'muted' }, '—')
          : h('span', { class: 'clip', title: client.user }, client.user),
      ),
      h(
        'td',
        { 'data-label': 'Channels' },
        client.channels.length > 0
          ? h('span', { class: 'clip', title: client.channels.join(', ') }, client.channels.join(', '))
          : h('span', { class: 'muted' }, '—'),
      ),
      h('td', { 'data-label': 'Instance' }, h('code', { class: 'clip', title: client.instance }, client.instance)),
      h('td', { 'data-label': 'Since' }, h('time', { dateTime: client.since }, time(client.since))),
      h('td', { class: 'actions' }, kick),
    );
  }
}

function field(label: string, control: HTMLElement): HTMLElement {
  return h('label', {}, h('span', {}, label), control);
}

function offerOptions(select: HTMLSelectElement, values: string[]): void {
  const current = select.value;
  const wanted = [...new Set([...values, ...(current === '' ? [] : [current])])].sort();
  const have = Array.from(select.options, (o) => o.value).slice(1);
  if (have.join('\n') === wanted.join('\n')) return;
  replace(
    select,
    h('option', { value: '' }, 'any'),
    wanted.map((v) => h('option', { value: v }, v)),
  );
  select.value = current;
}
