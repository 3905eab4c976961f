import { Injectable, type PipeTransform } from '@nestjs/common';
import { badRequest } from '../../core/http/http-errors.js';
import { TOKEN_ID } from './felix-tokens.js';

/** `:tokenId` is the UUID `POST /admin/felix/tokens` returned, else 400. */
@Injectable()
export class ParseTokenIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!TOKEN_ID.test(value)) {
      throw badRequest(['tokenId: must be a token id (a UUID returned by POST /admin/felix/tokens)']);
    }
    return value;
  }
}
