import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ADMIN_ERRORS, OpenApiRegistry } from '../../core/http/openapi.js';
import { MAX_PUBLISH_IDS } from './jac.codec.js';

const json = (schema: Record<string, unknown>): Record<string, unknown> => ({
  content: { 'application/json': { schema } },
});

const idList = { type: 'array', items: { type: 'string', maxLength: 512 }, maxItems: MAX_PUBLISH_IDS };

/** jac's part of `GET /admin/openapi.json`. */
@Injectable()
export class JacOpenApi implements OnModuleInit {
  constructor(private readonly openApi: OpenApiRegistry) {}

  onModuleInit(): void {
    this.openApi.add({
      '/admin/jac/tokens': {
        post: {
          summary: 'Issue a jac token (HS256 JWT with claim root_id)',
          requestBody: json({
            type: 'object',
            additionalProperties: false,
            properties: {
              root_id: { type: 'string', pattern: '^n:[A-Za-z0-9_]*:[0-9a-f]{24}$' },
              expires_in_s: { type: 'integer', minimum: 1, maximum: 31536000, default: 86400 },
            },
          }),
          responses: {
            '201': {
              description: 'The token',
              ...json({ type: 'object', properties: { token: { type: 'string' }, root_id: { type: 'string' } } }),
            },
            ...ADMIN_ERRORS,
          },
        },
      },
      '/admin/jac/notify': {
        post: {
          summary: 'notify_users / notify_channels / notify_clients from the server side',
          requestBody: json({
            type: 'object',
            required: ['data'],
            additionalProperties: false,
            properties: { root_ids: idList, channel_ids: idList, client_ids: idList, data: { type: 'object' } },
          }),
          responses: { '202': { description: 'Published to every instance' }, ...ADMIN_ERRORS },
        },
      },
      '/walker/{name}': {
        post: {
          summary: 'Run a walker over HTTP; the body is its context',
          security: [{}, { admin: [] }],
          parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: json({ type: 'object' }),
          responses: {
            '200': {
              description: 'The walker ran',
              ...json({ type: 'object', properties: { status: { const: 200 }, reports: { type: 'array' } } }),
            },
            '400': { $ref: '#/components/responses/BadRequest' },
            '401': { description: 'The walker requires a valid bearer token' },
            '404': { $ref: '#/components/responses/NotFound' },
          },
        },
      },
    });
  }
}
