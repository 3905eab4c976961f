import 'reflect-metadata';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength, validateSync } from 'class-validator';
import { brokenConstraint } from './constraints.js';

class Sample {
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100)
  count?: unknown;

  @IsOptional()
  @IsString()
  @MinLength(4)
  @MaxLength(8)
  name?: unknown;

  @IsOptional()
  @Matches(/^[0-9]+$/, { message: 'code must be digits' })
  @IsString()
  code?: unknown;
}

function messageFor(value: Partial<Sample>): string | undefined {
  const [error] = validateSync(Object.assign(new Sample(), value));
  return brokenConstraint(error?.constraints);
}

describe('brokenConstraint', () => {
  it('names the type check when a value of the wrong type also fails every bound', () => {
    assert.equal(messageFor({ count: 'x' }), 'count must be an integer number');
    assert.equal(messageFor({ count: 2.5 }), 'count must be an integer number');
    assert.equal(messageFor({ name: 12 }), 'name must be a string');
  });

  it('names the bound that a value of the right type broke', () => {
    assert.equal(messageFor({ count: 0 }), 'count must not be less than 1');
    assert.equal(messageFor({ count: 101 }), 'count must not be greater than 100');
    assert.equal(messageFor({ name: 'ab' }), 'name must be longer than or equal to 4 characters');
    assert.equal(messageFor({ name: 'abcdefghij' }), 'name must be shorter than or equal to 8 characters');
  });

  it('between two checks that are not bounds, names the one declared last (our DTOs put the type check there)', () => {
    assert.equal(messageFor({ code: 7 }), 'code must be a string');
    assert.equal(messageFor({ code: 'x7' }), 'code must be digits');
  });

  it('has nothing to say without constraints', () => {
    assert.equal(brokenConstraint(undefined), undefined);
    assert.equal(brokenConstraint({}), undefined);
  });
});
