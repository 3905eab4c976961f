import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ADMIN_ERRORS, OpenApiRegistry } from '../../core/http/openapi.js';

const json = (schema: Record<string, unknown>): Record<string, unknown> => ({
  content: { 'application/json': { schema } },
});

const NOT_FOUND = { '404': { $ref: '#/components/responses/NotFound' } };

const snowflake = (name: string): Record<string, unknown> => ({
  name,
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[0-9]{1,20}$' },
});

/** A guild's or user's stored document, read and written whole. */
const documentRoutes = (kind: 'guild' | 'user', code: 10002 | 10003): Record<string, unknown> => ({
  parameters: [snowflake('id')],
  put: {
    summary: `Store a ${kind}'s data object and send ${code} to every socket listening to that ${kind}, on every instance`,
    requestBody: json({ type: 'object', description: 'The full data object, stored and sent as given' }),
    responses: { '204': { description: 'Stored and sent' }, ...ADMIN_ERRORS },
  },
  get: {
    summary: `The ${kind}'s stored data object`,
    responses: {
      '200': { description: 'The object as last stored', ...json({ type: 'object' }) },
      ...ADMIN_ERRORS,
      ...NOT_FOUND,
    },
  },
});

/** Felix's part of `GET /admin/openapi.json`. */
@Injectable()
export class FelixOpenApi implements OnModuleInit {
  constructor(private readonly openApi: OpenApiRegistry) {}

  onModuleInit(): void {
    this.openApi.add({
      '/admin/felix/tokens': {
        post: {
          summary: 'Register a Felix API token (generated in Felix’s 260-character format when none is given)',
          requestBody: json({
            type: 'object',
            additionalProperties: false,
            properties: {
              token: { type: 'string', pattern: '^[\\x21-\\x7e]{16,512}$' },
              user: { type: 'string', minLength: 1, maxLength: 128 },
              public: {
                type: 'boolean',
                default: false,
                description: 'Public tokens are kept but refused by the socket',
              },
            },
          }),
          responses: {
            '201': {
              description: 'The token; only its SHA-256 is stored, so this is the one time it is shown',
              ...json({
                type: 'object',
                required: ['id', 'token', 'public'],
                properties: {
                  id: { type: 'string', format: 'uuid' },
                  token: { type: 'string' },
                  public: { type: 'boolean' },
                },
              }),
            },
            '409': { description: 'That token is already registered' },
            ...ADMIN_ERRORS,
          },
        },
      },
      '/admin/felix/tokens/{tokenId}': {
        delete: {
          summary: 'Revoke a token; the sockets that authenticated with it are closed (1008) on every instance',
          parameters: [{ name: 'tokenId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
          responses: { '204': { description: 'Revoked' }, ...ADMIN_ERRORS, ...NOT_FOUND },
        },
      },
      '/admin/felix/guilds/{id}': documentRoutes('guild', 10002),
      '/admin/felix/users/{id}': documentRoutes('user', 10003),
      '/admin/felix/status': {
        put: {
          summary: "The bot's status, reported in every heartbeat ACK (10001)",
          requestBody: json({
            type: 'object',
            required: ['shards', 'guildsCount'],
            additionalProperties: false,
            properties: {
              shards: {
                type: 'array',
                maxItems: 10000,
                items: {
                  type: 'object',
                  description: 'An Eris shard; `latency` is renamed `ping`, and a shard with neither gets `ping: null`',
                  properties: { ping: { type: ['number', 'null'] } },
                },
              },
              guildsCount: { type: 'integer', minimum: 0 },
              memoryUsage: { type: 'number', minimum: 0, description: 'MB; the gateway’s own heap when absent' },
              uptime: {
                type: 'integer',
                minimum: 0,
                description: 'ms at the time of the report, advanced from then on; the gateway’s own when absent',
              },
            },
          }),
          responses: { '204': { description: 'Stored' }, ...ADMIN_ERRORS },
        },
      },
    });
  }
}
