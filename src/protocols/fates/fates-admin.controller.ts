import { Body, Delete, Get, HttpCode, Param, Post, Put, type NotFoundException } from '@nestjs/common';
import { AdminController } from '../../core/auth/admin-controller.decorator.js';
import { notFound } from '../../core/http/http-errors.js';
import { ParseSnowflakePipe } from '../../core/http/snowflake.pipe.js';
import { FatesEventBody, FatesEventPipe, type FatesEvent } from './dto/fates-event.js';
import { SetTokenDto } from './dto/set-token.dto.js';
import { canonicalId, channelOf, type FatesTarget, type FatesTargetKind } from './fates.codec.js';
import { GLOBAL_CHANNEL } from './fates.codes.js';
import { FatesService } from './fates.service.js';
import {
  ApiAcceptedResponse,
  ApiBody,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
} from '@nestjs/swagger';
import { ApiErrors, ApiSnowflakeParam } from '../../core/http/openapi.js';

class EventAccepted {
  @ApiProperty()
  eid!: string;
}

class EventList {
  @ApiProperty({ type: [FatesEventBody], description: 'oldest first' })
  events!: unknown[];
}

const TOKEN_SET = 'Set or rotate the API token (stored hashed); connections holding another token close 4004';
const TOKEN_REMOVED = 'Remove the API token; its connections close 4004 on every instance';
const PUBLISH = 'Publish an event: stored for replay and delivered live on every instance';
const HISTORY = 'The stored history, oldest first (empty when none)';

const target = (kind: FatesTargetKind, id: string): FatesTarget => ({ kind, id: canonicalId(id) });

function unknownId(t: FatesTarget): NotFoundException {
  return notFound(`no token is set for ${channelOf(t)}`);
}

/**
 * Tokens and events for Fates (docs/protocols/fates.md). A bot or server is known once it has a
 * token: events for an unknown id are refused (404) rather than stored for nobody.
 */
@AdminController('admin/fates')
export class FatesAdminController {
  constructor(private readonly fates: FatesService) {}

  @Put('bots/:id/token')
  @HttpCode(204)
  @ApiOperation({ summary: `A bot: ${TOKEN_SET}` })
  @ApiSnowflakeParam()
  @ApiNoContentResponse({ description: 'Stored' })
  async setBotToken(@Param('id', ParseSnowflakePipe) id: string, @Body() body: SetTokenDto): Promise<void> {
    await this.fates.setToken(target('bot', id), body.token);
  }

  @Put('servers/:id/token')
  @HttpCode(204)
  @ApiOperation({ summary: `A server: ${TOKEN_SET}` })
  @ApiSnowflakeParam()
  @ApiNoContentResponse({ description: 'Stored' })
  async setServerToken(@Param('id', ParseSnowflakePipe) id: string, @Body() body: SetTokenDto): Promise<void> {
    await this.fates.setToken(target('server', id), body.token);
  }

  @Delete('bots/:id/token')
  @HttpCode(204)
  @ApiOperation({ summary: `A bot: ${TOKEN_REMOVED}` })
  @ApiSnowflakeParam()
  @ApiNoContentResponse({ description: 'Removed' })
  @ApiErrors(404)
  deleteBotToken(@Param('id', ParseSnowflakePipe) id: string): Promise<void> {
    return this.deleteToken(target('bot', id));
  }

  @Delete('servers/:id/token')
  @HttpCode(204)
  @ApiOperation({ summary: `A server: ${TOKEN_REMOVED}` })
  @ApiSnowflakeParam()
  @ApiNoContentResponse({ description: 'Removed' })
  @ApiErrors(404)
  deleteServerToken(@Param('id', ParseSnowflakePipe) id: string): Promise<void> {
    return this.deleteToken(target('server', id));
  }

  @Post('bots/:id/events')
  @HttpCode(202)
  @ApiOperation({ summary: `To a bot: ${PUBLISH}` })
  @ApiSnowflakeParam()
  @ApiBody({ type: FatesEventBody })
  @ApiAcceptedResponse({ description: 'Accepted', type: EventAccepted })
  @ApiErrors(404)
  postBotEvent(
    @Param('id', ParseSnowflakePipe) id: string,
    @Body(FatesEventPipe) event: FatesEvent,
  ): Promise<EventAccepted> {
    return this.publishTo(target('bot', id), event);
  }

  @Post('servers/:id/events')
  @HttpCode(202)
  @ApiOperation({ summary: `To a server: ${PUBLISH}` })
  @ApiSnowflakeParam()
  @ApiBody({ type: FatesEventBody })
  @ApiAcceptedResponse({ description: 'Accepted', type: EventAccepted })
  @ApiErrors(404)
  postServerEvent(
    @Param('id', ParseSnowflakePipe) id: string,
    @Body(FatesEventPipe) event: FatesEvent,
  ): Promise<EventAccepted> {
    return this.publishTo(target('server', id), event);
  }

  @Post('global/events')
  @HttpCode(202)
  @ApiOperation({ summary: `To the global channel (every Fates connection): ${PUBLISH}` })
  @ApiBody({ type: FatesEventBody })
  @ApiAcceptedResponse({ description: 'Accepted', type: EventAccepted })
  async postGlobalEvent(@Body(FatesEventPipe) event: FatesEvent): Promise<EventAccepted> {
    return { eid: await this.fates.publish(GLOBAL_CHANNEL, event) };
  }

  /** The stored history, oldest first; empty for an id with none (known or not). */
  @Get('bots/:id/events')
  @ApiOperation({ summary: `A bot's events: ${HISTORY}` })
  @ApiSnowflakeParam()
  @ApiOkResponse({ description: 'The history', type: EventList })
  async botEvents(@Param('id', ParseSnowflakePipe) id: string): Promise<EventList> {
    return { events: await this.fates.history(channelOf(target('bot', id))) };
  }

  @Get('servers/:id/events')
  @ApiOperation({ summary: `A server's events: ${HISTORY}` })
  @ApiSnowflakeParam()
  @ApiOkResponse({ description: 'The history', type: EventList })
  async serverEvents(@Param('id', ParseSnowflakePipe) id: string): Promise<EventList> {
    return { events: await this.fates.history(channelOf(target('server', id))) };
  }

  @Get('global/events')
  @ApiOperation({ summary: `The global channel's events: ${HISTORY}` })
  @ApiOkResponse({ description: 'The history', type: EventList })
  async globalEvents(): Promise<EventList> {
    return { events: await this.fates.history(GLOBAL_CHANNEL) };
  }

  private async deleteToken(t: FatesTarget): Promise<void> {
    if (!(await this.fates.deleteToken(t))) throw unknownId(t);
  }

  private async publishTo(t: FatesTarget, event: FatesEvent): Promise<EventAccepted> {
    if (!(await this.fates.hasToken(t))) throw unknownId(t);
    return { eid: await this.fates.publish(channelOf(t), event) };
  }
}
