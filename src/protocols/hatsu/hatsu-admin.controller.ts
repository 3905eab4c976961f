import { Body, Delete, HttpCode, Param, Post, Put } from '@nestjs/common';
import { AdminController } from '../../core/auth/admin-controller.decorator.js';
import { badRequest, notFound } from '../../core/http/http-errors.js';
import { ParseSnowflakePipe } from '../../core/http/snowflake.pipe.js';
import { DispatchDto, dispatchProblems } from './dto/dispatch.dto.js';
import { PutGuildDto } from './dto/put-guild.dto.js';
import { PutSessionDto } from './dto/put-session.dto.js';
import { USER_BODY_SCHEMA, userBodyProblems } from './dto/user-body.js';
import { eventFrame, notificationFrame, presenceUpdateFrame } from './hatsu.codec.js';
import { HatsuData } from './hatsu-data.js';
import type { DispatchTarget } from './hatsu-channels.js';
import { HatsuService } from './hatsu.service.js';
import { ParseSessionIdPipe, SESSION_ID } from './session-id.pipe.js';
import {
  ApiAcceptedResponse,
  ApiBody,
  ApiNoContentResponse,
  ApiOperation,
  ApiParam,
  ApiProperty,
  type SchemaObject,
} from '@nestjs/swagger';
import { ApiErrors, ApiSnowflakeParam } from '../../core/http/openapi.js';

const ApiSessionParam = (): MethodDecorator =>
  ApiParam({ name: 'sessionId', schema: { type: 'string', pattern: SESSION_ID.source } });

class DispatchSent {
  @ApiProperty({ type: 'integer', description: 'how many sessions it was sent to, on every instance' })
  sessions!: number;
}

/** hatsu's admin API (docs/protocols/hatsu.md "Admin API"). */
@AdminController('admin/hatsu', { secretParams: ['sessionId'] })
export class HatsuAdminController {
  constructor(
    private readonly data: HatsuData,
    private readonly hatsu: HatsuService,
  ) {}

  /** Stores the user object; `_id` comes from the path. */
  @Put('users/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Store a hatsu user object (READY’s d); _id is set from the path' })
  @ApiSnowflakeParam()
  @ApiBody({ schema: USER_BODY_SCHEMA as SchemaObject })
  @ApiNoContentResponse({ description: 'Stored' })
  async putUser(@Param('id', ParseSnowflakePipe) id: string, @Body() body: unknown): Promise<void> {
    const problems = userBodyProblems(body);
    if (problems.length > 0) throw badRequest(problems);
    await this.data.putUser(id, body as Record<string, unknown>);
  }

  /**
   * Stores the guild, its channels and members. Live sessions of members who joined or
   * left move in or out of the guild's events at once, on every instance.
   */
  @Put('guilds/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Store a guild, its channels and its member ids' })
  @ApiSnowflakeParam()
  @ApiNoContentResponse({ description: 'Stored; live member sessions follow the change' })
  async putGuild(@Param('id', ParseSnowflakePipe) id: string, @Body() body: PutGuildDto): Promise<void> {
    const { added, removed } = await this.data.putGuild(
      id,
      { guild: { ...body.guild, _id: id }, channels: body.channels },
      body.members,
    );
    await this.hatsu.membersChanged(id, added, removed);
  }

  /**
   * Makes the session id valid for the user. Re-binding it to another user closes the
   * live connections still identified as the previous one.
   */
  @Put('sessions/:sessionId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Make a session id valid for a user' })
  @ApiSessionParam()
  @ApiNoContentResponse({ description: 'Stored (hashed)' })
  @ApiErrors(404)
  async putSession(
    @Param('sessionId', ParseSessionIdPipe) sessionId: string,
    @Body() body: PutSessionDto,
  ): Promise<void> {
    if (!(await this.data.getUser(body.user_id))) throw notFound('user_id: no such user');
    const before = await this.data.putSession(sessionId, body.user_id);
    if (before !== null && before !== body.user_id) await this.hatsu.revoke(sessionId);
  }

  /** Invalidates the session id; live connections on it close `4002 Invalid authorization`, everywhere. */
  @Delete('sessions/:sessionId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Invalidate a session id; live connections on it close 4002' })
  @ApiSessionParam()
  @ApiNoContentResponse({ description: 'Invalidated' })
  @ApiErrors(404)
  async deleteSession(@Param('sessionId', ParseSessionIdPipe) sessionId: string): Promise<void> {
    const existed = await this.data.deleteSession(sessionId);
    // Announced even when unknown: a retry after a publish that failed must still close
    // the connections on the other instances.
    await this.hatsu.revoke(sessionId);
    if (!existed) throw notFound('no such session');
  }

  /** Sends an event to a guild's members, a user, or everyone: `202 {"sessions": n}`. */
  @Post('dispatch')
  @HttpCode(202)
  @ApiOperation({ summary: 'Send an event to a guild’s members, a user, or everyone' })
  @ApiAcceptedResponse({ description: 'Sent', type: DispatchSent })
  @ApiErrors(404)
  async dispatch(@Body() body: DispatchDto): Promise<{ sessions: number }> {
    const problems = dispatchProblems(body);
    if (problems.length > 0) throw badRequest(problems);
    let to: DispatchTarget;
    if (body.to.guild_id !== undefined) {
      if (!(await this.data.getGuild(body.to.guild_id))) throw notFound('to.guild_id: no such guild');
      to = { guildId: body.to.guild_id };
    } else if (body.to.user_id !== undefined) {
      if (!(await this.data.getUser(body.to.user_id))) throw notFound('to.user_id: no such user');
      to = { userId: body.to.user_id };
    } else {
      to = { all: true };
    }
    const presence = body.t === 'PRESENCE_UPDATE';
    const payload =
      body.t === 'NOTIFICATION'
        ? notificationFrame(body.type as string, body.excerpt as Record<string, unknown>)
        : presence
          ? presenceUpdateFrame(body.id as string, body.d)
          : eventFrame(body.t, body.d);
    return { sessions: await this.hatsu.dispatch(to, payload, presence) };
  }
}
