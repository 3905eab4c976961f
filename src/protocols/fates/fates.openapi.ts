import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ADMIN_ERRORS, OpenApiRegistry } from '../../core/http/openapi.js';

const json = (schema: Record<string, unknown>): Record<string, unknown> => ({
  content: { 'application/json': { schema } },
});

const ref = (name: string): Record<string, unknown> => ({ $ref: `#/components/schemas/${name}` });

const idParameter = {
  name: 'id',
  in: 'path',
  required: true,
  description:
    'Discord-style snowflake: an unsigned 64-bit integer in decimal, 0 to 18446744073709551615 (1 to 20 digits; leading zeros are ignored)',
  schema: { type: 'string', pattern: '^[0-9]{1,20}$' },
};

const NOT_FOUND = { '404': { $ref: '#/components/responses/NotFound' } };

const SCHEMAS = {
  FatesToken: {
    type: 'object',
    required: ['token'],
    additionalProperties: false,
    properties: { token: { type: 'string', minLength: 1, maxLength: 512 } },
  },
  FatesEvent: {
    type: 'object',
    description: 'An event (docs/protocols/fates.md): `m` metadata, `ctx` context, any further keys kept as given',
    required: ['m', 'ctx'],
    properties: {
      m: {
        type: 'object',
        required: ['e'],
        properties: {
          e: { type: 'integer', description: 'event type (0 bot_vote ... 81 staff_unlock)' },
          t: { type: 'integer', description: 'event sub-type, -1 when none' },
          eid: { type: 'string', maxLength: 128, description: 'set to a new uuid v4 when absent' },
          ts: { type: 'number', description: 'seconds since the epoch; set to now when absent' },
        },
      },
      ctx: { type: 'object' },
    },
  },
  FatesEventAccepted: { type: 'object', required: ['eid'], properties: { eid: { type: 'string' } } },
  FatesEventList: {
    type: 'object',
    required: ['events'],
    properties: { events: { type: 'array', items: ref('FatesEvent') } },
  },
};

function tokenRoutes(kind: 'bot' | 'server'): Record<string, unknown> {
  return {
    parameters: [idParameter],
    put: {
      summary: `Set or rotate a ${kind}'s API token (stored hashed); connections holding another token close 4004`,
      requestBody: json(ref('FatesToken')),
      responses: { '204': { description: 'Stored' }, ...ADMIN_ERRORS },
    },
    delete: {
      summary: `Remove a ${kind}'s API token; its connections close 4004 on every instance`,
      responses: { '204': { description: 'Removed' }, ...NOT_FOUND, ...ADMIN_ERRORS },
    },
  };
}

function eventRoutes(kind: 'bot' | 'server' | 'global'): Record<string, unknown> {
  const whose = kind === 'global' ? 'the global channel (every Fates connection)' : `a ${kind}`;
  return {
    ...(kind === 'global' ? {} : { parameters: [idParameter] }),
    post: {
      summary: `Publish an event to ${whose}: stored for replay and delivered live on every instance`,
      requestBody: json(ref('FatesEvent')),
      responses: {
        '202': { description: 'Accepted', ...json(ref('FatesEventAccepted')) },
        ...(kind === 'global' ? {} : NOT_FOUND),
        ...ADMIN_ERRORS,
      },
    },
    get: {
      summary: `The stored history of ${whose}, oldest first (empty when none)`,
      responses: { '200': { description: 'The history', ...json(ref('FatesEventList')) }, ...ADMIN_ERRORS },
    },
  };
}

/** Fates' part of `GET /admin/openapi.json`. */
@Injectable()
export class FatesOpenApi implements OnModuleInit {
  constructor(private readonly openApi: OpenApiRegistry) {}

  onModuleInit(): void {
    this.openApi.add(
      {
        '/admin/fates/bots/{id}/token': tokenRoutes('bot'),
        '/admin/fates/servers/{id}/token': tokenRoutes('server'),
        '/admin/fates/bots/{id}/events': eventRoutes('bot'),
        '/admin/fates/servers/{id}/events': eventRoutes('server'),
        '/admin/fates/global/events': eventRoutes('global'),
      },
      SCHEMAS,
    );
  }
}
