import { Injectable, type PipeTransform } from '@nestjs/common';
import { badRequest } from './http-errors.js';

export const SNOWFLAKE = /^[0-9]{1,20}$/;

/** Path ids are Discord-style snowflakes: 1 to 20 digits, else 400. */
@Injectable()
export class ParseSnowflakePipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!SNOWFLAKE.test(value)) throw badRequest(['id: must be a snowflake (1 to 20 digits)']);
    return value;
  }
}
