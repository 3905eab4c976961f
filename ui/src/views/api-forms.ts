import { h } from '../dom.js';
import type { Api } from '../api.js';
import { apiForm, FormProblem, idList, json, pathPart, required, type FormSpec } from './forms.js';

const PUBLISH: FormSpec[] = [
  {
    id: 'jac-notify',
    title: 'jac: notify',
    hint: 'POST /admin/jac/notify: a notify to jac users (root ids), channels or clients.',
    submit: 'Send notify',
    success: 'accepted',
    fields: [
      {
        name: 'to',
        label: 'To',
        kind: 'select',
        options: [
          ['root_ids', 'users (root ids)'],
          ['channel_ids', 'channels'],
          ['client_ids', 'clients'],
        ],
      },
      { name: 'ids', label: 'Ids (comma-separated)', placeholder: 'n::… or a channel or client id' },
      { name: 'data', label: 'data (JSON object)', kind: 'json', value: '{"hello": "world"}' },
    ],
    request: (v) => ({
      method: 'POST',
      path: '/admin/jac/notify',
      body: { [String(v['to'])]: idList(v, 'ids'), data: json(v, 'data') },
    }),
  },
  {
    id: 'fates-event',
    title: 'Fates: event',
    hint: 'POST /admin/fates/{bots,servers}/:id/events or /admin/fates/global/events. The bot or server needs a token first.',
    submit: 'Publish event',
    success: 'accepted',
    fields: [
      {
        name: 'where',
        label: 'For',
        kind: 'select',
        options: [
          ['bots', 'a bot'],
          ['servers', 'a server'],
          ['global', 'everyone (global)'],
        ],
      },
      { name: 'id', label: 'Bot or server id', placeholder: 'snowflake', when: (v) => v['where'] !== 'global' },
      {
        name: 'event',
        label: 'Event (JSON)',
        kind: 'json',
        value: '{"m": {"e": 0}, "ctx": {"user": "1", "votes": 1}}',
      },
    ],
    request: (v) => ({
      method: 'POST',
      path:
        v['where'] === 'global'
          ? '/admin/fates/global/events'
          : `/admin/fates/${String(v['where'])}/${pathPart(required(v, 'id', 'Bot or server id'))}/events`,
      body: json(v, 'event', 'Event'),
    }),
  },
  {
    id: 'hatsu-dispatch',
    title: 'hatsu: dispatch',
    hint: 'POST /admin/hatsu/dispatch: an event to a guild’s members, a user, or everyone.',
    submit: 'Dispatch',
    success: 'accepted',
    fields: [
      { name: 't', label: 'Event name (t)', value: 'MESSAGE_CREATE' },
      {
        name: 'to',
        label: 'To',
        kind: 'select',
        options: [
          ['all', 'everyone'],
          ['guild_id', 'a guild’s members'],
          ['user_id', 'a user'],
        ],
      },
      { name: 'id', label: 'Guild or user id', placeholder: 'snowflake', when: (v) => v['to'] !== 'all' },
      {
        name: 'presence',
        label: 'Whose presence (id)',
        placeholder: 'snowflake',
        when: (v) => v['t'] === 'PRESENCE_UPDATE',
      },
      {
        name: 'd',
        label: 'd (JSON; for NOTIFICATION: {"type": …, "excerpt": {…}})',
        kind: 'json',
        value: '{"content": "hello"}',
      },
    ],
    request: (v) => {
      const t = required(v, 't', 'Event name');
      const to = v['to'] === 'all' ? { all: true } : { [String(v['to'])]: required(v, 'id', 'Guild or user id') };
      const d = json(v, 'd', 'd');
      let body: Record<string, unknown>;
      if (t === 'NOTIFICATION') {
        if (typeof d !== 'object' || d === null || Array.isArray(d))
          throw new FormProblem('d: must be {"type", "excerpt"}');
        body = { t, ...(d as Record<string, unknown>), to };
      } else {
        body = { t, d, to };
      }
      if (t === 'PRESENCE_UPDATE') body['id'] = required(v, 'presence', 'Whose presence');
      return { method: 'POST', path: '/admin/hatsu/dispatch', body };
    },
  },
  {
    id: 'felix-update',
    title: 'Felix: guild or user update',
    hint: 'PUT /admin/felix/{guilds,users}/:id: stores the object and tells its listeners.',
    submit: 'Store and notify',
    success: 'stored',
    fields: [
      {
        name: 'kind',
        label: 'Kind',
        kind: 'select',
        options: [
          ['guilds', 'guild'],
          ['users', 'user'],
        ],
      },
      { name: 'id', label: 'Id', placeholder: 'snowflake' },
      { name: 'document', label: 'Object (JSON)', kind: 'json', value: '{"name": "Example"}' },
    ],
    request: (v) => ({
      method: 'PUT',
      path: `/admin/felix/${String(v['kind'])}/${pathPart(required(v, 'id', 'Id'))}`,
      body: json(v, 'document', 'Object'),
    }),
  },
];

const CREDENTIALS: FormSpec[] = [
  {
    id: 'jac-token',
    title: 'jac: mint a token',
    hint: 'POST /admin/jac/tokens: a JWT for a root id (a new one when left empty), sent by clients as Authorization: Bearer.',
    submit: 'Mint token',
    success: 'created',
    fields: [
      { name: 'root_id', label: 'Root id (optional)', placeholder: 'n::<24 hex>' },
      { name: 'expires_in_s', label: 'Expires in seconds (optional)', kind: 'number', placeholder: '3600' },
    ],
    request: (v) => {
      const body: Record<string, unknown> = {};
      if (v['root_id'] !== '') body['root_id'] = v['root_id'];
      if (v['expires_in_s'] !== '') {
        const seconds = Number(v['expires_in_s']);
        if (!Number.isSafeInteger(seconds)) throw new FormProblem('Expires in seconds: must be a whole number');
        body['expires_in_s'] = seconds;
      }
      return { method: 'POST', path: '/admin/jac/tokens', body };
    },
  },
  {
    id: 'fates-token',
    title: 'Fates: set a token',
    hint: 'PUT /admin/fates/{bots,servers}/:id/token: sets or rotates the API token a bot or server identifies with.',
    submit: 'Set token',
    success: 'set',
    fields: [
      {
        name: 'kind',
        label: 'For',
        kind: 'select',
        options: [
          ['bots', 'a bot'],
          ['servers', 'a server'],
        ],
      },
      { name: 'id', label: 'Bot or server id', placeholder: 'snowflake' },
      { name: 'token', label: 'Token', placeholder: 'the API token' },
    ],
    request: (v) => ({
      method: 'PUT',
      path: `/admin/fates/${String(v['kind'])}/${pathPart(required(v, 'id', 'Bot or server id'))}/token`,
      body: { token: required(v, 'token', 'Token') },
    }),
  },
  {
    id: 'felix-token',
    title: 'Felix: create a token',
    hint: 'POST /admin/felix/tokens: generated in Felix’s format unless you give one.',
    submit: 'Create token',
    success: 'created',
    fields: [
      { name: 'user', label: 'User (optional)', placeholder: 'who it is for' },
      { name: 'token', label: 'Token (optional)', placeholder: '16 to 512 visible characters' },
      { name: 'public', label: 'Public token', kind: 'checkbox' },
    ],
    request: (v) => {
      const body: Record<string, unknown> = {};
      if (v['user'] !== '') body['user'] = v['user'];
      if (v['token'] !== '') body['token'] = v['token'];
      if (v['public'] === true) body['public'] = true;
      return { method: 'POST', path: '/admin/felix/tokens', body };
    },
  },
  {
    id: 'hatsu-session',
    title: 'hatsu: create a session',
    hint: 'PUT /admin/hatsu/sessions/:sessionId: makes a session id valid for a user (the user must exist: PUT /admin/hatsu/users/:id).',
    submit: 'Create session',
    success: 'created',
    fields: [
      { name: 'session', label: 'Session id', placeholder: 'any printable characters' },
      { name: 'user_id', label: 'User id', placeholder: 'snowflake' },
    ],
    request: (v) => ({
      method: 'PUT',
      path: `/admin/hatsu/sessions/${pathPart(required(v, 'session', 'Session id'))}`,
      body: { user_id: required(v, 'user_id', 'User id') },
    }),
  },
];

export function publishSection(api: Api): HTMLElement {
  return h(
    'section',
    { class: 'card', id: 'publish', 'aria-labelledby': 'publish-title' },
    h('h2', { id: 'publish-title' }, 'Publish'),
    PUBLISH.map((spec, i) => apiForm(api, spec, i === 0)),
  );
}

export function credentialsSection(api: Api): HTMLElement {
  return h(
    'section',
    { class: 'card', id: 'credentials', 'aria-labelledby': 'credentials-title' },
    h('h2', { id: 'credentials-title' }, 'Credentials'),
    CREDENTIALS.map((spec) => apiForm(api, spec)),
  );
}
