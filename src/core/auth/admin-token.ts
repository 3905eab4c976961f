import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { GatehouseLogger } from '../logging/gatehouse-logger.js';
import { randomToken } from './secrets.js';

/** The `/admin` bearer token: `ADMIN_TOKEN`, or a random one announced once at start-up. */
@Injectable()
export class AdminToken {
  readonly value: string;

  constructor(config: AppConfig, logger: GatehouseLogger) {
    if (config.ADMIN_TOKEN !== undefined) {
      this.value = config.ADMIN_TOKEN;
      return;
    }
    this.value = randomToken();
    // Deliberately the one log line that carries a secret: without it nobody could use
    // the admin API. It is written to stderr, not through the redacting logger.
    logger.pino.warn(
      'ADMIN_TOKEN is not set; a random admin token was generated for this run (printed once on stderr)',
    );
    // Even with LOG_LEVEL=silent: without it the admin API would be unusable.
    process.stderr.write(`admin token for this run: ${this.value}\n`);
  }
}
