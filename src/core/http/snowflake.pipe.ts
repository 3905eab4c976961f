import { Injectable, type PipeTransform } from '@nestjs/common';
import { badRequest } from './http-errors.js';

/** 1 to 20 digits; `isSnowflake` also checks the value fits in 64 bits. */
export const SNOWFLAKE = /^[0-9]{1,20}$/;

const MAX_SNOWFLAKE = 2n ** 64n - 1n;

/** A snowflake: the decimal string of an unsigned 64-bit integer (0 to 18446744073709551615). */
export function isSnowflake(value: string): boolean {
  return SNOWFLAKE.test(value) && (value.length < 20 || BigInt(value) <= MAX_SNOWFLAKE);
}

/** Path ids are Discord-style snowflakes (unsigned 64-bit integers in decimal), else 400. */
@Injectable()
export class ParseSnowflakePipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!SNOWFLAKE.test(value)) throw badRequest(['id: must be a snowflake (1 to 20 digits)']);
    if (!isSnowflake(value)) throw badRequest([`id: must be a snowflake (at most ${MAX_SNOWFLAKE})`]);
    return value;
  }
}
