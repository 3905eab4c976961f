import { IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { ROOT_ID } from '../jac-tokens.js';
import { ApiProperty } from '@nestjs/swagger';
import { ValidatedSchema } from '../../../core/http/validated-schema.js';

@ValidatedSchema()
export class IssueTokenDto {
  @IsOptional()
  @IsString()
  @Matches(ROOT_ID, { message: 'must be a root id like n::<24 hex>' })
  root_id?: string;

  @ApiProperty({ default: 86_400 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(31_536_000)
  expires_in_s?: number;
}
