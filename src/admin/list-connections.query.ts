import { Transform } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { ApiProperty } from '@nestjs/swagger';
import { ValidatedSchema } from '../core/http/validated-schema.js';

@ValidatedSchema()
export class ListConnectionsQuery {
  @IsOptional()
  @IsString()
  @Matches(/^[a-z][a-z0-9-]{0,31}$/, { message: 'must be a protocol name' })
  protocol?: string;

  /** Only the clients of this user (as `user` in the list: a jac root id, a hatsu user id...). */
  @IsOptional()
  @IsString()
  @MaxLength(512)
  user?: string;

  /** Only the clients in this channel. */
  @IsOptional()
  @IsString()
  @MaxLength(512)
  channel?: string;

  /** Only the clients connected to this instance. */
  @IsOptional()
  @IsString()
  @MaxLength(128)
  instance?: string;

  /** The last id of the previous page. */
  @IsOptional()
  @IsString()
  @MaxLength(256)
  cursor?: string;

  @ApiProperty({ default: 100 })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value,
  )
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}
