import { IsString, Matches } from 'class-validator';
import { SNOWFLAKE } from '../../../core/http/snowflake.pipe.js';
import { ValidatedSchema } from '../../../core/http/validated-schema.js';

/** `PUT /admin/hatsu/sessions/:sessionId`: whose session it is. */
@ValidatedSchema()
export class PutSessionDto {
  @IsString()
  @Matches(SNOWFLAKE, { message: 'must be a snowflake (1 to 20 digits)' })
  user_id!: string;
}
