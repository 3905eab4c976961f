import { ArrayMaxSize, IsArray, IsObject, IsOptional, IsString, MaxLength } from 'class-validator';

const MAX_IDS = 10_000;

export class NotifyDto {
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_IDS)
  @IsString({ each: true })
  @MaxLength(512, { each: true })
  root_ids?: string[];

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_IDS)
  @IsString({ each: true })
  @MaxLength(512, { each: true })
  channel_ids?: string[];

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_IDS)
  @IsString({ each: true })
  @MaxLength(512, { each: true })
  client_ids?: string[];

  @IsObject()
  data!: Record<string, unknown>;
}
