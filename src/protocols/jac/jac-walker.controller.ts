import {
  Body,
  Controller,
  Headers,
  HttpCode,
  InternalServerErrorException,
  Param,
  Post,
  UnauthorizedException,
} from '@nestjs/common';
import { badRequest, HttpErrorBody, jsonObjectBody, notFound } from '../../core/http/http-errors.js';
import { JAC_MESSAGES, MAX_ERROR_ENTRIES } from './jac.errors.js';
import { JacTokens } from './jac-tokens.js';
import { JacService } from './jac.service.js';
import { ApiBody, ApiOkResponse, ApiOperation, ApiSecurity, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ApiErrors, JAC_SCHEME } from '../../core/http/openapi.js';

/** `POST /walker/:name`: a walker over HTTP, with the socket's token rules. */
@Controller('walker')
export class JacWalkerController {
  constructor(
    private readonly jac: JacService,
    private readonly tokens: JacTokens,
  ) {}

  @Post(':name')
  @HttpCode(200)
  @ApiOperation({ summary: 'Run a walker over HTTP; the body is its context' })
  @ApiSecurity({})
  @ApiSecurity(JAC_SCHEME)
  @ApiBody({ required: false, schema: { type: 'object', description: 'The walker context' } })
  @ApiOkResponse({
    description: 'The walker ran',
    schema: {
      type: 'object',
      required: ['status'],
      properties: { status: { enum: [200] }, reports: { type: 'array' } },
    },
  })
  @ApiErrors(400, 404, 413, 415)
  @ApiUnauthorizedResponse({ description: 'The walker requires a valid bearer token', type: HttpErrorBody })
  async run(
    @Param('name') name: string,
    @Headers('authorization') authorization: string | undefined,
    @Body() body: unknown,
  ): Promise<{ status: 200; reports?: unknown[] }> {
    const context = jsonObjectBody(body === undefined ? {} : body);
    const identity = this.tokens.verifyHeader(authorization);
    const outcome = await this.jac.runWalker(name, 'post', context, identity, null, null);
    switch (outcome.kind) {
      case 'unknown':
        throw notFound('no such walker');
      case 'unauthenticated':
        throw new UnauthorizedException({
          statusCode: 401,
          error: 'Unauthorized',
          message: `Walker ${name} requires a valid bearer token`,
        });
      case 'invalid':
        // Capped like a socket's error reply: a context validated item by item must not
        // turn a 1 MiB body into a far larger answer.
        throw badRequest(
          outcome.problems.length > MAX_ERROR_ENTRIES
            ? [
                ...outcome.problems.slice(0, MAX_ERROR_ENTRIES - 1).map((p) => `${p.field}: ${p.message}`),
                JAC_MESSAGES.truncated,
              ]
            : outcome.problems.map((p) => `${p.field}: ${p.message}`),
        );
      case 'failed':
        throw new InternalServerErrorException({
          statusCode: 500,
          error: 'Internal Server Error',
          message: `Walker ${name} failed`,
        });
      case 'ok':
        return outcome.reports.length > 0 ? { status: 200, reports: outcome.reports } : { status: 200 };
    }
  }
}
