import { Module } from '@nestjs/common';
import { FatesAdminController } from './fates-admin.controller.js';
import { FatesFlamepawGateway, FatesV2Gateway } from './fates.gateway.js';
import { FatesOpenApi } from './fates.openapi.js';
import { FatesService } from './fates.service.js';

/** Fates List's event socket (seeds 000 and 001), both eras on one service. */
@Module({
  controllers: [FatesAdminController],
  providers: [FatesService, FatesV2Gateway, FatesFlamepawGateway, FatesOpenApi],
})
export class FatesModule {}
