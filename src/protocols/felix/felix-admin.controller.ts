import { Body, ConflictException, Delete, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import { AdminController } from '../../core/auth/admin-controller.decorator.js';
import { jsonObjectBody, notFound } from '../../core/http/http-errors.js';
import { ParseSnowflakePipe } from '../../core/http/snowflake.pipe.js';
import { CreateTokenDto } from './dto/create-token.dto.js';
import { ReportStatusDto } from './dto/report-status.dto.js';
import { FelixTokens, type IssuedToken } from './felix-tokens.js';
import type { DocumentKind } from './felix-data.js';
import { FelixService } from './felix.service.js';
import { ParseTokenIdPipe } from './token-id.pipe.js';
import {
  ApiBody,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiProperty,
} from '@nestjs/swagger';
import { ApiErrors, ApiSnowflakeParam } from '../../core/http/openapi.js';

/** `POST /admin/felix/tokens`'s answer. */
class IssuedFelixToken implements IssuedToken {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty()
  token!: string;

  @ApiProperty()
  public!: boolean;
}

const STORED_OBJECT = { type: 'object', additionalProperties: true } as const;

/** Felix's admin API (docs/protocols/felix.md). */
@AdminController('admin/felix')
export class FelixAdminController {
  constructor(
    private readonly tokens: FelixTokens,
    private readonly felix: FelixService,
  ) {}

  /** Registers a token (generated in Felix's format when none is given). */
  @Post('tokens')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Register a Felix API token (generated in Felix’s 260-character format when none is given)',
  })
  @ApiCreatedResponse({
    description: 'The token; only its SHA-256 is stored, so this is the one time it is shown',
    type: IssuedFelixToken,
  })
  @ApiErrors(409)
  async createToken(@Body() body: CreateTokenDto): Promise<IssuedToken> {
    const issued = await this.tokens.create(body);
    if (!issued) {
      throw new ConflictException({ statusCode: 409, error: 'Conflict', message: 'token: already registered' });
    }
    return issued;
  }

  /** Revokes a token; its live sockets are closed on every instance. */
  @Delete('tokens/:tokenId')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Revoke a token; the sockets that authenticated with it are closed (1008) on every instance',
  })
  @ApiParam({ name: 'tokenId', schema: { type: 'string', format: 'uuid' } })
  @ApiNoContentResponse({ description: 'Revoked' })
  @ApiErrors(404)
  async revokeToken(@Param('tokenId', ParseTokenIdPipe) tokenId: string): Promise<void> {
    if (!(await this.felix.revokeToken(tokenId))) throw notFound('no such token');
  }

  /** A document is any JSON object, stored as given (the original's database entry). */
  @Put('guilds/:id')
  @HttpCode(204)
  @ApiOperation({
    summary: "Store a guild's data object and send 10002 to every socket listening to it, on every instance",
  })
  @ApiSnowflakeParam()
  @ApiBody({ schema: { ...STORED_OBJECT, description: 'The full data object, stored and sent as given' } })
  @ApiNoContentResponse({ description: 'Stored and sent' })
  putGuild(@Param('id', ParseSnowflakePipe) id: string, @Body() body: unknown): Promise<void> {
    return this.felix.putDocument('guild', id, jsonObjectBody(body));
  }

  @Get('guilds/:id')
  @ApiOperation({ summary: "The guild's stored data object" })
  @ApiSnowflakeParam()
  @ApiOkResponse({ description: 'The object as last stored', schema: STORED_OBJECT })
  @ApiErrors(404)
  getGuild(@Param('id', ParseSnowflakePipe) id: string): Promise<Record<string, unknown>> {
    return this.document('guild', id);
  }

  @Put('users/:id')
  @HttpCode(204)
  @ApiOperation({
    summary: "Store a user's data object and send 10003 to every socket listening to it, on every instance",
  })
  @ApiSnowflakeParam()
  @ApiBody({ schema: { ...STORED_OBJECT, description: 'The full data object, stored and sent as given' } })
  @ApiNoContentResponse({ description: 'Stored and sent' })
  putUser(@Param('id', ParseSnowflakePipe) id: string, @Body() body: unknown): Promise<void> {
    return this.felix.putDocument('user', id, jsonObjectBody(body));
  }

  @Get('users/:id')
  @ApiOperation({ summary: "The user's stored data object" })
  @ApiSnowflakeParam()
  @ApiOkResponse({ description: 'The object as last stored', schema: STORED_OBJECT })
  @ApiErrors(404)
  getUser(@Param('id', ParseSnowflakePipe) id: string): Promise<Record<string, unknown>> {
    return this.document('user', id);
  }

  /** The bot's status, answered in every heartbeat ACK from now on. */
  @Put('status')
  @HttpCode(204)
  @ApiOperation({ summary: "The bot's status, reported in every heartbeat ACK (10001)" })
  @ApiNoContentResponse({ description: 'Stored' })
  reportStatus(@Body() body: ReportStatusDto): Promise<void> {
    return this.felix.reportStatus(body);
  }

  private async document(kind: DocumentKind, id: string): Promise<Record<string, unknown>> {
    const found = await this.felix.getDocument(kind, id);
    if (found === null) throw notFound(`no ${kind} data for ${id}`);
    return found;
  }
}
