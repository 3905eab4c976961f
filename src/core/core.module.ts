import { Global, Module } from '@nestjs/common';
import { AdminGuard } from './auth/admin.guard.js';
import { AdminToken } from './auth/admin-token.js';
import { EngineModule } from './engine/engine.module.js';
import { OpenApiRegistry } from './http/openapi.js';
import { GatewayCatalog } from './ws/gateway-catalog.js';
import { UpgradeLimits } from './ws/upgrade-limits.js';

/** The protocol-agnostic core every protocol module builds on. */
@Global()
@Module({
  imports: [EngineModule],
  providers: [GatewayCatalog, UpgradeLimits, AdminToken, AdminGuard, OpenApiRegistry],
  exports: [EngineModule, GatewayCatalog, UpgradeLimits, AdminToken, AdminGuard, OpenApiRegistry],
})
export class CoreModule {}
