import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { badRequest, jsonObjectBody, NOT_A_JSON_OBJECT, notFound } from './http-errors.js';

describe('http errors', () => {
  it('builds the admin API error bodies', () => {
    const bad = badRequest(['id: must be a snowflake (1 to 20 digits)']);
    assert.equal(bad.getStatus(), 400);
    assert.deepEqual(bad.getResponse(), {
      statusCode: 400,
      error: 'Bad Request',
      message: ['id: must be a snowflake (1 to 20 digits)'],
    });
    const missing = notFound('no such token');
    assert.equal(missing.getStatus(), 404);
    assert.deepEqual(missing.getResponse(), { statusCode: 404, error: 'Not Found', message: 'no such token' });
  });

  it('takes any JSON object as a body and refuses everything else with 400', () => {
    const body = { any: ['thing'] };
    assert.equal(jsonObjectBody(body), body);
    for (const value of [null, [], 'text', 3, undefined]) {
      assert.throws(
        () => jsonObjectBody(value),
        (err: unknown) => {
          assert.deepEqual((err as ReturnType<typeof badRequest>).getResponse(), {
            statusCode: 400,
            error: 'Bad Request',
            message: [NOT_A_JSON_OBJECT],
          });
          return true;
        },
      );
    }
    assert.equal(NOT_A_JSON_OBJECT, 'body: must be a JSON object');
  });
});
