import { Global, Module } from '@nestjs/common';
import { AdminGuard } from './auth/admin.guard.js';
import { AdminToken } from './auth/admin-token.js';
import { EngineModule } from './engine/engine.module.js';
import { ProxyTrust } from './http/proxy-trust.js';
import { AdminAudit } from './logging/admin-audit.interceptor.js';
import { GatewayCatalog } from './ws/gateway-catalog.js';
import { UpgradeLimits } from './ws/upgrade-limits.js';

/** The protocol-agnostic core every protocol module builds on. */
@Global()
@Module({
  imports: [EngineModule],
  providers: [GatewayCatalog, UpgradeLimits, AdminToken, AdminGuard, AdminAudit, ProxyTrust],
  exports: [EngineModule, GatewayCatalog, UpgradeLimits, AdminToken, AdminGuard, AdminAudit, ProxyTrust],
})
export class CoreModule {}
