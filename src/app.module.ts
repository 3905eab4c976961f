import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { AdminModule } from './admin/admin.module.js';
import { GatehouseConfigModule, type GatehouseConfigOptions } from './config/config.module.js';
import { CoreModule } from './core/core.module.js';
import { HealthModule } from './health/health.module.js';
import { FelixModule } from './protocols/felix/felix.module.js';
import { FatesModule } from './protocols/fates/fates.module.js';
import { HatsuModule } from './protocols/hatsu/hatsu.module.js';
import { JacModule } from './protocols/jac/jac.module.js';

/** The protocol modules served by default. A new protocol is one more entry here. */
export const PROTOCOL_MODULES: Type[] = [JacModule, FelixModule, FatesModule, HatsuModule];

export interface AppModuleOptions extends GatehouseConfigOptions {
  /** Replaces `PROTOCOL_MODULES`, e.g. to serve a subset or an extra protocol. */
  protocols?: Type[];
}

@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        GatehouseConfigModule.forRoot(options),
        CoreModule,
        HealthModule,
        AdminModule,
        ...(options.protocols ?? PROTOCOL_MODULES),
      ],
    };
  }
}
