import { Controller, Get, Header, Req } from '@nestjs/common';
import type { Request } from 'express';
import { ProxyTrust } from '../../core/http/proxy-trust.js';
import { HatsuDiscovery, type HatsuOffer } from './hatsu-discovery.js';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';

/**
 * `GET /available` (the current protocol document) and `GET /port` (the earlier one): where to connect.
 * Public, as in the original. The answer depends on the cluster's load, so it is never cached.
 */
const OFFER = {
  description: 'Where to connect',
  schema: {
    type: 'object',
    required: ['port', 'url'],
    properties: {
      port: { type: 'integer' },
      url: { type: 'string', examples: ['wss://gateway.example.com:443/hatsu'] },
    },
  },
} as const;

@Controller()
@ApiTags('hatsu discovery')
export class HatsuDiscoveryController {
  constructor(
    private readonly discovery: HatsuDiscovery,
    private readonly trust: ProxyTrust,
  ) {}

  @Get('available')
  @ApiOperation({ summary: 'hatsu discovery: the least-loaded live instance' })
  @ApiOkResponse(OFFER)
  @Header('Cache-Control', 'no-store')
  available(@Req() req: Request): Promise<HatsuOffer> {
    return this.discovery.available(this.trust.origin(req));
  }

  @Get('port')
  @ApiOperation({ summary: 'hatsu discovery (the earlier document’s route): same as /available' })
  @ApiOkResponse(OFFER)
  @Header('Cache-Control', 'no-store')
  port(@Req() req: Request): Promise<HatsuOffer> {
    return this.discovery.available(this.trust.origin(req));
  }
}
