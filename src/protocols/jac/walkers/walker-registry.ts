import { Injectable, type OnModuleInit, type Type } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { fieldProblems, type FieldProblem } from '../../../core/http/validation.js';
import { WALKER_METADATA, type WalkerMethod, type WalkerOptions } from './walker.decorator.js';
import type { WalkerRun } from './walker-run.js';

export interface RegisteredWalker {
  name: string;
  auth: boolean;
  methods: ReadonlySet<WalkerMethod>;
  context: Type<object> | undefined;
  invoke(context: object, run: WalkerRun): Promise<unknown>;
}

/** Finds every `@Walker` method among the app's providers at start-up. */
@Injectable()
export class WalkerRegistry implements OnModuleInit {
  private readonly walkers = new Map<string, RegisteredWalker>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const method of this.scanner.getAllMethodNames(prototype)) {
        const fn = prototype[method];
        if (typeof fn !== 'function') continue;
        const options = this.reflector.get<WalkerOptions | undefined>(WALKER_METADATA, fn);
        if (options) this.add(options, (context, run) => Promise.resolve(fn.call(instance, context, run)));
      }
    }
  }

  add(options: WalkerOptions, invoke: RegisteredWalker['invoke']): void {
    if (this.walkers.has(options.name)) throw new Error(`walker ${options.name} is declared twice`);
    this.walkers.set(options.name, {
      name: options.name,
      auth: options.auth ?? true,
      methods: new Set(options.methods ?? ['websocket', 'post']),
      context: options.context,
      invoke,
    });
  }

  /** The walker, if it exists and may be called through `method`. */
  find(name: string, method: WalkerMethod): RegisteredWalker | undefined {
    const walker = this.walkers.get(name);
    return walker?.methods.has(method) ? walker : undefined;
  }

  acceptsWebsocket(): boolean {
    for (const walker of this.walkers.values()) if (walker.methods.has('websocket')) return true;
    return false;
  }

  /** Validates a raw context into the walker's context class; problems one per field. */
  static buildContext(walker: RegisteredWalker, raw: Record<string, unknown>): object | FieldProblem[] {
    if (!walker.context) return raw;
    const instance = plainToInstance(walker.context, raw);
    const errors = validateSync(instance, {
      forbidUnknownValues: true,
      validationError: { target: false, value: false },
    });
    if (errors.length === 0) return instance;
    return fieldProblems(errors);
  }
}
