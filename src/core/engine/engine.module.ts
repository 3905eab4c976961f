import { Global, Module } from '@nestjs/common';
import { EventBus } from '../bus/event-bus.js';
import { GatehouseLogger } from '../logging/gatehouse-logger.js';
import { ClientRegistry } from '../registry/client-registry.js';
import { Store } from '../store/store.js';
import { Engine } from './engine.js';

/** The shared registry, bus and store, for every protocol module. */
@Global()
@Module({
  providers: [
    GatehouseLogger,
    Engine,
    { provide: EventBus, inject: [Engine], useFactory: (engine: Engine) => engine.bus },
    { provide: Store, inject: [Engine], useFactory: (engine: Engine) => engine.store },
    { provide: ClientRegistry, inject: [Engine], useFactory: (engine: Engine) => engine.registry },
  ],
  exports: [GatehouseLogger, Engine, EventBus, Store, ClientRegistry],
})
export class EngineModule {}
