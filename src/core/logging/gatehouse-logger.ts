import { Injectable, type LoggerService } from '@nestjs/common';
import { pino, type DestinationStream, type Logger as Pino } from 'pino';
import { AppConfig } from '../../config/app-config.js';

/**
 * Keys whose values never reach a log line, wherever they appear in a logged object.
 * Tokens and Authorization headers are the secrets the gateway handles.
 */
const REDACT = [
  'token',
  'authorization',
  'Authorization',
  '*.token',
  '*.authorization',
  '*.Authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
];

/** The process logger: JSON lines, secrets redacted. `destination` is for tests. */
export function createPino(level: string, destination?: DestinationStream): Pino {
  const options = {
    level,
    base: { pid: process.pid },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

const NEST_STARTUP = new Set([
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'WebSocketsController',
  'NestFactory',
  'NestApplication',
]);

/**
 * Structured JSON logging (pino) for the whole process, also used as Nest's logger.
 * Protocol code logs through `child({ protocol, clientId })`.
 */
@Injectable()
export class GatehouseLogger implements LoggerService {
  readonly pino: Pino;

  constructor(config: AppConfig) {
    this.pino = createPino(config.LOG_LEVEL);
  }

  child(bindings: Record<string, unknown>): Pino {
    return this.pino.child(bindings);
  }

  log(message: unknown, context?: string): void {
    // Nest's start-up chatter (one line per module, route and handler) is debug detail.
    this.write(context !== undefined && NEST_STARTUP.has(context) ? 'debug' : 'info', message, context);
  }
  error(message: unknown, traceOrContext?: string, context?: string): void {
    // Nest passes (message, stack, context) or (message, context).
    const ctx = context ?? traceOrContext;
    const stack = context === undefined ? undefined : traceOrContext;
    if (message instanceof Error) {
      this.pino.error({ context: ctx, err: message }, message.message);
      return;
    }
    this.pino.error({ context: ctx, stack }, stringify(message));
  }
  warn(message: unknown, context?: string): void {
    this.write('warn', message, context);
  }
  debug(message: unknown, context?: string): void {
    this.write('debug', message, context);
  }
  verbose(message: unknown, context?: string): void {
    this.write('trace', message, context);
  }
  fatal(message: unknown, context?: string): void {
    this.write('fatal', message, context);
  }

  private write(level: 'info' | 'warn' | 'debug' | 'trace' | 'fatal', message: unknown, context?: string): void {
    if (!this.pino.isLevelEnabled(level)) return;
    if (typeof message === 'object' && message !== null && !(message instanceof Error)) {
      this.pino[level]({ context, ...(message as Record<string, unknown>) });
      return;
    }
    this.pino[level]({ context }, stringify(message));
  }
}

function stringify(message: unknown): string {
  if (typeof message === 'string') return message;
  if (message instanceof Error) return message.message;
  return String(message);
}
