import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.js';
import { admin } from '../helpers/http.js';

/**
 * A 400 names the constraint the value broke: a value of the wrong type fails every bound
 * of its field too, and is reported as the wrong type, not as out of range.
 */
describe('admin API 400 messages', () => {
  let app: TestApp;

  before(async () => {
    app = await startApp();
  });

  after(async () => {
    await app.close();
  });

  async function expect400(method: string, path: string, body: unknown, message: string[]): Promise<void> {
    const answer = await admin(app, method, path, body);
    assert.equal(answer.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${answer.text}`);
    assert.deepEqual((answer.json as { message: string[] }).message, message, JSON.stringify(body));
  }

  it('jac token lifetimes: the type, then each bound', async () => {
    const cases: [unknown, string][] = [
      ['x', 'expires_in_s: must be an integer number'],
      [1.5, 'expires_in_s: must be an integer number'],
      [true, 'expires_in_s: must be an integer number'],
      [0, 'expires_in_s: must not be less than 1'],
      [31_536_001, 'expires_in_s: must not be greater than 31536000'],
    ];
    for (const [value, message] of cases)
      await expect400('POST', '/admin/jac/tokens', { expires_in_s: value }, [message]);
  });

  it('connection pages: the type, then each bound', async () => {
    for (const [limit, message] of [
      ['abc', 'limit: must be an integer number'],
      ['0', 'limit: must not be less than 1'],
      ['5000', 'limit: must not be greater than 1000'],
    ] as const) {
      await expect400('GET', `/admin/connections?limit=${limit}`, undefined, [message]);
    }
  });

  it('felix status figures and fates tokens', async () => {
    await expect400('PUT', '/admin/felix/status', { shards: [], guildsCount: 'x' }, [
      'guildsCount: must be an integer number',
    ]);
    await expect400('PUT', '/admin/felix/status', { shards: [], guildsCount: -1 }, [
      'guildsCount: must not be less than 0',
    ]);
    await expect400('PUT', '/admin/felix/status', { shards: [], guildsCount: 1, memoryUsage: 'lots' }, [
      'memoryUsage: must be a number conforming to the specified constraints',
    ]);
    await expect400('PUT', '/admin/fates/bots/1/token', { token: 5 }, ['token: must be a string']);
    await expect400('PUT', '/admin/fates/bots/1/token', { token: '' }, [
      'token: must be longer than or equal to 1 characters',
    ]);
  });
});
