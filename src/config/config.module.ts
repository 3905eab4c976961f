import { Global, Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { AppConfig } from './app-config.js';
import { validateEnv, type EnvSchema } from './env.schema.js';

const KEY = 'gatehouse';

export interface GatehouseConfigOptions {
  /**
   * An explicit environment (tests, embedding). When given, neither `.env` nor
   * `process.env` is read, so several apps can run side by side in one process.
   */
  env?: Record<string, string | undefined>;
}

@Global()
@Module({})
export class GatehouseConfigModule {
  static forRoot(options: GatehouseConfigOptions = {}): DynamicModule {
    const explicit = options.env;
    return {
      module: GatehouseConfigModule,
      imports: [
        ConfigModule.forRoot({
          ignoreEnvFile: explicit !== undefined,
          validatePredefined: explicit === undefined,
          // The validated object is returned under one key whose value is an object,
          // so @nestjs/config does not copy typed values back into process.env.
          validate: (raw) => ({ [KEY]: validateEnv(explicit ?? raw) }),
        }),
      ],
      providers: [
        {
          provide: AppConfig,
          inject: [ConfigService],
          useFactory: (config: ConfigService): EnvSchema => {
            const env = config.get<EnvSchema>(KEY);
            if (!env) throw new Error('configuration was not validated');
            return env;
          },
        },
      ],
      exports: [AppConfig],
    };
  }
}
