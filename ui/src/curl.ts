/** A shell word in single quotes, safe to paste whatever it holds. */
export function shellQuote(text: string): string {
  if (/^[\w@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The request as a `curl` line to paste into a shell, with the admin token as
 * `$ADMIN_TOKEN`: the real value never appears on the page.
 */
export function curlLine(origin: string, method: string, path: string, body?: unknown): string {
  const parts = ['curl', '-sS'];
  if (method !== 'GET') parts.push('-X', method);
  parts.push(shellQuote(origin + path), '-H', '"Authorization: Bearer $ADMIN_TOKEN"');
  if (body !== undefined) parts.push('-H', "'Content-Type: application/json'", '-d', shellQuote(JSON.stringify(body)));
  return parts.join(' ');
}
