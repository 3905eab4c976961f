import 'reflect-metadata';
import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  MinLength,
  registerDecorator,
  validateSync,
} from 'class-validator';
import proxyAddr from 'proxy-addr';
import { brokenMessage } from '../core/validation/constraints.js';

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

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/** `true`/`false` (also 1/0, yes/no, on/off, any case); anything else stays a string and fails `IsBoolean`. */
const toBool = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const word = value.trim().toLowerCase();
  if (TRUE.has(word)) return true;
  if (FALSE.has(word)) return false;
  return value;
};

/** The entries of a comma-separated list, trimmed, empty ones dropped. */
export function listEntries(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

/** `host:port` entries, comma-separated (IPv6 hosts in brackets). */
export function hostList(value: string | undefined): { host: string; port: number }[] {
  return listEntries(value).map((entry) => {
    const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry);
    if (!match) throw new Error(`not host:port: ${entry}`);
    const port = Number(match[2]);
    if (port < 1 || port > 65535) throw new Error(`port out of range: ${entry}`);
    return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port };
  });
}

function IsHostList(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isHostList',
      target: target.constructor,
      propertyName: propertyName as string,
      options: { message: 'must be a comma-separated list of host:port' },
      validator: {
        validate(value: unknown): boolean {
          if (typeof value !== 'string') return false;
          try {
            return hostList(value).length > 0;
          } catch {
            return false;
          }
        },
      },
    });
}

/**
 * A comma-separated list of proxy addresses: IPv4/IPv6 addresses, CIDR ranges, or the
 * names `loopback`, `linklocal` and `uniquelocal`, as the proxy-addr library reads them.
 */
function IsTrustList(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isTrustList',
      target: target.constructor,
      propertyName: propertyName as string,
      options: {
        message: 'must be a comma-separated list of IP addresses, CIDR ranges, loopback, linklocal or uniquelocal',
      },
      validator: {
        validate(value: unknown): boolean {
          if (typeof value !== 'string' || listEntries(value).length === 0) return false;
          try {
            proxyAddr.compile(listEntries(value));
            return true;
          } catch {
            return false;
          }
        },
      },
    });
}

/**
 * Every environment variable the gateway reads, with its default (listed in .env.example).
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
  @IsUrl(
    { protocols: ['redis', 'rediss'], require_tld: false, require_protocol: true },
    { message: 'must be a redis:// or rediss:// URL' },
  )
  REDIS_URL?: string;

  /** Redis Sentinel: the sentinels, `host:port,host:port`; the master is asked of them. */
  @Transform(emptyToUndefined)
  @IsOptional()
  @IsHostList()
  REDIS_SENTINELS?: string;

  /** The master's name the sentinels monitor (`sentinel monitor <name> ...`). */
  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9._-]{1,128}$/, { message: 'must be a master name (letters, digits, . _ -)' })
  REDIS_SENTINEL_NAME?: string;

  /** Redis Cluster: some of its nodes, `host:port,host:port`; the rest are discovered. */
  @Transform(emptyToUndefined)
  @IsOptional()
  @IsHostList()
  REDIS_CLUSTER_NODES?: string;

  /** ACL user and password for the Redis servers (Sentinel and Cluster; in `REDIS_URL` they go in the URL). */
  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  REDIS_USERNAME?: string;

  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  REDIS_PASSWORD?: string;

  /** The sentinels' own password, when they have one (`requirepass` in sentinel.conf). */
  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  REDIS_SENTINEL_PASSWORD?: string;

  /** TLS to the Redis servers (and sentinels) of a Sentinel or Cluster setup; `rediss://` does it for `REDIS_URL`. */
  @Transform(toBool)
  @IsBoolean({ message: 'must be true or false' })
  REDIS_TLS = false;

  // No braces: the engine places its own hash tags so that a cluster spreads the keys.
  @IsString()
  @Matches(/^[A-Za-z0-9:_.-]{1,64}$/, { message: 'must be 1 to 64 letters, digits or : _ . - (no braces)' })
  REDIS_KEY_PREFIX = 'gatehouse:';

  /**
   * Commands that may wait for Redis' answer at once; beyond it new ones fail at once, as
   * with Redis down. Bounds the memory a Redis that hangs can hold; far above what a
   * healthy Redis ever has in flight.
   */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(10_000_000)
  REDIS_MAX_PENDING_COMMANDS = 10_000;

  /** The same bound in bytes of arguments (32 MiB). */
  @Transform(toInt)
  @IsInt()
  @Min(65_536)
  @Max(4_294_967_296)
  REDIS_MAX_PENDING_BYTES = 33_554_432;

  /**
   * The Redis engine keeps each bus channel's messages in a capped log, so an instance whose
   * subscription dropped reads back what it missed; `off`: plain pub/sub, a gap loses them.
   */
  @IsIn(['on', 'off'], { message: 'must be on or off' })
  BUS_LOG: 'on' | 'off' = 'on';

  /** Entries kept per channel's log, about (Redis trims whole blocks of about 100). */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(1_000_000)
  BUS_LOG_MAX_LEN = 10_000;

  /** How old an entry may be and still be repaired from; a quiet channel's log goes this long after its last message. */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(86_400_000)
  BUS_LOG_TTL_MS = 120_000;

  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  @MinLength(16)
  ADMIN_TOKEN?: string;

  @IsIn(LOG_LEVELS)
  LOG_LEVEL: LogLevel = 'info';

  /**
   * Peers whose `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` are believed
   * (load balancers, reverse proxies). Unset: none, the socket's peer is the client.
   */
  @Transform(emptyToUndefined)
  @IsOptional()
  @IsTrustList()
  TRUST_PROXY?: string;

  /** Prometheus metrics on `GET /metrics`; off: no route, no latency timing. */
  @Transform(toBool)
  @IsBoolean({ message: 'must be true or false' })
  METRICS_ENABLED = true;

  /** When set, `/metrics` wants `Authorization: Bearer <METRICS_TOKEN>`. */
  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  @MinLength(16)
  METRICS_TOKEN?: string;

  /** When set, `/metrics` is served on this port only (HOST), not on PORT. */
  @Transform(optionalInt)
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  METRICS_PORT?: number;

  /**
   * TLS served by the gateway itself on every listener: a PEM certificate (the chain may
   * follow the leaf) and its PEM private key, re-read on SIGHUP and when the files change.
   */
  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  TLS_CERT_FILE?: string;

  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  TLS_KEY_FILE?: string;

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

  /**
   * How long a TCP connection to a gateway listener may take to deliver a complete HTTP
   * request (an upgrade or a plain request) before it is destroyed.
   */
  @Transform(toInt)
  @IsInt()
  @Min(10)
  @Max(600_000)
  WS_HANDSHAKE_TIMEOUT_MS = 10_000;

  /**
   * Inbound budget of every WebSocket connection, counted before a frame is parsed: bytes
   * and frames per second, each with a burst (`0` rate: no budget). Past it the socket is
   * closed with its protocol's rate-limit close.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  WS_INBOUND_BYTES_PER_SEC = 131_072;

  @Transform(toInt)
  @IsInt()
  @Min(1024)
  WS_INBOUND_BYTES_BURST = 131_072;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  WS_INBOUND_FRAMES_PER_SEC = 1000;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  WS_INBOUND_FRAMES_BURST = 2000;

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

  /** Largest inbound hatsu frame (an identify, a heartbeat or a presence); bigger: close 1009. */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(256 * 1024 * 1024)
  HATSU_MAX_PAYLOAD = 16_384;

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

  /**
   * How long a zlib hatsu connection may go without a message before its deflate context
   * is released (docs/protocols/hatsu.md "Idle connections"); 0 keeps it for the
   * connection's life.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(86_400_000)
  HATSU_ZLIB_IDLE_MS = 5_000;

  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  @MinLength(16)
  JAC_JWT_SECRET?: string;

  @IsIn(PUBLISH_POLICIES)
  JAC_PUBLISH_POLICY: JacPublishPolicy = 'authenticated';

  /**
   * Largest inbound jac frame (capped by `WS_MAX_PAYLOAD`); bigger: close 1009. Parsing a frame
   * holds up every socket, so the default keeps the worst one well under 250 ms.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(256 * 1024 * 1024)
  JAC_MAX_PAYLOAD = 131_072;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  JAC_PING_INTERVAL_MS = 20_000;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  JAC_PING_TIMEOUT_MS = 20_000;
}

/** A configuration that cannot run: one line per bad variable, never its value (it may be a secret). */
export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigValidationError';
  }
}

/** Each listener needs a port of its own (0, "any free port", never clashes). */
function portClashes(env: EnvSchema): string[] {
  const ports: [string, number | undefined][] = [
    ['PORT', env.PORT],
    ['FELIX_PORT', env.FELIX_PORT],
    ['HATSU_PORT', env.HATSU_PORT],
    ['METRICS_PORT', env.METRICS_PORT],
  ];
  const clashes: string[] = [];
  for (let j = 1; j < ports.length; j++) {
    const [b, pb] = ports[j] as [string, number | undefined];
    const first = ports.slice(0, j).find(([, pa]) => pa !== undefined && pa !== 0 && pa === pb);
    if (first) clashes.push(`${b}: must differ from ${first[0]} (both ${pb})`);
  }
  return clashes;
}

/** Which Redis the engine uses: at most one of the three ways to name it. */
function redisChoice(env: EnvSchema): string[] {
  const given = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((k) => env[k] !== undefined);
  const problems: string[] = [];
  if (given.length > 1) {
    problems.push(`${given[1]}: must not be set together with ${given[0]} (choose one Redis topology)`);
  }
  if (env.REDIS_SENTINELS !== undefined && env.REDIS_SENTINEL_NAME === undefined) {
    problems.push('REDIS_SENTINEL_NAME: must be set with REDIS_SENTINELS (the master name the sentinels monitor)');
  }
  return problems;
}

/** A certificate without its key (or the reverse) cannot serve TLS. */
function tlsPair(env: EnvSchema): string[] {
  if ((env.TLS_CERT_FILE === undefined) === (env.TLS_KEY_FILE === undefined)) return [];
  return env.TLS_CERT_FILE === undefined
    ? ['TLS_CERT_FILE: must be set with TLS_KEY_FILE (the certificate for that key)']
    : ['TLS_KEY_FILE: must be set with TLS_CERT_FILE (the private key of that certificate)'];
}

/** True when the Redis engine is configured, whichever topology. */
export function usesRedis(env: EnvSchema): boolean {
  return env.REDIS_URL !== undefined || env.REDIS_SENTINELS !== undefined || env.REDIS_CLUSTER_NODES !== undefined;
}

/**
 * Secrets every instance of a cluster must share. Made up per process they would differ
 * from instance to instance, and an admin call or a jac token would work or fail with
 * whichever instance the load balancer picked.
 */
function clusterSecrets(env: EnvSchema): string[] {
  if (!usesRedis(env)) return [];
  const missing: string[] = [];
  if (env.ADMIN_TOKEN === undefined) {
    missing.push('ADMIN_TOKEN: must be set when Redis is used (every instance must accept the same admin token)');
  }
  if (env.JAC_JWT_SECRET === undefined) {
    missing.push('JAC_JWT_SECRET: must be set when Redis is used (every instance must verify the same jac tokens)');
  }
  return missing;
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
  const problems = errors.map((e) => {
    // Never the value itself: it may be a secret.
    return `${e.property}: ${brokenMessage(e.property, e.constraints) ?? 'is invalid'}`;
  });
  // Rules across variables are only checked between values that are valid one by one.
  const bad = new Set(errors.map((e) => e.property));
  problems.push(...portClashes(env).filter((p) => !bad.has(p.slice(0, p.indexOf(':')))));
  const named = (p: string): boolean => !bad.has(p.slice(0, p.indexOf(':')));
  problems.push(...redisChoice(env).filter(named));
  problems.push(...tlsPair(env).filter(named));
  if (!bad.has('REDIS_URL')) problems.push(...clusterSecrets(env).filter(named));
  if (problems.length > 0) throw new ConfigValidationError(problems);
  return env;
}
