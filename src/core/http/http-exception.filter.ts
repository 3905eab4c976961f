import { Catch, HttpException, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import type { Logger as Pino } from 'pino';
import { STATUS_CODES } from 'node:http';
import { EngineUnavailableError } from '../errors/engine-unavailable.error.js';
import { OccasionalWarning } from '../logging/occasional-warning.js';

interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
}

/**
 * Every HTTP error leaves as `{statusCode, error, message}` JSON: Nest's own
 * exceptions as they are, a Redis outage as 503, body-parser failures (too large,
 * a charset or encoding it cannot read, malformed JSON) as 413/415/400, and anything unexpected as a bare 500. No stack trace
 * or internal message ever reaches a client.
 */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  /** Why Redis refused: the client is told 503 only, the operator the cause (at most once per 10 s). */
  private readonly unavailable: OccasionalWarning;

  constructor(private readonly log: Pino) {
    this.unavailable = new OccasionalWarning(log, 'admin request answered 503: redis unavailable');
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') {
      // Gateways bind their own protocol filter; one that reaches here is only logged,
      // never sent, so no socket ever sees Nest's {"event":"exception"} shape.
      this.log.error({ err: exception instanceof Error ? exception : String(exception) }, 'unhandled gateway error');
      return;
    }
    this.respond(exception, host.switchToHttp().getResponse<Response>());
  }

  respond(exception: unknown, response: Response): void {
    const [status, body] = this.describe(exception);
    if (response.headersSent) return;
    response.status(status).json(body);
  }

  private describe(exception: unknown): [number, Record<string, unknown>] {
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const answer = exception.getResponse();
      const fallback = STATUS_CODES[status] ?? 'Error';
      if (typeof answer !== 'object') return [status, { statusCode: status, error: fallback, message: answer }];
      // Always {statusCode, error, message} first, whichever exception built the body.
      const { statusCode: _code, error, message, ...rest } = answer as Record<string, unknown>;
      return [status, { statusCode: status, error: error ?? fallback, message: message ?? fallback, ...rest }];
    }
    if (exception instanceof EngineUnavailableError) {
      this.unavailable.warn({
        operation: exception.message,
        cause: exception.cause instanceof Error ? `${exception.cause.name}: ${exception.cause.message}` : 'none',
      });
      return [
        HttpStatus.SERVICE_UNAVAILABLE,
        { statusCode: 503, error: 'Service Unavailable', message: 'Redis is unavailable; try again shortly' },
      ];
    }
    const parser = exception as BodyParserError;
    if (parser?.type === 'entity.too.large') {
      return [413, { statusCode: 413, error: 'Payload Too Large', message: 'Body larger than 1 MiB' }];
    }
    if (parser?.type === 'charset.unsupported' || parser?.type === 'encoding.unsupported') {
      return [
        415,
        {
          statusCode: 415,
          error: 'Unsupported Media Type',
          message: 'The body must be UTF-8 JSON, uncompressed or gzip/deflate encoded',
        },
      ];
    }
    if (typeof parser?.status === 'number' && parser.status >= 400 && parser.status < 500 && parser.expose) {
      return [parser.status, { statusCode: parser.status, error: 'Bad Request', message: 'Malformed request body' }];
    }
    this.log.error({ err: exception instanceof Error ? exception : String(exception) }, 'unhandled request error');
    return [500, { statusCode: 500, error: 'Internal Server Error', message: 'Internal server error' }];
  }
}
