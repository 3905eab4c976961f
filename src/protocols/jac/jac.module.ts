import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { ChatWalkers } from './examples/chat.walkers.js';
import { JacAdminController } from './jac-admin.controller.js';
import { JacPublishGuard } from './jac-publish.guard.js';
import { JacTokens } from './jac-tokens.js';
import { JacWalkerController } from './jac-walker.controller.js';
import { JacGateway } from './jac.gateway.js';
import { JacService } from './jac.service.js';
import { WalkerRegistry } from './walkers/walker-registry.js';

/** The jac pub/sub socket. Walkers are any provider's `@Walker` methods. */
@Module({
  imports: [DiscoveryModule],
  controllers: [JacAdminController, JacWalkerController],
  providers: [JacGateway, JacService, JacTokens, JacPublishGuard, WalkerRegistry, ChatWalkers],
})
export class JacModule {}
