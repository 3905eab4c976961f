import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadRequestException } from '@nestjs/common';
import { IsString } from 'class-validator';
import { createValidationPipe } from './validation.js';

class Named {
  @IsString()
  name!: string;
}

describe('the validation pipe', () => {
  const pipe = createValidationPipe();

  it('answers at once, with the value as it came, when there is no class to validate against', () => {
    const payload = { anything: [1, 2] };
    assert.equal(pipe.transform(payload, { type: 'body', metatype: Object }), payload);
    assert.equal(pipe.transform(payload, { type: 'body' }), payload);
    const socket = { send() {} };
    assert.equal(pipe.transform(socket, { type: 'custom', metatype: Function }), socket);
  });

  it('validates a DTO (asynchronously) and refuses unknown and bad fields, one message per field', async () => {
    const entity: unknown = await pipe.transform({ name: 'ada' }, { type: 'body', metatype: Named });
    assert.ok(entity instanceof Named);
    await assert.rejects(
      async () => pipe.transform({ name: 1, extra: true }, { type: 'body', metatype: Named }) as Promise<unknown>,
      (err: unknown) => {
        assert.ok(err instanceof BadRequestException);
        const { message } = err.getResponse() as { message: string[] };
        assert.deepEqual([...message].sort(), ['extra: should not exist', 'name: must be a string']);
        return true;
      },
    );
  });

  it('still converts a typed route parameter, as Nest does', () => {
    assert.equal(pipe.transform('42', { type: 'param', metatype: Number, data: 'id' }), 42);
  });
});
