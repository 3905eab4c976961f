import { curlLine } from './curl.js';

const TOKEN_KEY = 'gatehouse.adminToken';

/** The admin token for this tab: kept in sessionStorage, so it goes when the tab does. */
export const tokenStore = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (token: string): void => sessionStorage.setItem(TOKEN_KEY, token),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
};

/** An admin API answer, whatever its status. */
export interface Answer {
  status: number;
  /** The JSON body, or the text when it is not JSON, or null when empty. */
  body: unknown;
  /** The same request as a curl line, with `$ADMIN_TOKEN` for the token. */
  curl: string;
  ok: boolean;
}

/** A failed call, with what the gateway said in its `{statusCode, error, message}` body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** `401 Unauthorized: A valid admin bearer token is required` from an error body. */
export function describeFailure(status: number, body: unknown): string {
  if (status === 0) return 'The gateway did not answer (network error)';
  if (typeof body === 'object' && body !== null) {
    const { error, message } = body as { error?: unknown; message?: unknown };
    const text = Array.isArray(message) ? message.map(String).join('; ') : typeof message === 'string' ? message : '';
    return `${status} ${typeof error === 'string' ? error : ''}${text ? `: ${text}` : ''}`.replace('  ', ' ');
  }
  return `${status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`;
}

export class Api {
  /** Runs on every 401, so the page can ask for the token again. */
  onUnauthorized: (message: string) => void = () => undefined;

  constructor(readonly token: string) {}

  get headers(): Record<string, string> {
    return { Authorization: `Bearer ${this.token}` };
  }

  async call(method: string, path: string, body?: unknown): Promise<Answer> {
    const curl = curlLine(location.origin, method, path, body);
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        headers: body === undefined ? this.headers : { ...this.headers, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch {
      return { status: 0, body: null, curl, ok: false };
    }
    const text = await res.text();
    let parsed: unknown = text === '' ? null : text;
    try {
      if (text !== '') parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    if (res.status === 401) this.onUnauthorized(describeFailure(401, parsed));
    return { status: res.status, body: parsed, curl, ok: res.ok };
  }

  /** `call` for a route that must succeed: the body, or an `ApiError` naming what went wrong. */
  async get<T>(path: string): Promise<T> {
    const answer = await this.call('GET', path);
    if (!answer.ok) throw new ApiError(answer.status, describeFailure(answer.status, answer.body));
    return answer.body as T;
  }
}
