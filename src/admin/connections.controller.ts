import { Delete, Get, HttpCode, Param, Query } from '@nestjs/common';
import { AdminController } from '../core/auth/admin-controller.decorator.js';
import { notFound } from '../core/http/http-errors.js';
import { ClientRegistry } from '../core/registry/client-registry.js';
import type { ClientInfo } from '../core/registry/connection.js';
import { ListConnectionsQuery } from './list-connections.query.js';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiSchema } from '@nestjs/swagger';
import { ApiErrors } from '../core/http/openapi.js';

const DEFAULT_PAGE = 100;

@ApiSchema({ name: 'Client' })
class ClientInfoBody implements ClientInfo {
  @ApiProperty()
  id!: string;

  @ApiProperty()
  protocol!: string;

  @ApiProperty({ type: 'string', nullable: true })
  user!: string | null;

  @ApiProperty({ type: [String] })
  channels!: string[];

  @ApiProperty()
  instance!: string;

  @ApiProperty({ format: 'date-time' })
  since!: string;
}

const COUNTS = { type: 'object', additionalProperties: { type: 'integer' } } as const;

export class ConnectionsPage {
  @ApiProperty({ type: 'integer' })
  total!: number;

  @ApiProperty(COUNTS)
  by_protocol!: Record<string, number>;

  @ApiProperty(COUNTS)
  by_instance!: Record<string, number>;

  @ApiProperty({ type: [ClientInfoBody], description: 'one page, in id order' })
  clients!: ClientInfo[];

  @ApiProperty({ type: 'string', nullable: true, description: 'the cursor of the next page; null on the last' })
  next_cursor!: string | null;
}

/** Every connection of every protocol, on every instance. */
@AdminController('admin/connections')
export class ConnectionsController {
  constructor(private readonly registry: ClientRegistry) {}

  /**
   * Filters (protocol, user, channel, instance) combine. Counts cover every matching client; `clients` is one page of them in id order,
   * continued from `next_cursor`.
   */
  @Get()
  @ApiOperation({ summary: 'Every connection on every instance, paged by id' })
  @ApiOkResponse({ description: 'Counts and one page of clients', type: ConnectionsPage })
  async list(@Query() query: ListConnectionsQuery): Promise<ConnectionsPage> {
    const all = (await this.registry.list()).filter(
      (c) =>
        (query.protocol === undefined || c.protocol === query.protocol) &&
        (query.user === undefined || c.user === query.user) &&
        (query.channel === undefined || c.channels.includes(query.channel)) &&
        (query.instance === undefined || c.instance === query.instance),
    );
    const byProtocol: Record<string, number> = {};
    const byInstance: Record<string, number> = {};
    for (const client of all) {
      byProtocol[client.protocol] = (byProtocol[client.protocol] ?? 0) + 1;
      byInstance[client.instance] = (byInstance[client.instance] ?? 0) + 1;
    }
    all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const start = query.cursor === undefined ? 0 : firstAfter(all, query.cursor);
    const limit = query.limit ?? DEFAULT_PAGE;
    const clients = all.slice(start, start + limit);
    const last = clients.at(-1);
    return {
      total: all.length,
      by_protocol: byProtocol,
      by_instance: byInstance,
      clients,
      next_cursor: start + limit < all.length && last ? last.id : null,
    };
  }

  /** Closes the client with its protocol's normal close code, wherever it is. */
  @Delete(':clientId')
  @HttpCode(204)
  @ApiOperation({ summary: "Closes a client with its protocol's normal close code, on whichever instance holds it" })
  @ApiNoContentResponse({ description: 'Closed' })
  @ApiErrors(404)
  async close(@Param('clientId') clientId: string): Promise<void> {
    if (clientId.length > 256 || !(await this.registry.disconnect(clientId))) throw notFound('no such connection');
  }
}

function firstAfter(sorted: ClientInfo[], cursor: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as ClientInfo).id <= cursor) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
