import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HatsuModule } from '../../src/protocols/hatsu/hatsu.module.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { connectHatsu, putGuild, putSession, putUser } from '../helpers/hatsu-client.js';
import { admin, call, type HttpError } from '../helpers/http.js';

describe('hatsu admin API', () => {
  let app: TestApp;

  before(async () => {
    app = await startApp({}, { protocols: [HatsuModule] });
    await putUser(app, '1');
    await putGuild(app, '10', ['1']);
    await putSession(app, 'admin-session', '1');
  });

  after(async () => {
    await app.close();
  });

  async function expect400(method: string, path: string, body: unknown, messages: string[]): Promise<void> {
    const answer = await admin(app, method, path, body);
    assert.equal(answer.status, 400, answer.text);
    const error = answer.json as HttpError;
    assert.equal(error.statusCode, 400);
    assert.deepEqual([...(error.message as string[])].sort(), [...messages].sort());
  }

  describe('401 without the admin token, and nothing changes', () => {
    const routes: [string, string, unknown][] = [
      ['PUT', '/admin/hatsu/users/2', { username: 'x' }],
      ['PUT', '/admin/hatsu/guilds/20', { guild: {}, channels: [], members: [] }],
      ['PUT', '/admin/hatsu/sessions/new-session', { user_id: '1' }],
      ['DELETE', '/admin/hatsu/sessions/admin-session', undefined],
      ['POST', '/admin/hatsu/dispatch', { t: 'X', to: { all: true } }],
    ];
    for (const [method, path, body] of routes) {
      it(`${method} ${path}`, async () => {
        const attempts: Record<string, string>[] = [{}, { Authorization: 'Bearer wrong-token-0123456789' }];
        for (const headers of attempts) {
          const answer = await call(app, method, path, { body, headers });
          assert.equal(answer.status, 401, answer.text);
          assert.equal((answer.json as HttpError).statusCode, 401);
        }
      });
    }

    it('left the data as it was', async () => {
      // User 2 and guild 20 do not exist, new-session is unknown, admin-session still works.
      assert.equal((await admin(app, 'PUT', '/admin/hatsu/sessions/s2', { user_id: '2' })).status, 404);
      const answer = await admin(app, 'POST', '/admin/hatsu/dispatch', { t: 'X', to: { guild_id: '20' } });
      assert.equal(answer.status, 404);
      const client = await connectHatsu(app, 'admin-session', { guilds: 1 });
      await client.close();
    });
  });

  describe('400 with one message per bad field', () => {
    it('path ids that are not snowflakes', async () => {
      await expect400('PUT', '/admin/hatsu/users/abc', {}, ['id: must be a snowflake (1 to 20 digits)']);
      await expect400('PUT', '/admin/hatsu/guilds/123456789012345678901', { guild: {}, channels: [], members: [] }, [
        'id: must be a snowflake (1 to 20 digits)',
      ]);
    });

    it('session ids with spaces or too long', async () => {
      const message = ['sessionId: must be 1 to 512 printable ASCII characters without spaces'];
      await expect400('PUT', '/admin/hatsu/sessions/has%20space', { user_id: '1' }, message);
      await expect400('DELETE', `/admin/hatsu/sessions/${'x'.repeat(513)}`, undefined, message);
    });

    it('a user body with wrong field types, or session_ids', async () => {
      await expect400(
        'PUT',
        '/admin/hatsu/users/3',
        { username: 5, flags: 1.5, verified: 'yes', avatar_url: 3, session_ids: ['a'] },
        [
          'username: must be a string',
          'flags: must be an integer',
          'verified: must be a boolean',
          'avatar_url: must be a string or null',
          'session_ids: not part of the user object; use PUT /admin/hatsu/sessions/:sessionId',
        ],
      );
      await expect400('PUT', '/admin/hatsu/users/3', [1, 2], ['body: must be a JSON object']);
      assert.equal((await admin(app, 'PUT', '/admin/hatsu/sessions/s3', { user_id: '3' })).status, 404);
    });

    it('a guild body', async () => {
      await expect400('PUT', '/admin/hatsu/guilds/30', { guild: 'x', channels: [1], members: ['a', '2'] }, [
        'guild: must be an object',
        'channels: each value in channels must be an object',
        'members: each value must be a snowflake (1 to 20 digits)',
      ]);
      await expect400('PUT', '/admin/hatsu/guilds/30', { guild: {}, channels: [], members: [], owner: '1' }, [
        'owner: should not exist',
      ]);
    });

    it('a session body', async () => {
      await expect400('PUT', '/admin/hatsu/sessions/s4', {}, ['user_id: must be a snowflake (1 to 20 digits)']);
    });

    it('a dispatch body', async () => {
      const path = '/admin/hatsu/dispatch';
      await expect400('POST', path, { t: 'bad name!', to: { all: true } }, [
        't: must be 1 to 64 letters, digits or underscores',
      ]);
      await expect400('POST', path, { t: 'X' }, ['to: must be an object']);
      await expect400('POST', path, { t: 'X', to: {} }, ['to: must name exactly one of guild_id, user_id or all']);
      await expect400('POST', path, { t: 'X', to: { all: true, user_id: '1' } }, [
        'to: must name exactly one of guild_id, user_id or all',
      ]);
      await expect400('POST', path, { t: 'X', to: { all: false } }, ['to.all: must be equal to true']);
      await expect400('POST', path, { t: 'X', to: { guild_id: 'g' } }, [
        'to.guild_id: must be a snowflake (1 to 20 digits)',
      ]);
      await expect400('POST', path, { t: 'NOTIFICATION', d: 1, to: { all: true } }, [
        'type: required when t is NOTIFICATION',
        'excerpt: required when t is NOTIFICATION',
        'd: not allowed when t is NOTIFICATION (use type and excerpt)',
      ]);
      await expect400('POST', path, { t: 'GUILD_UPDATE', type: 'X', excerpt: {}, id: '1', to: { all: true } }, [
        'type: only allowed when t is NOTIFICATION',
        'excerpt: only allowed when t is NOTIFICATION',
        'id: only allowed when t is PRESENCE_UPDATE',
      ]);
      await expect400('POST', path, { t: 'PRESENCE_UPDATE', d: {}, to: { all: true } }, [
        'id: required when t is PRESENCE_UPDATE',
      ]);
      await expect400('POST', path, { t: 'READY', to: { all: true } }, [
        't: HELLO, READY and ACK are sent by the gateway itself',
      ]);
    });
  });

  describe('404 for unknown ids', () => {
    it('a session for an unknown user', async () => {
      const answer = await admin(app, 'PUT', '/admin/hatsu/sessions/s5', { user_id: '999' });
      assert.equal(answer.status, 404, answer.text);
      assert.equal((answer.json as HttpError).message, 'user_id: no such user');
    });

    it('deleting an unknown session', async () => {
      assert.equal((await admin(app, 'DELETE', '/admin/hatsu/sessions/never-was')).status, 404);
    });

    it('dispatching to an unknown guild or user', async () => {
      const guild = await admin(app, 'POST', '/admin/hatsu/dispatch', { t: 'X', to: { guild_id: '404' } });
      assert.equal(guild.status, 404);
      const user = await admin(app, 'POST', '/admin/hatsu/dispatch', { t: 'X', to: { user_id: '404' } });
      assert.equal(user.status, 404);
    });
  });

  it('documents its routes in /admin/openapi.json', async () => {
    const answer = await admin(app, 'GET', '/admin/openapi.json');
    assert.equal(answer.status, 200);
    const paths = Object.keys((answer.json as { paths: Record<string, unknown> }).paths);
    for (const path of [
      '/available',
      '/port',
      '/admin/hatsu/users/{id}',
      '/admin/hatsu/guilds/{id}',
      '/admin/hatsu/sessions/{sessionId}',
      '/admin/hatsu/dispatch',
    ]) {
      assert.ok(paths.includes(path), path);
    }
  });
});
