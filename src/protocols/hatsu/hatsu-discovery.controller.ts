import { Controller, Get, Header, Req } from '@nestjs/common';
import type { Request } from 'express';
import { HatsuDiscovery, type HatsuOffer } from './hatsu-discovery.js';

/**
 * `GET /available` (the seed) and `GET /port` (the earlier document): where to connect.
 * Public, as in the original. The answer depends on the cluster's load, so it is never cached.
 */
@Controller()
export class HatsuDiscoveryController {
  constructor(private readonly discovery: HatsuDiscovery) {}

  @Get('available')
  @Header('Cache-Control', 'no-store')
  available(@Req() req: Request): Promise<HatsuOffer> {
    return this.discovery.available({ host: req.hostname, secure: req.secure });
  }

  @Get('port')
  @Header('Cache-Control', 'no-store')
  port(@Req() req: Request): Promise<HatsuOffer> {
    return this.discovery.available({ host: req.hostname, secure: req.secure });
  }
}
