/** A JSON object as parsed: string keys, values still to be checked. */
export type JsonObject = Record<string, unknown>;

/** A JSON object in the sense every protocol and the admin API use: not null, not an array. */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Compact JSON as UTF-8 bytes, so a message is serialised once and the same bytes go to every recipient. */
export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}
