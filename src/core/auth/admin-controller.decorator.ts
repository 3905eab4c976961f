import { applyDecorators, Controller, SetMetadata, UseGuards, UseInterceptors } from '@nestjs/common';
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
 * (`AdminGuard`) and one audit line per successful write (`AdminAudit`).
 */
export function AdminController(path: string, options: AdminControllerOptions = {}): ClassDecorator {
  return applyDecorators(
    Controller(path),
    UseGuards(AdminGuard),
    UseInterceptors(AdminAudit),
    SetMetadata(SECRET_PARAMS, options.secretParams ?? []),
  );
}
