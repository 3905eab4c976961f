import { Injectable, type PipeTransform } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { badRequest, NOT_A_JSON_OBJECT } from '../../../core/http/http-errors.js';
import { isJsonObject, type JsonObject } from '../../../core/json.js';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';

/**
 * An event as backends post it (the original's `structures/event.md`): `m` metadata with
 * the event type `e`, a `ctx` object, and any further keys, all kept as given.
 */
export interface FatesEvent extends JsonObject {
  m: JsonObject & { e: number; t?: number; eid?: string; ts?: number };
  ctx: JsonObject;
}

const MAX_EID_LENGTH = 128;

/** `m` as the OpenAPI document describes it (checked by `validateFatesEvent`). */
export class FatesEventMeta {
  @ApiProperty({ type: 'integer', description: 'event type (0 bot_vote ... 81 staff_unlock)' })
  e!: number;

  @ApiProperty({ type: 'integer', required: false, description: 'event sub-type, -1 when none' })
  t?: number;

  @ApiProperty({
    required: false,
    minLength: 1,
    maxLength: MAX_EID_LENGTH,
    description: 'set to a new uuid v4 when absent',
  })
  eid?: string;

  @ApiProperty({ required: false, description: 'seconds since the epoch; set to now when absent' })
  ts?: number;
}

/** An event as the OpenAPI document describes it; any further keys are kept as given. */
@ApiSchema({
  name: 'FatesEvent',
  description: 'An event (docs/protocols/fates.md): `m` metadata, `ctx` context, any further keys kept as given',
})
export class FatesEventBody {
  @ApiProperty({ type: FatesEventMeta })
  m!: FatesEventMeta;

  @ApiProperty({ type: 'object', additionalProperties: true })
  ctx!: JsonObject;
}

/**
 * Checks an event body, one message per bad field (`m.e: must be an integer`). Unknown
 * keys are allowed everywhere: events carry per-type context and convenience keys. This is
 * not a class-validator DTO because the global pipe refuses unknown keys.
 */
export function validateFatesEvent(body: unknown): { event: FatesEvent } | { problems: string[] } {
  if (!isJsonObject(body)) return { problems: [NOT_A_JSON_OBJECT] };
  const problems: string[] = [];
  const m = body['m'];
  if (!isJsonObject(m)) {
    problems.push('m: must be an object');
  } else {
    if (!Number.isSafeInteger(m['e'])) problems.push('m.e: must be an integer');
    if (m['t'] !== undefined && !Number.isSafeInteger(m['t'])) problems.push('m.t: must be an integer');
    const eid = m['eid'];
    if (eid !== undefined && (typeof eid !== 'string' || eid.length === 0 || eid.length > MAX_EID_LENGTH)) {
      problems.push(`m.eid: must be a string of 1 to ${MAX_EID_LENGTH} characters`);
    }
    if (m['ts'] !== undefined && (typeof m['ts'] !== 'number' || !Number.isFinite(m['ts']))) {
      problems.push('m.ts: must be a number');
    }
  }
  if (!isJsonObject(body['ctx'])) problems.push('ctx: must be an object');
  return problems.length > 0 ? { problems } : { event: body as FatesEvent };
}

/**
 * Gives an event the `m.eid` (uuid v4) and `m.ts` (seconds, with a fraction, as Python's
 * `time.time()`) the original producers set, unless the backend supplied them.
 */
export function completeFatesEvent(
  event: FatesEvent,
  nowMs = Date.now(),
  newId: () => string = randomUUID,
): FatesEvent {
  const m = { ...event.m };
  if (m.eid === undefined) m.eid = newId();
  if (m.ts === undefined) m.ts = nowMs / 1000;
  return { ...event, m };
}

/** `@Body(FatesEventPipe)`: a valid event or `400` with one message per bad field. */
@Injectable()
export class FatesEventPipe implements PipeTransform<unknown, FatesEvent> {
  transform(value: unknown): FatesEvent {
    const result = validateFatesEvent(value);
    if ('problems' in result) throw badRequest(result.problems);
    return result.event;
  }
}
