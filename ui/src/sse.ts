import { ApiError, describeFailure } from './api.js';

export type StreamHandler = (event: string, data: unknown) => void;

/**
 * Reads `GET /admin/stream`. EventSource cannot send an Authorization header, so this is
 * a plain fetch read chunk by chunk, split into server-sent events. Resolves when the
 * server ends the stream; rejects with an `ApiError` when it refuses it (401, 503), and
 * with the fetch error when the connection drops.
 */
export async function readStream(token: string, signal: AbortSignal, onEvent: StreamHandler): Promise<void> {
  const res = await fetch('/admin/stream', {
    headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
    cache: 'no-store',
    signal,
  });
  if (!res.ok || !res.body) {
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // keep the text
    }
    throw new ApiError(res.status, describeFailure(res.status, body));
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      dispatch(block, onEvent);
    }
  }
}

function dispatch(block: string, onEvent: StreamHandler): void {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue; // a heartbeat comment
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return;
  try {
    onEvent(event, JSON.parse(data.join('\n')));
  } catch {
    // an event this page does not understand (another version): skipped
  }
}
