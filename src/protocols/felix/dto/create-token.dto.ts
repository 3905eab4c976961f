import { IsBoolean, IsOptional, IsString, Length, Matches } from 'class-validator';
import { ApiProperty } from '@nestjs/swagger';
import { ValidatedSchema } from '../../../core/http/validated-schema.js';

// Decorators run bottom-up and a 400 names each field's first failure: type checks go last.
@ValidatedSchema()
export class CreateTokenDto {
  /** Sent as a raw header value, so visible ASCII only; 16 characters at least (generated ones have 260). */
  @IsOptional()
  @Matches(/^[\x21-\x7e]{16,512}$/, { message: 'must be 16 to 512 visible ASCII characters (no spaces)' })
  @IsString()
  token?: string;

  /** Who the token is for (the original kept a Discord user id); shown as the connection's user. */
  @IsOptional()
  @Length(1, 128)
  @IsString()
  user?: string;

  @ApiProperty({ default: false, description: 'Public tokens are kept but refused by the socket' })
  @IsOptional()
  @IsBoolean()
  public?: boolean;
}
