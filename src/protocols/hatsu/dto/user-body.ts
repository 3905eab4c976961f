import { NOT_A_JSON_OBJECT } from '../../../core/http/http-errors.js';
import { isJsonObject } from '../../../core/json.js';

const isString = (v: unknown): boolean => typeof v === 'string';
const stringOrNull = (v: unknown): boolean => v === null || typeof v === 'string';
const isBool = (v: unknown): boolean => typeof v === 'boolean';
const isInt = (v: unknown): boolean => Number.isSafeInteger(v);

/**
 * The user object's known fields (the original's user document) and what each must be. A Map,
 * not an object literal: a body's own keys are looked up in it, and `constructor` or
 * `toString` must not find Object.prototype's members.
 */
const FIELDS: ReadonlyMap<string, [check: (v: unknown) => boolean, message: string, type: string | string[]]> = new Map(
  [
    ['username', [isString, 'must be a string', 'string']],
    ['separator', [isString, 'must be a string', 'string']],
    ['avatar_url', [stringOrNull, 'must be a string or null', ['string', 'null']]],
    ['banner_url', [stringOrNull, 'must be a string or null', ['string', 'null']]],
    ['flags', [isInt, 'must be an integer', 'integer']],
    ['verified', [isBool, 'must be a boolean', 'boolean']],
    ['system', [isBool, 'must be a boolean', 'boolean']],
  ],
);

/** The body's schema for the OpenAPI document, from the same table. */
export const USER_BODY_SCHEMA = {
  type: 'object',
  description: "A hatsu user object (READY's d); `_id` is set from the path, other fields are kept as given",
  properties: Object.fromEntries([...FIELDS].map(([field, [, , type]]) => [field, { type }])),
  not: { required: ['session_ids'] },
  additionalProperties: true,
};

/**
 * Checks a `PUT /admin/hatsu/users/:id` body: a JSON object whose known fields have the
 * right types; other fields are kept as they are (the user object is open-ended).
 * `session_ids` is refused: sessions are bearer secrets, set only through the sessions
 * route and never part of the READY a client receives. Returns one message per bad field.
 */
export function userBodyProblems(body: unknown): string[] {
  if (!isJsonObject(body)) return [NOT_A_JSON_OBJECT];
  const problems: string[] = [];
  for (const [field, value] of Object.entries(body)) {
    const rule = FIELDS.get(field);
    if (rule && !rule[0](value)) problems.push(`${field}: ${rule[1]}`);
  }
  if (Object.hasOwn(body, 'session_ids')) {
    problems.push('session_ids: not part of the user object; use PUT /admin/hatsu/sessions/:sessionId');
  }
  return problems;
}
