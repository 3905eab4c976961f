import { Global, Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { AppConfig } from './app-config.js';
import type { EnvSchema } from './env.schema.js';

const KEY = 'gatehouse';

/**
 * Provides the validated configuration as `AppConfig`. Validation happens before the
 * application is built (`createGatehouse`), so a bad value stops start-up with a clean
 * message instead of failing somewhere inside Nest's module loading.
 */
@Global()
@Module({})
export class GatehouseConfigModule {
  static forRoot(env: EnvSchema): DynamicModule {
    return {
      module: GatehouseConfigModule,
      imports: [
        ConfigModule.forRoot({
          ignoreEnvFile: true,
          validatePredefined: false,
          // One key whose value is an object, so @nestjs/config does not copy typed values
          // back into process.env.
          load: [() => ({ [KEY]: env })],
        }),
      ],
      providers: [
        {
          provide: AppConfig,
          inject: [ConfigService],
          useFactory: (config: ConfigService): EnvSchema => {
            const validated = config.get<EnvSchema>(KEY);
            if (!validated) throw new Error('configuration was not loaded');
            return validated;
          },
        },
      ],
      exports: [AppConfig],
    };
  }
}
