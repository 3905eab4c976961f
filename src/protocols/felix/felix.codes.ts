import { bytesTopic, routedTo } from '../../core/bus/bus-topic.js';
import type { CloseSpec } from '../../core/registry/connection.js';

/** The protocol's name: in the catalog, the registry and the metrics. */
export const FELIX = 'felix';

/**
 * Every close Felix sends. The original had no close codes of its own (a dead socket was
 * terminated, nothing else was ever closed); a revoked token's sockets get a policy close.
 */
export const FELIX_CLOSE = {
  revoked: { code: 1008, reason: 'Token revoked' },
} as const satisfies Record<string, CloseSpec>;

/** `10002`/`10003` updates for listening sockets on every instance, as each recipient gets them. */
export const FELIX_EVENTS = bytesTopic(FELIX, routedTo(FELIX, ['channel']));
