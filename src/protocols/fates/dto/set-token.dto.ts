import { IsString, Length } from 'class-validator';
import { ValidatedSchema } from '../../../core/http/validated-schema.js';

/** `PUT /admin/fates/{bots|servers}/:id/token`. */
@ValidatedSchema()
export class SetTokenDto {
  @IsString()
  @Length(1, 512)
  token!: string;
}
