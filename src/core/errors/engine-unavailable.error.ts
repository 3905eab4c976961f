/** Raised by Redis-backed operations while Redis does not answer; the admin API maps it to 503. */
export class EngineUnavailableError extends Error {
  constructor(operation: string, cause?: unknown) {
    super(`the shared engine (Redis) is unavailable: ${operation}`, { cause });
    this.name = 'EngineUnavailableError';
  }
}
