import { Module, type OnModuleInit } from '@nestjs/common';
import { ADMIN_ERRORS, OpenApiRegistry } from '../core/http/openapi.js';
import { ConnectionsController } from './connections.controller.js';
import { IndexController } from './index.controller.js';
import { InstanceDirectory } from './live/instance-directory.js';
import { LiveStreams } from './live/live-streams.js';
import { StreamController } from './live/stream.controller.js';
import { OpenApiController } from './openapi.controller.js';
import { AdminUiController } from './ui/admin-ui.controller.js';

/**
 * Cross-protocol admin routes: connections, the API description, the live stream and the
 * admin page that reads it, and the index at `/`.
 */
@Module({
  controllers: [ConnectionsController, OpenApiController, StreamController, AdminUiController, IndexController],
  providers: [InstanceDirectory, LiveStreams],
})
export class AdminModule implements OnModuleInit {
  constructor(private readonly openApi: OpenApiRegistry) {}

  onModuleInit(): void {
    this.openApi.add(
      {
        '/admin/connections': {
          get: {
            summary: 'Every connection on every instance, paged by id',
            parameters: [
              { name: 'protocol', in: 'query', schema: { type: 'string' } },
              {
                name: 'cursor',
                in: 'query',
                schema: { type: 'string' },
                description: 'next_cursor of the previous page',
              },
              { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
            ],
            responses: {
              '200': {
                description: 'Counts and one page of clients',
                content: {
                  'application/json': {
                    schema: {
                      type: 'object',
                      properties: {
                        total: { type: 'integer' },
                        by_protocol: { type: 'object', additionalProperties: { type: 'integer' } },
                        by_instance: { type: 'object', additionalProperties: { type: 'integer' } },
                        clients: { type: 'array', items: { $ref: '#/components/schemas/Client' } },
                        next_cursor: { type: ['string', 'null'] },
                      },
                    },
                  },
                },
              },
              ...ADMIN_ERRORS,
            },
          },
        },
        '/admin/connections/{clientId}': {
          delete: {
            summary: "Closes a client with its protocol's normal close code, on whichever instance holds it",
            parameters: [{ name: 'clientId', in: 'path', required: true, schema: { type: 'string' } }],
            responses: {
              '204': { description: 'Closed' },
              '404': { $ref: '#/components/responses/NotFound' },
              ...ADMIN_ERRORS,
            },
          },
        },
        '/admin/openapi.json': {
          get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } },
        },
        '/metrics': {
          get: {
            summary: 'Prometheus metrics (text format 0.0.4); on METRICS_PORT instead when it is set',
            description:
              'Bearer METRICS_TOKEN when it is set, else open. Absent with METRICS_ENABLED=false. ' +
              'The families are listed in docs/operations.md.',
            security: [{ metrics: [] }, {}],
            responses: {
              '200': { description: 'The exposition', content: { 'text/plain': { schema: { type: 'string' } } } },
              '401': { description: 'METRICS_TOKEN is set and the request does not carry it' },
            },
          },
        },
        '/health/live': {
          get: { summary: 'Liveness', security: [], responses: { '200': { description: 'Running' } } },
        },
        '/health/ready': {
          get: {
            summary: 'Readiness: the engine answers and the process is not shutting down',
            security: [],
            responses: { '200': { description: 'Ready' }, '503': { description: 'Not ready' } },
          },
        },
      },
      {
        Client: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            protocol: { type: 'string' },
            user: { type: ['string', 'null'] },
            channels: { type: 'array', items: { type: 'string' } },
            instance: { type: 'string' },
            since: { type: 'string', format: 'date-time' },
          },
        },
      },
    );
  }
}
