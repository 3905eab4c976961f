import { duration, h, replace } from '../dom.js';
import type { ConnectionCounts, InstanceView } from '../types.js';

/** Every instance the stream reports, and the cluster's counts per protocol. */
export class InstancesView {
  readonly element: HTMLElement;
  private readonly table = h('tbody');
  private readonly totals = h('div', { class: 'chips', id: 'protocol-counts', 'aria-live': 'polite' });

  constructor() {
    this.element = h(
      'section',
      { class: 'card', id: 'instances', 'aria-labelledby': 'instances-title' },
      h('h2', { id: 'instances-title' }, 'Instances'),
      this.totals,
      h(
        'div',
        { class: 'scroll' },
        h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'Instance'),
              h('th', {}, 'Engine'),
              h('th', {}, 'Redis'),
              h('th', {}, 'Uptime'),
              h('th', {}, 'Connections'),
            ),
          ),
          this.table,
        ),
      ),
    );
  }

  showInstances(instances: InstanceView[]): void {
    replace(
      this.table,
      instances.map((instance) =>
        h(
          'tr',
          { 'data-instance': instance.id },
          h(
            'td',
            { 'data-label': 'Instance' },
            h('code', {}, instance.id),
            instance.self ? h('span', { class: 'badge' }, 'this page') : null,
          ),
          h(
            'td',
            { 'data-label': 'Engine' },
            instance.engine,
            ' ',
            h('span', { class: 'muted' }, `v${instance.version}`),
          ),
          h('td', { 'data-label': 'Redis', class: 'redis' }, redisCell(instance)),
          h('td', { 'data-label': 'Uptime' }, duration(instance.uptime_s)),
          h('td', { 'data-label': 'Connections', class: 'count' }, connectionsCell(instance)),
        ),
      ),
    );
  }

  showCounts(counts: ConnectionCounts): void {
    const protocols = Object.entries(counts.by_protocol).sort(([a], [b]) => a.localeCompare(b));
    replace(
      this.totals,
      h('span', { class: 'chip total' }, h('strong', {}, String(counts.total)), ' connections'),
      protocols.map(([name, n]) =>
        h('span', { class: 'chip', 'data-protocol': name }, `${name} `, h('strong', {}, String(n))),
      ),
    );
  }
}

function redisCell(instance: InstanceView): (Node | string)[] {
  if (instance.redis === null) return [h('span', { class: 'muted' }, 'none (embedded)')];
  const links = Object.entries(instance.redis);
  const up = links.every(([, ok]) => ok) && instance.available;
  return [
    h('span', { class: up ? 'state ok' : 'state down' }, up ? 'up' : 'down'),
    ' ',
    h('span', { class: 'muted' }, links.map(([name, ok]) => `${name} ${ok ? '✓' : '✗'}`).join(' · ')),
  ];
}

function connectionsCell(instance: InstanceView): (Node | string)[] {
  const parts = Object.entries(instance.connections.by_protocol)
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${name} ${n}`);
  return [
    h('strong', {}, String(instance.connections.total)),
    parts.length > 0 ? h('span', { class: 'muted' }, ` (${parts.join(', ')})`) : '',
  ];
}
