import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HatsuModule } from '../../src/protocols/hatsu/hatsu.module.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { HatsuClient, putSession, putUser } from '../helpers/hatsu-client.js';
import { call, getJson, request } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';

/** `GET path` with a Host header of our choosing. */
function getWithHost(app: TestApp, path: string, host: string): Promise<unknown> {
  return getJson(app, path, { Host: host });
}

async function discover(app: TestApp, path = '/available'): Promise<unknown> {
  const answer = await call(app, 'GET', path);
  assert.equal(answer.status, 200, answer.text);
  assert.match(answer.contentType, /application\/json/);
  return answer.json;
}

describe('hatsu discovery', () => {
  const apps: TestApp[] = [];

  async function start(env: Record<string, string> = {}): Promise<TestApp> {
    const app = await startApp(env, { protocols: [HatsuModule] });
    apps.push(app);
    return app;
  }

  after(async () => {
    await Promise.all(apps.map((app) => app.close()));
  });

  describe('on the main port', () => {
    let app: TestApp;

    before(async () => {
      app = await start();
    });

    it('GET /available and GET /port answer {port, url} with the host the client used', async () => {
      const expected = { port: app.port, url: `ws://127.0.0.1:${app.port}/hatsu` };
      assert.deepEqual(await discover(app, '/available'), expected);
      assert.deepEqual(await discover(app, '/port'), expected);
      const res = await request(app.http).get('/available');
      assert.equal(res.headers['cache-control'], 'no-store');
    });

    it('takes the host name from the Host header, and ignores one that is not a host name', async () => {
      assert.deepEqual(await getWithHost(app, '/available', 'gateway.test:9999'), {
        port: app.port,
        url: `ws://gateway.test:${app.port}/hatsu`,
      });
      assert.deepEqual(await getWithHost(app, '/available', '[::1]'), {
        port: app.port,
        url: `ws://[::1]:${app.port}/hatsu`,
      });
      assert.deepEqual(await getWithHost(app, '/port', 'evil.test@x'), {
        port: app.port,
        url: `ws://localhost:${app.port}/hatsu`,
      });
    });
  });

  it('HATSU_PUBLIC_URL replaces the host (and the scheme: https gives wss)', async () => {
    const app = await start({ HATSU_PUBLIC_URL: 'https://gateway.example.com' });
    assert.deepEqual(await discover(app), { port: app.port, url: `wss://gateway.example.com:${app.port}/hatsu` });
  });

  it('a port and a path in HATSU_PUBLIC_URL are what clients are told (a proxy in front)', async () => {
    const app = await start({ HATSU_PUBLIC_URL: 'http://gw.example.com:8443/base/' });
    assert.deepEqual(await discover(app, '/port'), { port: 8443, url: 'ws://gw.example.com:8443/base/hatsu' });
  });

  it('HATSU_PORT is the advertised port, and any path there is hatsu (the documented client connects with none)', async () => {
    const hatsuPort = await freePort();
    const app = await start({ HATSU_PORT: String(hatsuPort) });
    assert.deepEqual(await discover(app), { port: hatsuPort, url: `ws://127.0.0.1:${hatsuPort}/hatsu` });
    await putUser(app, '42');
    await putSession(app, 'dedicated', '42');
    for (const url of [
      `ws://127.0.0.1:${hatsuPort}`,
      `ws://127.0.0.1:${hatsuPort}/anything/at/all`,
      `ws://127.0.0.1:${hatsuPort}/hatsu`,
      app.ws('/hatsu'),
    ]) {
      const client = await HatsuClient.connect(url);
      client.identify('dedicated');
      const { ready } = await client.ready(0);
      assert.equal(ready.s, 'dedicated', url);
      await client.close();
    }
  });
});
