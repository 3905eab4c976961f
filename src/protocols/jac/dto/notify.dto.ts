import { ArrayMaxSize, IsArray, IsObject, IsOptional, IsString, MaxLength } from 'class-validator';
import { MAX_PUBLISH_IDS } from '../jac.codec.js';
import { FreeForm } from '../../../core/http/validation.js';
import { ApiProperty } from '@nestjs/swagger';
import { ValidatedSchema } from '../../../core/http/validated-schema.js';

@ValidatedSchema()
export class NotifyDto {
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_PUBLISH_IDS)
  @IsString({ each: true })
  @MaxLength(512, { each: true })
  root_ids?: string[];

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_PUBLISH_IDS)
  @IsString({ each: true })
  @MaxLength(512, { each: true })
  channel_ids?: string[];

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_PUBLISH_IDS)
  @IsString({ each: true })
  @MaxLength(512, { each: true })
  client_ids?: string[];

  @ApiProperty({ description: 'Any JSON object, sent as given to every match' })
  @FreeForm()
  @IsObject()
  data!: Record<string, unknown>;
}
