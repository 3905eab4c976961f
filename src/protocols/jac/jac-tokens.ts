import { Injectable } from '@nestjs/common';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppConfig } from '../../config/app-config.js';
import { isJsonObject, type JsonObject } from '../../core/json.js';
import { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';

/** The root every unauthenticated jac connection shares (the original's PUBLIC_ROOT). */
export const PUBLIC_ROOT = 'n::000000000000000000000001';

/** A root reference as the original formats it: `n:<name>:<24 hex>` (the root's name is empty). */
export const ROOT_ID = /^n:[A-Za-z0-9_]*:[0-9a-f]{24}$/;

export const DEFAULT_TOKEN_TTL_S = 86_400;

const HEADER = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

export interface JacIdentity {
  rootId: string;
  authenticated: boolean;
  /** The token's `exp` (unix seconds); null for the public identity. */
  expiresAt: number | null;
}

/**
 * Whether an identity may act as authenticated now. A socket keeps the root it connected
 * with, but once its token expires it publishes and runs walkers as the public does.
 */
export function isAuthenticated(identity: JacIdentity, nowMs = Date.now()): boolean {
  return identity.authenticated && (identity.expiresAt === null || identity.expiresAt * 1000 > nowMs);
}

export const PUBLIC_IDENTITY: JacIdentity = { rootId: PUBLIC_ROOT, authenticated: false, expiresAt: null };

/**
 * jac tokens: HS256 JWTs carrying `root_id`, signed with `JAC_JWT_SECRET`. Only HS256
 * with our own header is accepted (no `alg: none`, no key confusion); an expired,
 * malformed or forged token is simply not an identity.
 */
@Injectable()
export class JacTokens {
  private readonly secret: Buffer;

  constructor(config: AppConfig, logger: GatehouseLogger) {
    if (config.JAC_JWT_SECRET !== undefined) {
      this.secret = Buffer.from(config.JAC_JWT_SECRET, 'utf8');
    } else {
      this.secret = randomBytes(32);
      logger.pino.warn({ context: 'jac' }, 'JAC_JWT_SECRET is not set; jac tokens will not survive a restart');
    }
  }

  issue(rootId: string, expiresInS: number = DEFAULT_TOKEN_TTL_S): string {
    const now = Math.floor(Date.now() / 1000);
    const payload = base64url(JSON.stringify({ root_id: rootId, iat: now, exp: now + expiresInS }));
    return `${HEADER}.${payload}.${this.sign(`${HEADER}.${payload}`)}`;
  }

  /** The identity a token proves, or the public one. */
  verify(token: string | null | undefined): JacIdentity {
    if (!token) return PUBLIC_IDENTITY;
    const parts = token.split('.');
    if (parts.length !== 3) return PUBLIC_IDENTITY;
    const [header, payload, signature] = parts as [string, string, string];
    const expected = Buffer.from(this.sign(`${header}.${payload}`));
    const presented = Buffer.from(signature);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return PUBLIC_IDENTITY;
    const head = decode(header);
    if (head?.['alg'] !== 'HS256') return PUBLIC_IDENTITY;
    const claims = decode(payload);
    const rootId = claims?.['root_id'];
    const exp = claims?.['exp'];
    if (typeof rootId !== 'string' || !ROOT_ID.test(rootId)) return PUBLIC_IDENTITY;
    if (typeof exp !== 'number' || exp <= Date.now() / 1000) return PUBLIC_IDENTITY;
    return { rootId, authenticated: true, expiresAt: exp };
  }

  /** True when a token was presented and did not prove an identity (a failed authentication). */
  static rejected(presented: string | null | undefined, identity: JacIdentity): boolean {
    return typeof presented === 'string' && presented.trim() !== '' && !identity.authenticated;
  }

  /** `Bearer <jwt>` (prefix case-insensitive, as the original compared it) or the bare token. */
  verifyHeader(value: string | null | undefined): JacIdentity {
    if (!value) return PUBLIC_IDENTITY;
    const bearer = /^bearer\s+/i.exec(value);
    return this.verify(bearer ? value.slice(bearer[0].length).trim() : value.trim());
  }

  private sign(input: string): string {
    return createHmac('sha256', this.secret).update(input).digest('base64url');
  }
}

/** A fresh root id in the original's format. */
export function newRootId(): string {
  return `n::${randomBytes(12).toString('hex')}`;
}

/** Client and channel ids: `<unix seconds>:<32 hex>`, as the original made them. */
export function newJacId(): string {
  return `${Math.floor(Date.now() / 1000)}:${randomBytes(16).toString('hex')}`;
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function decode(part: string): JsonObject | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return isJsonObject(value) ? value : null;
  } catch {
    return null;
  }
}
