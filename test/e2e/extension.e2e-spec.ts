import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PROTOCOL_MODULES } from '../../src/app.module.js';
import { EchoModule } from '../fixtures/echo.module.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { WsTestClient } from '../helpers/ws-client.js';

describe('adding a protocol module (the README example)', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({}, { protocols: [...PROTOCOL_MODULES, EchoModule] });
  });
  after(() => app.close());

  it('serves the new protocol on its paths next to the built-in ones', async () => {
    const a = await WsTestClient.connect(app.ws('/echo'));
    const b = await WsTestClient.connect(app.ws('/api/echo/'));
    a.send({ op: 'echo', text: 'hi' });
    assert.deepEqual(await a.next(), { echo: 'hi' });
    a.send({ op: 'shout', text: 'all' });
    assert.deepEqual(await a.next(), { shout: 'all' });
    assert.deepEqual(await b.next(), { shout: 'all' });
    const jac = await WsTestClient.connect(app.ws('/websocket'));
    assert.equal((await jac.next<{ type: string }>()).type, 'connection');
    await Promise.all([a.close(), b.close(), jac.close()]);
  });

  it('drops frames its codec rejects and enforces its own frame limit', async () => {
    const client = await WsTestClient.connect(app.ws('/echo'));
    client.send('not json');
    client.send({ op: 'echo', text: 'still here' });
    assert.deepEqual(await client.next(), { echo: 'still here' });
    client.send({ op: 'echo', text: 'x'.repeat(5000) });
    assert.equal((await client.waitClose()).code, 1009);
  });
});
