import { IsString, Length } from 'class-validator';

/** `PUT /admin/fates/{bots|servers}/:id/token`. */
export class SetTokenDto {
  @IsString()
  @Length(1, 512)
  token!: string;
}
