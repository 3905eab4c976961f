import {
  ArrayMaxSize,
  IsArray,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  Min,
  Validate,
  ValidatorConstraint,
  type ValidatorConstraintInterface,
} from 'class-validator';
import { FreeForm } from '../../../core/http/validation.js';
import { ApiProperty } from '@nestjs/swagger';
import { ValidatedSchema } from '../../../core/http/validated-schema.js';

const isPing = (value: unknown): boolean =>
  value === undefined || value === null || (typeof value === 'number' && Number.isFinite(value));

/** A shard's `ping` (or Eris's `latency`, renamed to `ping`) is a number or null when present. */
@ValidatorConstraint({ name: 'shardPings' })
export class ShardPings implements ValidatorConstraintInterface {
  validate(shards: unknown): boolean {
    if (!Array.isArray(shards)) return false;
    return shards.every(
      (shard: unknown) =>
        typeof shard === 'object' &&
        shard !== null &&
        isPing((shard as Record<string, unknown>)['ping']) &&
        isPing((shard as Record<string, unknown>)['latency']),
    );
  }

  defaultMessage(): string {
    return 'each shard\'s "ping" (or "latency") must be a number or null';
  }
}

/** The bot's status, as `PUT /admin/felix/status` takes it. */
@ValidatedSchema()
export class ReportStatusDto {
  // Decorators run bottom-up and the 400 names each field's first failure: the type check
  // goes last so a missing or mistyped field is reported as such.

  /** Eris `Shard#toJSON()` objects, each with `ping`. */
  @ApiProperty({
    items: {
      type: 'object',
      description:
        'An Eris shard, kept as given; `latency` is renamed `ping`, and a shard with neither gets `ping: null`',
      properties: { ping: { type: ['number', 'null'] }, latency: { type: ['number', 'null'] } },
    },
  })
  @FreeForm()
  @Validate(ShardPings)
  @IsObject({ each: true })
  @ArrayMaxSize(10_000)
  @IsArray()
  shards!: Record<string, unknown>[];

  @Min(0)
  @IsInt()
  guildsCount!: number;

  /** In MB, as the original reported heap used; the gateway's own heap when absent. */
  @ApiProperty({ description: 'MB; the gateway’s own heap when absent' })
  @IsOptional()
  @Min(0)
  @IsNumber({ allowNaN: false, allowInfinity: false })
  memoryUsage?: number;

  /** Milliseconds the bot has been up at the time of the report; it advances from there. */
  @ApiProperty({ description: 'ms at the time of the report, advanced from then on; the gateway’s own when absent' })
  @IsOptional()
  @Min(0)
  @IsInt()
  uptime?: number;
}
