import { ArrayMaxSize, IsArray, IsObject, IsString, Matches } from 'class-validator';
import { SNOWFLAKE } from '../../../core/http/snowflake.pipe.js';
import { FreeForm } from '../../../core/http/validation.js';
import { ApiProperty } from '@nestjs/swagger';
import { ValidatedSchema } from '../../../core/http/validated-schema.js';

/** `PUT /admin/hatsu/guilds/:id`: the guild, its channels and its member user ids. */
@ValidatedSchema()
export class PutGuildDto {
  /** Any guild object; `_id` is set from the path. It is GUILD_INIT's `d`, with `channels` added. */
  @ApiProperty({ description: 'Any guild object, stored and sent as given; `_id` is set from the path' })
  @FreeForm()
  @IsObject()
  guild!: Record<string, unknown>;

  @ApiProperty({ description: 'Channel objects, stored and sent as given' })
  @FreeForm()
  @IsArray()
  @ArrayMaxSize(10_000)
  @IsObject({ each: true })
  channels!: Record<string, unknown>[];

  @IsArray()
  @ArrayMaxSize(100_000)
  @IsString({ each: true })
  @Matches(SNOWFLAKE, { each: true, message: 'each value must be a snowflake (1 to 20 digits)' })
  members!: string[];
}
