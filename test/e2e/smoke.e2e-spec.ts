import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.js';
import { WsTestClient } from '../helpers/ws-client.js';

describe('smoke', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp();
  });
  after(() => app.close());

  it('sends the connection event', async () => {
    const client = await WsTestClient.connect(app.ws('/websocket?channel_id=abc'));
    const event = await client.next<{ type: string; data: Record<string, string> }>();
    assert.equal(event.type, 'connection');
    assert.equal(event.data['channel_id'], 'abc');
    assert.equal(event.data['root_id'], 'n::000000000000000000000001');
    await client.close();
  });
});
