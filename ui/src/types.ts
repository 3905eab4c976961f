/** What `GET /admin/stream` sends; see docs/operations.md "Admin page". */
export interface InstanceView {
  id: string;
  engine: string;
  version: string;
  redis: Record<string, boolean> | null;
  available: boolean;
  started_at: string;
  uptime_s: number;
  connections: { total: number; by_protocol: Record<string, number>; opened: number; closed: number };
  watching: boolean;
  self: boolean;
  age_ms: number;
}

export interface Hello {
  instance: string;
  engine: string;
  version: string;
  interval_ms: number;
}

export interface ConnectionCounts {
  total: number;
  by_protocol: Record<string, number>;
  by_instance: Record<string, number>;
  changes: number;
}

export interface FeedEvent {
  seq: number;
  at: string;
  topic: string;
  target: { kind: string; ids?: string[]; count?: number };
  size: number;
  preview: string;
  encoding: 'text' | 'hex';
  truncated: boolean;
  local: boolean;
}

/** `GET /admin/connections`. */
export interface ClientInfo {
  id: string;
  protocol: string;
  user: string | null;
  channels: string[];
  instance: string;
  since: string;
}

export interface ConnectionsPage {
  total: number;
  by_protocol: Record<string, number>;
  by_instance: Record<string, number>;
  clients: ClientInfo[];
  next_cursor: string | null;
}
