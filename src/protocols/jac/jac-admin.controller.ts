import { Body, HttpCode, Post, ServiceUnavailableException } from '@nestjs/common';
import { AdminController } from '../../core/auth/admin-controller.decorator.js';
import { badRequest } from '../../core/http/http-errors.js';
import { Engine } from '../../core/engine/engine.js';
import { IssueTokenDto } from './dto/issue-token.dto.js';
import { NotifyDto } from './dto/notify.dto.js';
import { JacTokens, newRootId } from './jac-tokens.js';
import { JacService } from './jac.service.js';
import { ApiAcceptedResponse, ApiCreatedResponse, ApiOperation, ApiProperty } from '@nestjs/swagger';

/** `POST /admin/jac/tokens`'s answer. */
class IssuedJacToken {
  @ApiProperty()
  token!: string;

  @ApiProperty()
  root_id!: string;
}

@AdminController('admin/jac')
export class JacAdminController {
  constructor(
    private readonly tokens: JacTokens,
    private readonly jac: JacService,
    private readonly engine: Engine,
  ) {}

  /** A JWT for `root_id` (a new root when none is given). */
  @Post('tokens')
  @HttpCode(201)
  @ApiOperation({ summary: 'Issue a jac token (HS256 JWT with claim root_id)' })
  @ApiCreatedResponse({ description: 'The token', type: IssuedJacToken })
  issue(@Body() body: IssueTokenDto): IssuedJacToken {
    const rootId = body.root_id ?? newRootId();
    return { token: this.tokens.issue(rootId, body.expires_in_s), root_id: rootId };
  }

  /**
   * The server-side `notify_users/channels/clients`. With Redis down the publish is
   * refused (503) rather than delivered on this instance only.
   */
  @Post('notify')
  @HttpCode(202)
  @ApiOperation({ summary: 'notify_users / notify_channels / notify_clients from the server side' })
  @ApiAcceptedResponse({ description: 'Published to every instance', schema: { type: 'object', maxProperties: 0 } })
  async notify(@Body() body: NotifyDto): Promise<Record<string, never>> {
    const targets = [
      ['user', body.root_ids ?? []],
      ['channel', body.channel_ids ?? []],
      ['client', body.client_ids ?? []],
    ] as const;
    if (targets.every(([, ids]) => ids.length === 0)) {
      throw badRequest(['root_ids: one of root_ids, channel_ids or client_ids must name at least one id']);
    }
    if (!(await this.engine.isReady())) {
      throw new ServiceUnavailableException({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'Redis is unavailable; try again shortly',
      });
    }
    for (const [kind, ids] of targets) await this.jac.notify(kind, ids, body.data);
    return {};
  }
}
