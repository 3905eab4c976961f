import { Module } from '@nestjs/common';
import { HatsuAdminController } from './hatsu-admin.controller.js';
import { HatsuData } from './hatsu-data.js';
import { HatsuDiscovery } from './hatsu-discovery.js';
import { HatsuDiscoveryController } from './hatsu-discovery.controller.js';
import { HatsuGateway } from './hatsu.gateway.js';
import { HatsuMembers } from './hatsu-members.js';
import { HatsuService } from './hatsu.service.js';

/** hatsu's session gateway: discovery, identify, guild/presence/notification events, json or zlib. */
@Module({
  controllers: [HatsuDiscoveryController, HatsuAdminController],
  providers: [HatsuGateway, HatsuService, HatsuMembers, HatsuData, HatsuDiscovery],
})
export class HatsuModule {}
