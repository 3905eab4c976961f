import { Module } from '@nestjs/common';
import { FelixAdminController } from './felix-admin.controller.js';
import { FelixData } from './felix-data.js';
import { FelixStatusService } from './felix-status.service.js';
import { FelixTokens } from './felix-tokens.js';
import { FelixGateway } from './felix.gateway.js';
import { FelixService } from './felix.service.js';

/** Felix's bot status socket: heartbeat ACKs with the bot's stats, guild/user data updates. */
@Module({
  controllers: [FelixAdminController],
  providers: [FelixGateway, FelixService, FelixStatusService, FelixTokens, FelixData],
})
export class FelixModule {}
