import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { badRequest } from './http-errors.js';

export interface FieldProblem {
  /** Dotted path of the field (`to.guild_id`). */
  field: string;
  message: string;
}

/** One problem per bad field: its first failed constraint. */
export function fieldProblems(errors: ValidationError[], parent = ''): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const error of errors) {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const first = Object.values(error.constraints ?? {})[0];
    if (first !== undefined) problems.push({ field, message: withoutName(first, error.property) });
    else if (error.children?.length) problems.push(...fieldProblems(error.children, field));
  }
  return problems;
}

/** class-validator starts messages with the property's name; the path already says it. */
function withoutName(message: string, property: string): string {
  for (const prefix of [`property ${property} `, `${property} `]) {
    if (message.startsWith(prefix)) return message.slice(prefix.length);
  }
  return message;
}

/** One message per bad field, named by its path (`to.guild_id: must be a snowflake`). */
export function fieldMessages(errors: ValidationError[]): string[] {
  return fieldProblems(errors).map((p) => `${p.field}: ${p.message}`);
}

/** The admin API's body validation: unknown fields are refused, bad fields listed one per line. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => badRequest(fieldMessages(errors)),
  });
}
