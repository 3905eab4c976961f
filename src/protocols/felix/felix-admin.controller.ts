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
  async revokeToken(@Param('tokenId', ParseTokenIdPipe) tokenId: string): Promise<void> {
    if (!(await this.felix.revokeToken(tokenId))) throw notFound('no such token');
  }

  /** A document is any JSON object, stored as given (the original's database entry). */
  @Put('guilds/:id')
  @HttpCode(204)
  putGuild(@Param('id', ParseSnowflakePipe) id: string, @Body() body: unknown): Promise<void> {
    return this.felix.putDocument('guild', id, jsonObjectBody(body));
  }

  @Get('guilds/:id')
  getGuild(@Param('id', ParseSnowflakePipe) id: string): Promise<Record<string, unknown>> {
    return this.document('guild', id);
  }

  @Put('users/:id')
  @HttpCode(204)
  putUser(@Param('id', ParseSnowflakePipe) id: string, @Body() body: unknown): Promise<void> {
    return this.felix.putDocument('user', id, jsonObjectBody(body));
  }

  @Get('users/:id')
  getUser(@Param('id', ParseSnowflakePipe) id: string): Promise<Record<string, unknown>> {
    return this.document('user', id);
  }

  /** The bot's status, answered in every heartbeat ACK from now on. */
  @Put('status')
  @HttpCode(204)
  reportStatus(@Body() body: ReportStatusDto): Promise<void> {
    return this.felix.reportStatus(body);
  }

  private async document(kind: DocumentKind, id: string): Promise<Record<string, unknown>> {
    const found = await this.felix.getDocument(kind, id);
    if (found === null) throw notFound(`no ${kind} data for ${id}`);
    return found;
  }
}
