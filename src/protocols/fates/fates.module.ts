import { Module } from '@nestjs/common';
import { FatesAdminController } from './fates-admin.controller.js';
import { FatesData } from './fates-data.js';
import { FatesFlamepawGateway, FatesV2Gateway } from './fates.gateway.js';
import { FatesService } from './fates.service.js';

/** Fates List's event socket, both eras (v2 and flamepaw) on one service. */
@Module({
  controllers: [FatesAdminController],
  providers: [FatesService, FatesData, FatesV2Gateway, FatesFlamepawGateway],
})
export class FatesModule {}
