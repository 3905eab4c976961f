import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ADMIN_ERRORS, OpenApiRegistry } from '../../core/http/openapi.js';

const json = (schema: Record<string, unknown>): Record<string, unknown> => ({
  content: { 'application/json': { schema } },
});

const snowflake = { type: 'string', pattern: '^[0-9]{1,20}$' };
const idParam = { name: 'id', in: 'path', required: true, schema: snowflake };
const sessionParam = {
  name: 'sessionId',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,512}$' },
};
const notFound = { '404': { $ref: '#/components/responses/NotFound' } };
const offer = json({
  type: 'object',
  required: ['port', 'url'],
  properties: { port: { type: 'integer' }, url: { type: 'string', examples: ['wss://gateway.example.com:443/hatsu'] } },
});

/** hatsu's part of `GET /admin/openapi.json` (docs/protocols/hatsu.md). */
@Injectable()
export class HatsuOpenApi implements OnModuleInit {
  constructor(private readonly openApi: OpenApiRegistry) {}

  onModuleInit(): void {
    this.openApi.add(
      {
        '/available': {
          get: {
            summary: 'hatsu discovery: the least-loaded live instance',
            security: [{}],
            responses: { '200': { description: 'Where to connect', ...offer } },
          },
        },
        '/port': {
          get: {
            summary: 'hatsu discovery (the earlier document\u2019s route): same as /available',
            security: [{}],
            responses: { '200': { description: 'Where to connect', ...offer } },
          },
        },
        '/admin/hatsu/users/{id}': {
          put: {
            summary: 'Store a hatsu user object (READY\u2019s d); _id is set from the path',
            parameters: [idParam],
            requestBody: json({ $ref: '#/components/schemas/HatsuUser' }),
            responses: { '204': { description: 'Stored' }, ...ADMIN_ERRORS },
          },
        },
        '/admin/hatsu/guilds/{id}': {
          put: {
            summary: 'Store a guild, its channels and its member ids',
            parameters: [idParam],
            requestBody: json({
              type: 'object',
              required: ['guild', 'channels', 'members'],
              additionalProperties: false,
              properties: {
                guild: { type: 'object' },
                channels: { type: 'array', items: { type: 'object' }, maxItems: 10000 },
                members: { type: 'array', items: snowflake, maxItems: 100000 },
              },
            }),
            responses: { '204': { description: 'Stored; live member sessions follow the change' }, ...ADMIN_ERRORS },
          },
        },
        '/admin/hatsu/sessions/{sessionId}': {
          put: {
            summary: 'Make a session id valid for a user',
            parameters: [sessionParam],
            requestBody: json({
              type: 'object',
              required: ['user_id'],
              additionalProperties: false,
              properties: { user_id: snowflake },
            }),
            responses: { '204': { description: 'Stored (hashed)' }, ...notFound, ...ADMIN_ERRORS },
          },
          delete: {
            summary: 'Invalidate a session id; live connections on it close 4002',
            parameters: [sessionParam],
            responses: { '204': { description: 'Invalidated' }, ...notFound, ...ADMIN_ERRORS },
          },
        },
        '/admin/hatsu/dispatch': {
          post: {
            summary: 'Send an event to a guild\u2019s members, a user, or everyone',
            requestBody: json({ $ref: '#/components/schemas/HatsuDispatch' }),
            responses: {
              '202': {
                description: 'Sent; sessions = how many sessions it was sent to, on every instance',
                ...json({ type: 'object', required: ['sessions'], properties: { sessions: { type: 'integer' } } }),
              },
              ...notFound,
              ...ADMIN_ERRORS,
            },
          },
        },
      },
      {
        HatsuUser: {
          type: 'object',
          properties: {
            username: { type: 'string' },
            separator: { type: 'string' },
            avatar_url: { type: ['string', 'null'] },
            banner_url: { type: ['string', 'null'] },
            flags: { type: 'integer' },
            verified: { type: 'boolean' },
            system: { type: 'boolean' },
          },
          not: { required: ['session_ids'] },
          additionalProperties: true,
        },
        HatsuDispatch: {
          type: 'object',
          required: ['t', 'to'],
          additionalProperties: false,
          properties: {
            t: { type: 'string', pattern: '^[A-Za-z0-9_]{1,64}$', not: { enum: ['HELLO', 'READY', 'ACK'] } },
            d: { description: 'Any JSON; not with NOTIFICATION' },
            type: { type: 'string', maxLength: 64, description: 'NOTIFICATION only, required there' },
            excerpt: { type: 'object', description: 'NOTIFICATION only, required there' },
            id: { ...snowflake, description: 'PRESENCE_UPDATE only, required there: the user it is about' },
            to: {
              oneOf: [
                {
                  type: 'object',
                  required: ['guild_id'],
                  additionalProperties: false,
                  properties: { guild_id: snowflake },
                },
                {
                  type: 'object',
                  required: ['user_id'],
                  additionalProperties: false,
                  properties: { user_id: snowflake },
                },
                {
                  type: 'object',
                  required: ['all'],
                  additionalProperties: false,
                  properties: { all: { const: true } },
                },
              ],
            },
          },
        },
      },
    );
  }
}
