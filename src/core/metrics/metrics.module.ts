import { Global, Module, type DynamicModule } from '@nestjs/common';
import type { EnvSchema } from '../../config/env.schema.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsServer } from './metrics-server.js';
import { Metrics } from './metrics.js';

/**
 * The process's metrics, counted by the core and the protocols. `/metrics` is a route of
 * the main port unless `METRICS_PORT` gives it a listener of its own, and absent when
 * `METRICS_ENABLED` is false.
 */
@Global()
@Module({})
export class MetricsModule {
  static forRoot(config: EnvSchema): DynamicModule {
    const onMainPort = config.METRICS_ENABLED && config.METRICS_PORT === undefined;
    return {
      module: MetricsModule,
      controllers: onMainPort ? [MetricsController] : [],
      providers: [Metrics, MetricsServer],
      exports: [Metrics, MetricsServer],
    };
  }
}
