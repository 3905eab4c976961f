import { BadRequestException, Injectable, type PipeTransform } from '@nestjs/common';
import { TOKEN_ID } from './felix-tokens.js';

/** `:tokenId` is the UUID `POST /admin/felix/tokens` returned, else 400. */
@Injectable()
export class ParseTokenIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!TOKEN_ID.test(value)) {
      throw new BadRequestException({
        statusCode: 400,
        error: 'Bad Request',
        message: ['tokenId: must be a token id (a UUID returned by POST /admin/felix/tokens)'],
      });
    }
    return value;
  }
}
