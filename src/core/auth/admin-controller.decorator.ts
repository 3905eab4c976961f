import { applyDecorators, Controller, SetMetadata, UseGuards, UseInterceptors } from '@nestjs/common';
import { ApiBearerAuth } from '@nestjs/swagger';
import { ADMIN_ERRORS, ADMIN_SCHEME, ApiErrors } from '../http/openapi.js';
import { AdminAudit, SECRET_PARAMS } from '../logging/admin-audit.interceptor.js';
import { AdminGuard } from './admin.guard.js';

export interface AdminControllerOptions {
  /**
   * Path parameters that are credentials (a hatsu session id): the audit log names them by a
   * fingerprint, never by value.
   */
  secretParams?: readonly string[];
}

/**
 * An admin API controller: `Authorization: Bearer <ADMIN_TOKEN>` on every route
 * (`AdminGuard`) and one audit line per successful write (`AdminAudit`). In the OpenAPI
 * document its routes name the admin bearer scheme and the errors every admin route can answer.
 */
export function AdminController(path: string, options: AdminControllerOptions = {}): ClassDecorator {
  return applyDecorators(
    Controller(path),
    UseGuards(AdminGuard),
    UseInterceptors(AdminAudit),
    SetMetadata(SECRET_PARAMS, options.secretParams ?? []),
    ApiBearerAuth(ADMIN_SCHEME),
    ApiErrors(...ADMIN_ERRORS),
  );
}
