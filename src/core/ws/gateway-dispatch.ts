import type { ArgumentMetadata, CanActivate, INestApplicationContext, PipeTransform, Type } from '@nestjs/common';
import type { RouteParamtypes } from '@nestjs/common/internal';
import { ApplicationConfig, NestContainer } from '@nestjs/core';
import {
  ContextUtils,
  ExecutionContextHost,
  FORBIDDEN_MESSAGE,
  GuardsConsumer,
  GuardsContextCreator,
  InterceptorsConsumer,
  InterceptorsContextCreator,
  ParamsTokenFactory,
  PipesConsumer,
  PipesContextCreator,
  STATIC_CONTEXT,
} from '@nestjs/core/internal';
import { WsException } from '@nestjs/websockets';
import { ExceptionFiltersContext } from '@nestjs/websockets/context/exception-filters-context.js';
import { WsContextCreator } from '@nestjs/websockets/context/ws-context-creator.js';
import { WsProxy } from '@nestjs/websockets/context/ws-proxy.js';
import { GATEWAY_OPTIONS, MESSAGE_MAPPING_METADATA, MESSAGE_METADATA } from '@nestjs/websockets/constants.js';
import type { WsExceptionsHandler } from '@nestjs/websockets/exceptions/ws-exceptions-handler.js';
import type { Logger as Pino } from 'pino';
import { isObservable, lastValueFrom } from 'rxjs';
import type { WebSocket } from 'ws';

/** Where a handler's answer goes: the socket's connection, through the protocol's codec. */
export type Reply = (client: WebSocket, value: unknown) => void;

type Handler = (...args: unknown[]) => unknown;

interface Param {
  index: number;
  extractValue: (...args: unknown[]) => unknown;
  metadata: ArgumentMetadata;
  pipes: PipeTransform[];
}

/** A gateway instance and the key of the module that declares it, as Nest's own dispatch uses them. */
interface GatewayHost {
  instance: Record<string, unknown>;
  metatype: Type<unknown>;
  moduleKey: string;
}

/**
 * Runs one `@SubscribeMessage` handler of a gateway with the guards, pipes and exception
 * filters Nest resolved for it (its own context creators: global, class and method ones,
 * injected instances included), in the order Nest runs them, but without Nest's promise
 * and observable plumbing: when every guard answers a boolean and every pipe a value, a
 * frame is handled in the same turn of the event loop that read it. A guard or pipe that
 * answers with a promise or an observable is awaited, and the rest follows as Nest would.
 *
 * The handler's return value is sent as Nest sends it: a value, a promise's value, or each
 * value of an observable; `undefined` and `null` send nothing. Anything thrown (a guard's
 * refusal is a `WsException('Forbidden resource')`) goes to the exception filters.
 */
class FastHandler {
  constructor(
    private readonly host: GatewayHost,
    private readonly callback: Handler,
    private readonly pattern: string,
    private readonly guards: CanActivate[],
    private readonly params: Param[],
    private readonly argsLength: number,
    private readonly exceptions: WsExceptionsHandler,
    private readonly log: Pino,
  ) {}

  run(client: WebSocket, data: unknown, reply: Reply): void {
    // What Nest's handlers see as their arguments: the socket, the payload, the pattern.
    const args = [client, data, this.pattern];
    try {
      const allowed = this.activate(args);
      if (allowed === true) this.invoke(args, reply);
      else if (allowed === false) this.fail(args, new WsException(FORBIDDEN_MESSAGE));
      else {
        allowed.then(
          (ok) => (ok ? this.invoke(args, reply) : this.fail(args, new WsException(FORBIDDEN_MESSAGE))),
          (err: unknown) => this.fail(args, err),
        );
      }
    } catch (err) {
      this.fail(args, err);
    }
  }

  /** The guards in order: a boolean at once, or a promise from the first guard that did not answer one. */
  private activate(args: unknown[]): boolean | Promise<boolean> {
    if (this.guards.length === 0) return true;
    const context = new ExecutionContextHost(args, this.host.metatype, this.callback);
    context.setType('ws');
    for (let i = 0; i < this.guards.length; i++) {
      const answer = this.guards[i]!.canActivate(context);
      if (answer === true) continue;
      if (answer === false) return false;
      return this.activateLater(answer, i + 1, context);
    }
    return true;
  }

  private async activateLater(pending: unknown, next: number, context: ExecutionContextHost): Promise<boolean> {
    if (!(await settle(pending))) return false;
    for (let i = next; i < this.guards.length; i++) {
      if (!(await settle(this.guards[i]!.canActivate(context)))) return false;
    }
    return true;
  }

  private invoke(args: unknown[], reply: Reply): void {
    try {
      const values = this.resolveParams(args);
      if (values instanceof Promise) {
        values.then(
          (resolved) => this.call(resolved, args, reply),
          (err: unknown) => this.fail(args, err),
        );
      } else {
        this.call(values, args, reply);
      }
    } catch (err) {
      this.fail(args, err);
    }
  }

  /** Each parameter through its pipes (global, class, method, parameter), as Nest applies them. */
  private resolveParams(args: unknown[]): unknown[] | Promise<unknown[]> {
    const values = new Array<unknown>(this.argsLength);
    let waiting: Promise<void>[] | null = null;
    for (const param of this.params) {
      // A custom decorator's factory may answer a promise: the pipes see what it resolves to.
      let value = param.extractValue(...args);
      let next = 0;
      while (next < param.pipes.length && !isThenable(value))
        value = param.pipes[next++]!.transform(value, param.metadata);
      if (isThenable(value)) {
        const rest = param.pipes.slice(next);
        (waiting ??= []).push(
          applyLater(value, rest, param.metadata).then((resolved) => void (values[param.index] = resolved)),
        );
      } else {
        values[param.index] = value;
      }
    }
    return waiting ? Promise.all(waiting).then(() => values) : values;
  }

  private call(values: unknown[], args: unknown[], reply: Reply): void {
    let result: unknown;
    try {
      result = this.callback.apply(this.host.instance, values);
    } catch (err) {
      this.fail(args, err);
      return;
    }
    this.answer(result, args, reply);
  }

  private answer(result: unknown, args: unknown[], reply: Reply): void {
    if (result === undefined || result === null) return;
    const client = args[0] as WebSocket;
    if (isObservable(result)) {
      result.subscribe({
        next: (value) => this.answer(value, args, reply),
        error: (err: unknown) => this.fail(args, err),
      });
    } else if (isThenable(result)) {
      result.then(
        (value) => this.answer(value, args, reply),
        (err: unknown) => this.fail(args, err),
      );
    } else {
      reply(client, result);
    }
  }

  /** To the gateway's exception filters, as Nest's WsProxy hands them an error. */
  private fail(args: unknown[], err: unknown): void {
    const host = new ExecutionContextHost(args);
    host.setType('ws');
    try {
      this.exceptions.handle(err as Error, host);
    } catch (filterErr) {
      this.log.error({ err: filterErr }, 'exception filter failed');
    }
  }
}

/**
 * The fast dispatch of every gateway that names its protocol (`@WebSocketGateway({ protocol })`),
 * built once per protocol from Nest's own context creators (the same classes
 * `@nestjs/websockets` builds its handlers with). A handler with an interceptor keeps
 * Nest's own pipeline: interceptors wrap the handler in an observable by contract.
 */
export class GatewayDispatch {
  private readonly byProtocol = new Map<string, Map<string, FastHandler>>();
  private creators: ReturnType<typeof contextCreators> | null = null;

  constructor(
    private readonly app: INestApplicationContext,
    private readonly log: Pino,
  ) {}

  /**
   * The fast handlers of `protocol`'s gateway by message pattern; a pattern missing from
   * the map is run by Nest's own handler.
   */
  handlers(protocol: string): Map<string, FastHandler> {
    let table = this.byProtocol.get(protocol);
    if (!table) {
      table = this.build(protocol);
      this.byProtocol.set(protocol, table);
    }
    return table;
  }

  private build(protocol: string): Map<string, FastHandler> {
    const table = new Map<string, FastHandler>();
    this.creators ??= contextCreators(this.app);
    const { container, guards, pipes, interceptors, filters, ws } = this.creators;
    const host = gatewayOf(container, protocol);
    if (!host) return table;
    const utils = new ContextUtils();
    const tokens = new ParamsTokenFactory();
    const prototype = Object.getPrototypeOf(host.instance) as Record<string, unknown>;
    for (const methodName of methodNames(prototype)) {
      const callback = methodOf(prototype, methodName);
      if (!callback || Reflect.getMetadata(MESSAGE_MAPPING_METADATA, callback) !== true) continue;
      const pattern: unknown = Reflect.getMetadata(MESSAGE_METADATA, callback);
      if (typeof pattern !== 'string') continue;
      const handler = callback;
      const { instance, moduleKey } = host;
      if (interceptors.create(instance, handler, moduleKey, STATIC_CONTEXT).length > 0) continue;
      const shared = pipes.create(instance, handler, moduleKey, STATIC_CONTEXT);
      const { argsLength, paramtypes, getParamsMetadata } = ws.getMetadata(instance, methodName, 'ws');
      const params = utils.mergeParamsMetatypes(getParamsMetadata(moduleKey), paramtypes).map((param): Param => {
        // What Nest hands each pipe: the payload is a 'body', the socket and the rest 'custom'.
        const metadata: Record<string, unknown> = {
          type: tokens.exchangeEnumForString(param.type as RouteParamtypes),
          data: param.data,
        };
        metadata['metatype'] = param.metatype as unknown;
        if (param.schema) metadata['schema'] = param.schema;
        return {
          index: param.index,
          extractValue: param.extractValue as Param['extractValue'],
          metadata: metadata as unknown as ArgumentMetadata,
          pipes: shared.concat(param.pipes),
        };
      });
      table.set(
        pattern,
        new FastHandler(
          host,
          handler,
          pattern,
          guards.create(instance, handler, moduleKey, STATIC_CONTEXT),
          params,
          argsLength,
          filters.create(instance, handler, moduleKey, STATIC_CONTEXT),
          this.log,
        ),
      );
    }
    return table;
  }
}

/** The application's container: where Nest keeps the modules and the global enhancers. */
function containerOf(app: INestApplicationContext): NestContainer {
  const container = (app as unknown as { container?: unknown }).container;
  if (!(container instanceof NestContainer)) throw new Error('GatewayDispatch needs a Nest application');
  return container;
}

/** Nest's context creators, built as `@nestjs/websockets` builds its own. */
function contextCreators(app: INestApplicationContext) {
  const container = containerOf(app);
  const config = container.applicationConfig ?? new ApplicationConfig();
  const guards = new GuardsContextCreator(container, config);
  const pipes = new PipesContextCreator(container, config);
  const interceptors = new InterceptorsContextCreator(container, config);
  const filters = new ExceptionFiltersContext(container);
  const ws = new WsContextCreator(
    new WsProxy(),
    filters,
    pipes,
    new PipesConsumer(),
    guards,
    new GuardsConsumer(),
    interceptors,
    new InterceptorsConsumer(),
  );
  return { container, guards, pipes, interceptors, filters, ws };
}

/** The static gateway whose `@WebSocketGateway` options name `protocol`. */
function gatewayOf(container: NestContainer, protocol: string): GatewayHost | null {
  for (const [moduleKey, module] of container.getModules()) {
    for (const wrapper of module.providers.values()) {
      const metatype = wrapper.metatype;
      if (typeof metatype !== 'function' || !wrapper.instance) continue;
      const options = Reflect.getMetadata(GATEWAY_OPTIONS, metatype) as { protocol?: unknown } | undefined;
      if (options?.protocol !== protocol || !wrapper.isDependencyTreeStatic()) continue;
      return { instance: wrapper.instance as Record<string, unknown>, metatype: metatype as Type<unknown>, moduleKey };
    }
  }
  return null;
}

/** Every method name along the prototype chain (a handler may live in a base class). */
function methodNames(prototype: object): string[] {
  const names = new Set<string>();
  for (let p: object | null = prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const name of Object.getOwnPropertyNames(p)) if (name !== 'constructor') names.add(name);
  }
  return [...names];
}

/** The method `name` resolves to from `prototype`, without running a getter. */
function methodOf(prototype: object, name: string): Handler | null {
  for (let p: object | null = prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    const descriptor = Object.getOwnPropertyDescriptor(p, name);
    if (descriptor) return typeof descriptor.value === 'function' ? (descriptor.value as Handler) : null;
  }
  return null;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/** A guard's answer that was not a boolean, as Nest's GuardsConsumer reads it. */
async function settle(answer: unknown): Promise<unknown> {
  const value: unknown = await answer;
  return isObservable(value) ? lastValueFrom(value) : value;
}

async function applyLater(pending: PromiseLike<unknown>, pipes: PipeTransform[], metadata: ArgumentMetadata) {
  let value: unknown = await pending;
  for (const pipe of pipes) value = await (pipe.transform(value, metadata) as unknown);
  return value;
}
