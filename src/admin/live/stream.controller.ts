import { Get, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AdminController } from '../../core/auth/admin-controller.decorator.js';
import { LiveStreams } from './live-streams.js';
import { ApiOkResponse, ApiOperation } from '@nestjs/swagger';

/**
 * `GET /admin/stream`: the admin page's live view as server-sent events, behind the admin
 * bearer token like every admin route. Browsers' EventSource cannot send that header, so the
 * page reads the stream with `fetch()`; any SSE client that sets headers works too.
 */
@AdminController('admin')
export class StreamController {
  constructor(private readonly streams: LiveStreams) {}

  @Get('stream')
  @ApiOperation({ summary: "The admin page's live view as server-sent events (docs/operations.md)" })
  @ApiOkResponse({ description: 'The stream', content: { 'text/event-stream': { schema: { type: 'string' } } } })
  open(@Req() req: Request, @Res() res: Response): void {
    this.streams.attach(req, res);
  }
}
