import { Module } from '@nestjs/common';
import { OpenApiDocument } from '../core/http/openapi.js';
import { ApiDocsController } from './api-docs.controller.js';
import { ConnectionsController } from './connections.controller.js';
import { IndexController } from './index.controller.js';
import { InstanceDirectory } from './live/instance-directory.js';
import { LiveStreams } from './live/live-streams.js';
import { StreamController } from './live/stream.controller.js';
import { OpenApiController } from './openapi.controller.js';
import { AdminUiController } from './ui/admin-ui.controller.js';

/**
 * Cross-protocol admin routes: connections, the API description and its explorer, the live
 * stream and the admin page that reads it, and the index at `/`.
 */
@Module({
  controllers: [
    ConnectionsController,
    OpenApiController,
    ApiDocsController,
    StreamController,
    AdminUiController,
    IndexController,
  ],
  providers: [InstanceDirectory, LiveStreams, OpenApiDocument],
})
export class AdminModule {}
