import 'reflect-metadata';
import { plainToInstance, Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, IsUrl, Matches, Max, Min, MinLength, validateSync } from 'class-validator';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const PUBLISH_POLICIES = ['authenticated', 'open'] as const;
export type JacPublishPolicy = (typeof PUBLISH_POLICIES)[number];

/** Empty strings in the environment mean "not set", as in most dotenv tooling. */
const emptyToUndefined = ({ value }: { value: unknown }): unknown => (value === '' ? undefined : value);

/** Integers arrive as strings; anything that is not a plain decimal integer stays a string and fails `IsInt`. */
const toInt = ({ value }: { value: unknown }): unknown => {
  if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return Number(value.trim());
  return value;
};

const optionalInt = ({ value }: { value: unknown }): unknown => toInt({ value: emptyToUndefined({ value }) });

/**
 * Every environment variable the gateway reads (SPEC section 2), with its default.
 * Code reads this typed object, never `process.env`.
 */
export class EnvSchema {
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 8080;

  @IsString()
  @MinLength(1)
  HOST = '0.0.0.0';

  @Transform(emptyToUndefined)
  @IsOptional()
  @IsUrl({ protocols: ['redis', 'rediss'], require_tld: false, require_protocol: true })
  REDIS_URL?: string;

  @IsString()
  @Matches(/^[A-Za-z0-9:_.-]{1,64}$/)
  REDIS_KEY_PREFIX = 'gatehouse:';

  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  @MinLength(16)
  ADMIN_TOKEN?: string;

  @IsIn(LOG_LEVELS)
  LOG_LEVEL: LogLevel = 'info';

  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(256 * 1024 * 1024)
  WS_MAX_PAYLOAD = 1_048_576;

  @Transform(toInt)
  @IsInt()
  @Min(1024)
  WS_SEND_BUFFER_LIMIT = 4_194_304;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(600_000)
  SHUTDOWN_GRACE_MS = 5000;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  AUTH_FAILURE_LIMIT = 20;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  AUTH_FAILURE_WINDOW_MS = 60_000;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  WS_MAX_CONNECTIONS = 0;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  WS_MAX_CONNECTIONS_PER_IP = 0;

  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  @Matches(/^\s*[^,\s]+(\s*,\s*[^,\s]+)*\s*$/, { message: 'must be a comma-separated list of origins' })
  WS_ALLOWED_ORIGINS?: string;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  FATES_RATE_LIMIT = 20;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  FATES_RATE_WINDOW_MS = 420_000;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100_000)
  FATES_HISTORY_LIMIT = 1000;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  FATES_PING_INTERVAL_MS = 54_000;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  FATES_PONG_TIMEOUT_MS = 60_000;

  @Transform(optionalInt)
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  FELIX_PORT?: number;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  FELIX_PING_INTERVAL_MS = 30_000;

  @Transform(optionalInt)
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  HATSU_PORT?: number;

  @Transform(emptyToUndefined)
  @IsOptional()
  @IsUrl({ protocols: ['http', 'https', 'ws', 'wss'], require_tld: false, require_protocol: true })
  HATSU_PUBLIC_URL?: string;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  HATSU_PING_INTERVAL_MS = 20_000;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  HATSU_PING_TIMEOUT_MS = 20_000;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  HATSU_IDENTIFY_TIMEOUT_MS = 20_000;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  HATSU_MAX_SESSIONS = 50_000;

  /**
   * Client PRESENCEs a hatsu session may send per window; past it the latest is held
   * and sent when the window ends (docs/protocols/hatsu.md "Presence").
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  HATSU_PRESENCE_LIMIT = 5;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  @Max(3_600_000)
  HATSU_PRESENCE_WINDOW_MS = 20_000;

  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  @MinLength(16)
  JAC_JWT_SECRET?: string;

  @IsIn(PUBLISH_POLICIES)
  JAC_PUBLISH_POLICY: JacPublishPolicy = 'authenticated';

  @Transform(toInt)
  @IsInt()
  @Min(10)
  JAC_PING_INTERVAL_MS = 20_000;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  JAC_PING_TIMEOUT_MS = 20_000;
}

export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigValidationError';
  }
}

/** Each listener needs a port of its own (0, "any free port", never clashes). */
function portClash(env: EnvSchema): string | null {
  const ports: [string, number | undefined][] = [
    ['PORT', env.PORT],
    ['FELIX_PORT', env.FELIX_PORT],
    ['HATSU_PORT', env.HATSU_PORT],
  ];
  for (let i = 0; i < ports.length; i++) {
    for (let j = i + 1; j < ports.length; j++) {
      const [a, pa] = ports[i] as [string, number | undefined];
      const [b, pb] = ports[j] as [string, number | undefined];
      if (pa !== undefined && pa !== 0 && pa === pb) return `${b}: must differ from ${a} (both ${pa})`;
    }
  }
  return null;
}

/**
 * Validates a raw environment (strings) into an `EnvSchema`. Unknown variables are
 * ignored; a bad value throws one error naming every offending variable.
 */
export function validateEnv(raw: Record<string, unknown>): EnvSchema {
  // Optional variables are own keys too (useDefineForClassFields), so the instance lists them all.
  const known = Object.keys(new EnvSchema());
  const picked: Record<string, unknown> = {};
  for (const key of known) {
    if (raw[key] !== undefined) picked[key] = raw[key];
  }
  const env = plainToInstance(EnvSchema, picked);
  const errors = validateSync(env, { whitelist: true, forbidUnknownValues: true });
  if (errors.length === 0) {
    const clash = portClash(env);
    if (clash) throw new ConfigValidationError([clash]);
  }
  if (errors.length > 0) {
    throw new ConfigValidationError(
      errors.map((e) => {
        const constraint = Object.values(e.constraints ?? {})[0] ?? 'is invalid';
        // Never print the value itself: it may be a secret.
        return `${e.property}: ${constraint.replace(e.property, 'value')}`;
      }),
    );
  }
  return env;
}
