import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { AdminModule } from './admin/admin.module.js';
import { GatehouseConfigModule } from './config/config.module.js';
import type { EnvSchema } from './config/env.schema.js';
import { CoreModule } from './core/core.module.js';
import { MetricsModule } from './core/metrics/metrics.module.js';
import { HealthModule } from './health/health.module.js';
import { FelixModule } from './protocols/felix/felix.module.js';
import { FatesModule } from './protocols/fates/fates.module.js';
import { HatsuModule } from './protocols/hatsu/hatsu.module.js';
import { JacModule } from './protocols/jac/jac.module.js';

/** The protocol modules served by default. A new protocol is one more entry here. */
export const PROTOCOL_MODULES: Type[] = [JacModule, FelixModule, FatesModule, HatsuModule];

export interface AppModuleOptions {
  /**
   * An explicit environment (tests, embedding). When given, neither `.env` nor
   * `process.env` is read, so several apps can run side by side in one process.
   */
  env?: Record<string, string | undefined>;
  /** Replaces `PROTOCOL_MODULES`, e.g. to serve a subset or an extra protocol. */
  protocols?: Type[];
}

@Module({})
export class AppModule {
  /** The application for a configuration that `validateEnv` accepted. */
  static forRoot(config: EnvSchema, protocols: Type[] = PROTOCOL_MODULES): DynamicModule {
    return {
      module: AppModule,
      imports: [
        GatehouseConfigModule.forRoot(config),
        MetricsModule.forRoot(config),
        CoreModule,
        HealthModule,
        AdminModule,
        ...protocols,
      ],
    };
  }
}
