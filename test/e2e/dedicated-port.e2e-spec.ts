import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { startApp } from '../helpers/app.js';
import { request } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

describe('a dedicated protocol port that cannot be bound', () => {
  it('keeps the instance out of rotation: /health/ready answers 503 naming the port', async () => {
    const squatter = createServer().listen(0, '127.0.0.1');
    await once(squatter, 'listening');
    const { port } = squatter.address() as { port: number };
    const app = await startApp({ FELIX_PORT: String(port) });
    try {
      const answer = await waitFor(
        async () => {
          const res = await request(app.http).get('/health/ready');
          return res.status === 503 ? res : undefined;
        },
        { what: 'the bind failure to be reported' },
      );
      assert.match((answer.body as { message: string }).message, new RegExp(`dedicated port ${port} for felix failed`));
      await request(app.http).get('/health/live').expect(200);
    } finally {
      await app.close();
      squatter.close();
    }
  });
});
