import { ValidationPipe, type ArgumentMetadata, type PipeTransform, type ValidationError } from '@nestjs/common';
import { isJsonObject } from '../json.js';
import { brokenMessage } from '../validation/constraints.js';
import { badRequest } from './http-errors.js';

export interface FieldProblem {
  /** Dotted path of the field (`to.guild_id`). */
  field: string;
  message: string;
}

/** One problem per bad field: the constraint its value broke (see `brokenConstraint`). */
export function fieldProblems(errors: ValidationError[], parent = ''): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const error of errors) {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const message = brokenMessage(error.property, error.constraints);
    if (message !== undefined) problems.push({ field, message });
    else if (error.children?.length) problems.push(...fieldProblems(error.children, field));
  }
  return problems;
}

/** One message per bad field, named by its path (`to.guild_id: must be a snowflake`). */
export function fieldMessages(errors: ValidationError[]): string[] {
  return fieldProblems(errors).map((p) => `${p.field}: ${p.message}`);
}

const FREE_FORM_FIELDS = Symbol('gatehouse:free-form-fields');

/**
 * A DTO field whose value is any JSON that goes on as given (a notify's data, a dispatch's
 * `d`): the handler gets exactly what the request parsed to. Its other decorators still
 * validate it, on a copy. Nest's pipe deletes `__proto__`, `prototype` and `constructor` keys
 * from the body in place, and class-transformer skips keys that name Object.prototype
 * members (`toString`, `valueOf`...) or turns `__proto__` into a prototype; for data that is
 * only stored and relayed as JSON those are ordinary keys, as they are on the sockets.
 */
export function FreeForm(): PropertyDecorator {
  return (target, key) => {
    const owner = target.constructor;
    Reflect.defineMetadata(FREE_FORM_FIELDS, [...freeFormFields(owner), String(key)], owner);
  };
}

function freeFormFields(metatype: unknown): readonly string[] {
  return typeof metatype === 'function'
    ? ((Reflect.getMetadata(FREE_FORM_FIELDS, metatype) as string[] | undefined) ?? [])
    : [];
}

/** `ValidationPipe`, with `@FreeForm()` fields validated on a copy and handed on as parsed. */
class GatehouseValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (!isJsonObject(value)) return super.transform(value, metadata);
    const fields = freeFormFields(metadata.metatype).filter((field) => Object.hasOwn(value, field));
    if (fields.length === 0) return super.transform(value, metadata);
    // Spread and structuredClone both define keys as own data properties, `__proto__` included.
    const copy: Record<string, unknown> = { ...value };
    for (const field of fields) copy[field] = structuredClone(value[field]);
    const entity = (await super.transform(copy, metadata)) as Record<string, unknown>;
    for (const field of fields) entity[field] = value[field];
    return entity;
  }

  /**
   * What `transform` resolves to when there is no class to validate against (a WebSocket
   * frame's payload, a parameter typed as a plain object or an interface), or `NOT_NOW`
   * when it has one to check.
   */
  atOnce(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.metatype && this.toValidate(metadata)) return NOT_NOW;
    return this.isTransformEnabled ? this.transformPrimitive(value, metadata) : value;
  }
}

const NOT_NOW = Symbol('validate');

/**
 * The validation pipe, answering at once where there is nothing to validate. Nest's
 * `ValidationPipe` returns a promise even then, and as a global pipe it runs on every
 * WebSocket frame's parameters too: a value returned as it is lets the frame be handled in
 * the same turn of the event loop (see `GatewayDispatch`).
 */
class ValidationAtOnce implements PipeTransform {
  constructor(private readonly pipe: GatehouseValidationPipe) {}

  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    const answer = this.pipe.atOnce(value, metadata);
    return answer === NOT_NOW ? this.pipe.transform(value, metadata) : answer;
  }
}

/** The admin API's body validation: unknown fields are refused, bad fields listed one per line. */
export function createValidationPipe(): PipeTransform {
  const pipe = new GatehouseValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => badRequest(fieldMessages(errors)),
  });
  return new ValidationAtOnce(pipe);
}
