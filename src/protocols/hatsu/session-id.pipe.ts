import { Injectable, type PipeTransform } from '@nestjs/common';
import { badRequest } from '../../core/http/http-errors.js';
import { MAX_SESSION_ID_LENGTH } from './hatsu.codec.js';

/** Printable ASCII without spaces, as long as identify accepts. */
export const SESSION_ID = new RegExp(`^[\\x21-\\x7e]{1,${MAX_SESSION_ID_LENGTH}}$`);

/** `:sessionId` in the admin routes: what a client may send as `session_id`, else 400. */
@Injectable()
export class ParseSessionIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!SESSION_ID.test(value)) {
      throw badRequest([`sessionId: must be 1 to ${MAX_SESSION_ID_LENGTH} printable ASCII characters without spaces`]);
    }
    return value;
  }
}
