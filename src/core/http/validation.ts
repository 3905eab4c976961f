import { ValidationPipe, type ValidationError } from '@nestjs/common';
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
