import { h, replace, time } from '../dom.js';
import type { FeedEvent } from '../types.js';

/** Rows kept on the page; older ones go. */
const MAX_ROWS = 200;

/** Every message the gateway publishes, newest first; pausing holds new ones back. */
export class FeedView {
  readonly element: HTMLElement;
  private readonly list = h('ol', { class: 'feed', id: 'feed-list', 'aria-live': 'off' });
  private readonly pause = h('button', { type: 'button', id: 'feed-pause', class: 'secondary' }, 'Pause');
  private readonly note = h('span', { class: 'muted', id: 'feed-note' });
  private paused = false;
  private held: FeedEvent[] = [];
  private heldCount = 0;

  constructor() {
    this.pause.addEventListener('click', () => this.toggle());
    const clear = h('button', { type: 'button', class: 'secondary' }, 'Clear');
    clear.addEventListener('click', () => replace(this.list));
    this.element = h(
      'section',
      { class: 'card', id: 'feed', 'aria-labelledby': 'feed-title' },
      h(
        'div',
        { class: 'card-head' },
        h('h2', { id: 'feed-title' }, 'Live feed'),
        h('div', { class: 'actions' }, this.note, this.pause, clear),
      ),
      h(
        'p',
        { class: 'muted hint' },
        'Every message published on the bus, as this instance delivers it (payloads cut at 200 bytes; cluster housekeeping left out).',
      ),
      this.list,
    );
  }

  add(event: FeedEvent): void {
    if (this.paused) {
      this.heldCount++;
      this.held.push(event);
      if (this.held.length > MAX_ROWS) this.held.shift();
      this.note.textContent = `${this.heldCount} new while paused`;
      return;
    }
    this.list.prepend(row(event));
    while (this.list.childElementCount > MAX_ROWS) this.list.lastElementChild?.remove();
  }

  /** The server skipped events because this page fell behind. */
  dropped(count: number): void {
    const item = h(
      'li',
      { class: 'dropped' },
      `${count} event${count === 1 ? '' : 's'} dropped: the page fell behind the stream`,
    );
    if (this.paused) return;
    this.list.prepend(item);
  }

  private toggle(): void {
    this.paused = !this.paused;
    this.pause.textContent = this.paused ? 'Resume' : 'Pause';
    this.pause.setAttribute('aria-pressed', String(this.paused));
    if (this.paused) {
      this.note.textContent = 'paused';
      return;
    }
    const held = this.held;
    this.held = [];
    this.heldCount = 0;
    this.note.textContent = '';
    for (const event of held) this.add(event);
  }
}

function row(event: FeedEvent): HTMLElement {
  return h(
    'li',
    { class: 'event', 'data-topic': event.topic, 'data-seq': event.seq },
    h(
      'div',
      { class: 'event-head' },
      h('time', { dateTime: event.at }, time(event.at)),
      h('span', { class: 'topic' }, event.topic),
      h('span', { class: 'target' }, target(event.target)),
      h('span', { class: 'muted' }, `${event.size} B${event.local ? '' : ' · from another instance'}`),
    ),
    h('code', { class: 'preview' }, event.preview + (event.truncated ? '…' : '')),
  );
}

function target({ kind, ids, count }: FeedEvent['target']): string {
  if (kind === 'all') return 'everyone';
  const shown = (ids ?? []).join(', ');
  const more = count !== undefined && ids !== undefined && count > ids.length ? ` +${count - ids.length} more` : '';
  return `${kind} ${shown}${more}`;
}
