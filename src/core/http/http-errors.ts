import { BadRequestException, NotFoundException } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { isJsonObject, type JsonObject } from '../json.js';

/** The body of every HTTP error the gateway answers (`HttpExceptionFilter` puts every one in this shape). */
export class HttpErrorBody {
  @ApiProperty({ type: 'integer', examples: [400] })
  statusCode!: number;

  @ApiProperty({ examples: ['Bad Request'] })
  error!: string;

  @ApiProperty({
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
    description: 'what went wrong; a 400 lists one message per bad field',
    examples: [['to.guild_id: must be a snowflake (1 to 20 digits)']],
  })
  message!: string | string[];
}

/** `400` with one message per bad field (`to.guild_id: must be a snowflake`), as every admin route answers. */
export function badRequest(message: string[]): BadRequestException {
  return new BadRequestException({ statusCode: 400, error: 'Bad Request', message });
}

export function notFound(message: string): NotFoundException {
  return new NotFoundException({ statusCode: 404, error: 'Not Found', message });
}

/** The field message for a body that is not a JSON object, for validators that list problems. */
export const NOT_A_JSON_OBJECT = 'body: must be a JSON object';

/**
 * A body taken as any JSON object (stored or run as given, so no DTO describes it); anything
 * else is a `400`.
 */
export function jsonObjectBody(body: unknown): JsonObject {
  if (!isJsonObject(body)) throw badRequest([NOT_A_JSON_OBJECT]);
  return body;
}
