import { Controller, Get, Header, Req } from '@nestjs/common';
import type { Request } from 'express';
import { ProxyTrust } from '../../core/http/proxy-trust.js';
import { HatsuDiscovery, type HatsuOffer } from './hatsu-discovery.js';

/**
 * `GET /available` (the current protocol document) and `GET /port` (the earlier one): where to connect.
 * Public, as in the original. The answer depends on the cluster's load, so it is never cached.
 */
@Controller()
export class HatsuDiscoveryController {
  constructor(
    private readonly discovery: HatsuDiscovery,
    private readonly trust: ProxyTrust,
  ) {}

  @Get('available')
  @Header('Cache-Control', 'no-store')
  available(@Req() req: Request): Promise<HatsuOffer> {
    return this.discovery.available(this.trust.origin(req));
  }

  @Get('port')
  @Header('Cache-Control', 'no-store')
  port(@Req() req: Request): Promise<HatsuOffer> {
    return this.discovery.available(this.trust.origin(req));
  }
}
