import { Type } from 'class-transformer';
import {
  Allow,
  Equals,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  Validate,
  ValidateNested,
  ValidatorConstraint,
  type ValidatorConstraintInterface,
} from 'class-validator';
import { SNOWFLAKE } from '../../../core/http/snowflake.pipe.js';
import { FreeForm } from '../../../core/http/validation.js';
import { ApiProperty } from '@nestjs/swagger';
import { ValidatedSchema } from '../../../core/http/validated-schema.js';

/** Exactly one of the three. */
@ValidatedSchema()
export class DispatchTargetDto {
  @IsOptional()
  @IsString()
  @Matches(SNOWFLAKE, { message: 'must be a snowflake (1 to 20 digits)' })
  guild_id?: string;

  @IsOptional()
  @IsString()
  @Matches(SNOWFLAKE, { message: 'must be a snowflake (1 to 20 digits)' })
  user_id?: string;

  @IsOptional()
  @Equals(true)
  all?: true;
}

@ValidatorConstraint({ name: 'oneTarget' })
class OneTarget implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    // A missing or non-object `to` is IsObject's to report.
    if (typeof value !== 'object' || value === null) return true;
    const to = value as DispatchTargetDto;
    return [to.guild_id, to.user_id, to.all].filter((v) => v !== undefined).length === 1;
  }

  defaultMessage(): string {
    return 'must name exactly one of guild_id, user_id or all';
  }
}

/** Event names the gateway sends itself; a dispatch cannot impersonate them. */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set(['HELLO', 'READY', 'ACK']);

/** `POST /admin/hatsu/dispatch` (docs/protocols/hatsu.md "Admin API"). */
@ValidatedSchema()
export class DispatchDto {
  @ApiProperty({ not: { enum: [...RESERVED_EVENTS] } })
  @IsString()
  @Matches(/^[A-Za-z0-9_]{1,64}$/, { message: 'must be 1 to 64 letters, digits or underscores' })
  t!: string;

  /** The event's data, any JSON; `null` when absent. Not allowed with NOTIFICATION. */
  @ApiProperty({ description: 'Any JSON, sent as given; `null` when absent. Not with NOTIFICATION' })
  @FreeForm()
  @Allow()
  d?: unknown;

  /** NOTIFICATION only: the notification type (e.g. FRIEND_REQUEST). */
  @ApiProperty({ description: 'NOTIFICATION only, required there' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  type?: string;

  /** NOTIFICATION only. */
  @ApiProperty({ description: 'NOTIFICATION only, required there; sent as given' })
  @FreeForm()
  @IsOptional()
  @IsObject()
  excerpt?: Record<string, unknown>;

  /** PRESENCE_UPDATE only: the user whose presence it is (sent as `id` and `_id`). */
  @ApiProperty({ description: 'PRESENCE_UPDATE only, required there: the user it is about' })
  @IsOptional()
  @IsString()
  @Matches(SNOWFLAKE, { message: 'must be a snowflake (1 to 20 digits)' })
  id?: string;

  @ApiProperty({ minProperties: 1, maxProperties: 1 })
  @IsObject()
  @Validate(OneTarget)
  @ValidateNested()
  @Type(() => DispatchTargetDto)
  to!: DispatchTargetDto;
}

/**
 * The rules that tie fields to `t`, one message per bad field: NOTIFICATION carries
 * `type` and `excerpt` instead of `d`; PRESENCE_UPDATE names its user in `id`.
 */
export function dispatchProblems(body: DispatchDto): string[] {
  const problems: string[] = [];
  if (RESERVED_EVENTS.has(body.t)) problems.push('t: HELLO, READY and ACK are sent by the gateway itself');
  if (body.t === 'NOTIFICATION') {
    if (body.type === undefined) problems.push('type: required when t is NOTIFICATION');
    if (body.excerpt === undefined) problems.push('excerpt: required when t is NOTIFICATION');
    if (body.d !== undefined) problems.push('d: not allowed when t is NOTIFICATION (use type and excerpt)');
  } else {
    if (body.type !== undefined) problems.push('type: only allowed when t is NOTIFICATION');
    if (body.excerpt !== undefined) problems.push('excerpt: only allowed when t is NOTIFICATION');
  }
  if (body.t === 'PRESENCE_UPDATE') {
    if (body.id === undefined) problems.push('id: required when t is PRESENCE_UPDATE');
  } else if (body.id !== undefined) {
    problems.push('id: only allowed when t is PRESENCE_UPDATE');
  }
  return problems;
}
