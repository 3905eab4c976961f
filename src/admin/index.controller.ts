import { Controller, Get } from '@nestjs/common';
import { Engine } from '../core/engine/engine.js';
import { VERSION } from '../core/version.js';
import { GatewayCatalog } from '../core/ws/gateway-catalog.js';
import { ApiOkResponse, ApiOperation } from '@nestjs/swagger';

export interface GatewayIndex {
  name: 'gatehouse';
  version: string;
  engine: string;
  protocols: { name: string; paths: readonly string[]; port: number | null }[];
  links: Record<string, string>;
}

/**
 * `GET /`: what this gateway serves and where to look next, for someone who just started it.
 * WebSocket upgrades are never served on `/`, so this is plain HTTP. Nothing secret: the
 * same facts as the start-up line and `/health/ready`.
 */
@Controller()
export class IndexController {
  constructor(
    private readonly engine: Engine,
    private readonly catalog: GatewayCatalog,
  ) {}

  @Get()
  @ApiOperation({ summary: 'What this gateway serves (each protocol and its paths) and where to look next' })
  @ApiOkResponse({
    description: 'The index',
    schema: {
      type: 'object',
      properties: {
        name: { enum: ['gatehouse'] },
        version: { type: 'string' },
        engine: { type: 'string' },
        protocols: { type: 'array', items: { type: 'object' } },
        links: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
  })
  index(): GatewayIndex {
    return {
      name: 'gatehouse',
      version: VERSION,
      engine: this.engine.kind,
      protocols: this.catalog.all().map((p) => ({ name: p.name, paths: p.paths, port: p.dedicatedPort ?? null })),
      links: {
        ready: '/health/ready',
        admin_ui: '/admin/ui',
        openapi: '/admin/openapi.json',
        docs: '/admin/docs',
      },
    };
  }
}
