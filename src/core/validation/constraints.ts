/**
 * class-validator constraints that bound a value of the right type (a range, a length,
 * a size). When one of them fails together with a type check (`"x"` for an integer from
 * 1 to 10 fails `isInt`, `min` and `max` alike), the type check is what the value broke.
 */
const BOUNDS: ReadonlySet<string> = new Set([
  'min',
  'max',
  'minLength',
  'maxLength',
  'isLength',
  'arrayMinSize',
  'arrayMaxSize',
  'arrayNotEmpty',
  'isNotEmpty',
  'isPositive',
  'isNegative',
]);

/**
 * The message of the constraint a value actually broke, from class-validator's
 * `constraints`, which lists every failed one, the last declared first. A bound is named
 * only when nothing else failed; otherwise the first listed check that is not a bound, so a
 * DTO that declares its type check last (as ours do) names a wrong type before a format.
 */
export function brokenConstraint(constraints: Readonly<Record<string, string>> | undefined): string | undefined {
  if (!constraints) return undefined;
  const failed = Object.entries(constraints);
  return (failed.find(([name]) => !BOUNDS.has(name)) ?? failed[0])?.[1];
}

/**
 * `brokenConstraint` without the property name class-validator starts it with
 * (`must be an integer number`): the caller names the field its own way.
 */
export function brokenMessage(
  property: string,
  constraints: Readonly<Record<string, string>> | undefined,
): string | undefined {
  const message = brokenConstraint(constraints);
  if (message === undefined) return undefined;
  for (const prefix of [`property ${property} `, `${property} `]) {
    if (message.startsWith(prefix)) return message.slice(prefix.length);
  }
  return message;
}
