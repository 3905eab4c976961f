import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.js';
import { issue } from '../helpers/jac-client.js';
import { waitFor } from '../helpers/wait.js';
import { WsTestClient } from '../helpers/ws-client.js';

describe('jac: a token that expires while connected', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp();
  });
  after(() => app.close());

  it('stops authorising publishes and auth walkers, while the socket keeps its root', async () => {
    const { token, root_id: rootId } = await issue(app, { expires_in_s: 1 });
    const client = await WsTestClient.connect(app.ws('/websocket?channel_id=expiry'), {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal((await client.next<{ data: { root_id: string } }>()).data.root_id, rootId);
    client.send({ type: 'channel', channel_ids: ['expiry'], data: { n: 1 } });
    assert.deepEqual(await client.next(), { n: 1 });
    // Past `exp` (whole seconds), the same publish is refused.
    const refusal = await waitFor(
      async () => {
        client.send({ type: 'channel', channel_ids: ['expiry'], data: { n: 2 } });
        const reply = await client.next<{ error?: { loc: string[] }[] }>();
        return reply.error ? reply : undefined;
      },
      { timeoutMs: 4000, intervalMs: 100, what: 'the token to expire' },
    );
    assert.deepEqual(refusal.error?.[0]?.loc, ['channel']);
    client.send({ type: 'walker', walker: 'send_chat_to_group', context: { channel_id: 'expiry' } });
    assert.deepEqual(await client.next(), {
      type: 'walker',
      error: 'Event send_chat_to_group requires to be authenticated!',
    });
    client.send({ type: 'connection' });
    assert.equal((await client.next<{ data: { root_id: string } }>()).data.root_id, rootId);
    await client.close();
  });
});
