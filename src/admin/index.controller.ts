import { Controller, Get } from '@nestjs/common';
import { Engine } from '../core/engine/engine.js';
import { VERSION } from '../core/version.js';
import { GatewayCatalog } from '../core/ws/gateway-catalog.js';

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
      },
    };
  }
}
