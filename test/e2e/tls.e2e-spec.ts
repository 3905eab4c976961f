import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adminAuth, startApp, type Gateway, type TestApp } from '../helpers/app.js';
import { openFates } from '../helpers/fates-client.js';
import { heartbeat, openFelix, type FelixToken } from '../helpers/felix-client.js';
import { openHatsu, userDocument } from '../helpers/hatsu-client.js';
import { snowflake } from '../helpers/ids.js';
import { openJac } from '../helpers/jac-client.js';
import { freePort } from '../helpers/ports.js';
import { httpsCall, SecretVolume, servedSerial, TestCa, type HttpsAnswer } from '../helpers/tls-certs.js';
import { waitFor } from '../helpers/wait.js';
import { WsTestClient } from '../helpers/ws-client.js';

/** A gateway on `port` reached over TLS: `https://` and `wss://`. */
function secure(port: number): Gateway {
  return { http: `https://127.0.0.1:${port}`, ws: (path) => `wss://127.0.0.1:${port}${path}` };
}

describe('TLS served by the gateway on every listener', () => {
  let authority: TestCa;
  let volume: SecretVolume;
  let first: string;
  let app: TestApp;
  let gw: Gateway;
  let ports: { felix: number; hatsu: number; metrics: number };

  async function adminCall(method: string, path: string, body?: unknown, expected = 204): Promise<HttpsAnswer> {
    const answer = await httpsCall(gw.http, authority.ca, method, path, { body, headers: adminAuth });
    assert.equal(answer.status, expected, answer.text);
    return answer;
  }

  /** The serial each listener serves a new connection, in the order main, Felix, hatsu, metrics. */
  function servedEverywhere(): Promise<string[]> {
    return Promise.all(
      [app.port, ports.felix, ports.hatsu, ports.metrics].map((port) => servedSerial(port, authority.ca)),
    );
  }

  before(async () => {
    authority = TestCa.create();
    volume = new SecretVolume(join(authority.dir, 'secret'));
    const issued = authority.issue();
    first = issued.serial;
    volume.publish(issued.chain, issued.key);
    ports = { felix: await freePort(), hatsu: await freePort(), metrics: await freePort() };
    app = await startApp({
      TLS_CERT_FILE: volume.certFile,
      TLS_KEY_FILE: volume.keyFile,
      FELIX_PORT: String(ports.felix),
      HATSU_PORT: String(ports.hatsu),
      METRICS_PORT: String(ports.metrics),
    });
    gw = secure(app.port);
  });

  after(async () => {
    await app?.close();
    authority?.remove();
  });

  it('serves HTTPS: the health route answers a client that trusts the CA', async () => {
    const answer = await httpsCall(gw.http, authority.ca, 'GET', '/health/ready');
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.json, { status: 'ready', engine: 'memory' });
    assert.deepEqual(await servedEverywhere(), [first, first, first, first]);
    // The metrics port too, with the same certificate.
    const metrics = await httpsCall(`https://127.0.0.1:${ports.metrics}`, authority.ca, 'GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^# HELP /m);
  });

  it('refuses a client that does not trust the CA, over wss and https alike', async () => {
    for (const port of [app.port, ports.felix, ports.hatsu]) {
      await assert.rejects(WsTestClient.connect(`wss://127.0.0.1:${port}/websocket`), (err: NodeJS.ErrnoException) => {
        assert.match(err.code ?? '', /CERT|SIGNATURE|SELF_SIGNED/);
        return true;
      });
    }
    await assert.rejects(httpsCall(gw.http, '', 'GET', '/health/live'), (err: NodeJS.ErrnoException) =>
      /CERT|SIGNATURE|SELF_SIGNED/.test(err.code ?? ''),
    );
  });

  it('serves every protocol over wss, on the main port and on the dedicated ones', async () => {
    const options = { ca: authority.ca };
    // jac, anonymously: the connection event proves the session.
    const jac = await openJac(gw, { options });
    // Fates: identify with a bot token set over the HTTPS admin API.
    const bot = { id: snowflake(), token: `bot-token-${snowflake()}` };
    await adminCall('PUT', `/admin/fates/bots/${bot.id}/token`, { token: bot.token });
    const fates = await openFates(gw, bot, { options });
    // Felix on /felix and on FELIX_PORT (any path): a heartbeat is acknowledged on both.
    const felixToken = (await adminCall('POST', '/admin/felix/tokens', {}, 201)).json as FelixToken;
    const felix = await openFelix(gw, felixToken.token, [], options);
    const felixPort = await openFelix(secure(ports.felix), felixToken.token, [], options);
    assert.equal(typeof (await heartbeat(felixPort)).receivedAt, 'number');
    // hatsu on /hatsu and on HATSU_PORT.
    const userId = snowflake();
    const guildId = snowflake();
    const sessionId = `session-${userId}`;
    await adminCall('PUT', `/admin/hatsu/users/${userId}`, userDocument(`user-${userId}`));
    await adminCall('PUT', `/admin/hatsu/guilds/${guildId}`, {
      guild: { name: `guild-${guildId}`, description: null },
      channels: [{ id: `${guildId}1`, name: 'general', type: 2 }],
      members: [userId],
    });
    await adminCall('PUT', `/admin/hatsu/sessions/${sessionId}`, { user_id: userId });
    const hatsu = await openHatsu(gw, sessionId, { options });
    const hatsuPort = await openHatsu(secure(ports.hatsu), sessionId, { options });
    for (const client of [jac.ws, fates, felix, felixPort, hatsu, hatsuPort]) await client.close();
  });

  it('hands out wss:// from hatsu /available', async () => {
    const answer = await httpsCall(gw.http, authority.ca, 'GET', '/available');
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.json, { port: ports.hatsu, url: `wss://127.0.0.1:${ports.hatsu}/hatsu` });
  });

  it('picks up a certificate swapped into the files; open sockets keep working', async () => {
    const felixToken = (await adminCall('POST', '/admin/felix/tokens', {}, 201)).json as FelixToken;
    const before = await openFelix(secure(ports.felix), felixToken.token, [], { ca: authority.ca });
    const beforeMain = await openJac(gw, { options: { ca: authority.ca } });
    const served = (await servedEverywhere())[0];

    // A certificate from another CA that the client also trusts, as after a CA rotation.
    const other = TestCa.create();
    try {
      const next = other.issue();
      assert.notEqual(next.serial, served);
      volume.publish(next.chain, next.key);
      const bothCas = authority.ca + other.ca;
      const serials = await waitFor(
        async () => {
          const now = await Promise.all(
            [app.port, ports.felix, ports.hatsu, ports.metrics].map((port) => servedSerial(port, bothCas)),
          );
          return now.every((serial) => serial === next.serial) ? now : undefined;
        },
        { timeoutMs: 5000, what: 'every listener to serve the new certificate' },
      );
      assert.equal(serials.length, 4);
      // The sockets opened before the swap are still the old session and still answer.
      assert.equal(typeof (await heartbeat(before)).receivedAt, 'number');
      const pong = new Promise<void>((resolve) => beforeMain.ws.socket.once('pong', () => resolve()));
      beforeMain.ws.socket.ping();
      await pong;
    } finally {
      other.remove();
      await before.close();
      await beforeMain.ws.close();
    }
  });
});
