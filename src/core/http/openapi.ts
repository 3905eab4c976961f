import { Injectable } from '@nestjs/common';

export type OpenApiPaths = Record<string, Record<string, unknown>>;

/**
 * The OpenAPI document served at `GET /admin/openapi.json`. Each module adds the
 * routes it owns when it starts, so a new protocol documents itself.
 */
@Injectable()
export class OpenApiRegistry {
  private readonly paths: OpenApiPaths = {};
  private readonly schemas: Record<string, unknown> = {};

  add(paths: OpenApiPaths, schemas: Record<string, unknown> = {}): void {
    for (const [path, item] of Object.entries(paths)) this.paths[path] = { ...this.paths[path], ...item };
    Object.assign(this.schemas, schemas);
  }

  document(): Record<string, unknown> {
    return {
      openapi: '3.1.0',
      info: {
        title: 'Gatehouse admin and publish API',
        version: '0.1.0',
        description: 'Feeds the WebSocket gateways: tokens, publishes, stored data and connections.',
      },
      components: {
        securitySchemes: {
          admin: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
          metrics: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, for /metrics' },
        },
        schemas: { Error: ERROR_SCHEMA, ...this.schemas },
        responses: STANDARD_RESPONSES,
      },
      security: [{ admin: [] }],
      paths: this.paths,
    };
  }
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['statusCode', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
  },
};

const errorResponse = (description: string): Record<string, unknown> => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

const STANDARD_RESPONSES = {
  BadRequest: errorResponse('Invalid body or path id; one message per bad field'),
  Unauthorized: errorResponse('Missing or wrong admin bearer token'),
  NotFound: errorResponse('Unknown id'),
  PayloadTooLarge: errorResponse('Body over 1 MiB'),
  Unavailable: errorResponse('Redis is configured and does not answer'),
};

/** The responses every admin route can give, for `add()` callers. */
export const ADMIN_ERRORS = {
  '400': { $ref: '#/components/responses/BadRequest' },
  '401': { $ref: '#/components/responses/Unauthorized' },
  '413': { $ref: '#/components/responses/PayloadTooLarge' },
  '503': { $ref: '#/components/responses/Unavailable' },
};
