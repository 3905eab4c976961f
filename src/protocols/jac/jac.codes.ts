import { bytesTopic, routedTo } from '../../core/bus/bus-topic.js';
import type { CloseSpec } from '../../core/registry/connection.js';

/** The protocol's name: in the catalog, the registry and the metrics. */
export const JAC = 'jac';

/**
 * Every close jac sends. The original closed only for a dead connection; an admin
 * disconnect and a slow consumer get the core's `1000` and `1013`.
 */
export const JAC_CLOSE = {
  keepaliveTimeout: { code: 1011, reason: 'keepalive ping timeout' },
} as const satisfies Record<string, CloseSpec>;

/** Messages for jac sockets on every instance: the frame as each recipient gets it. */
export const JAC_EVENTS = bytesTopic(JAC, routedTo(JAC, ['user', 'channel', 'client']));
