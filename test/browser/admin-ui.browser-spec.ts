import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_TOKEN, startApp, type TestApp } from '../helpers/app.js';
import { browserSuite, launchChromium, openPage, screenshotOnFailure, type PageWatch } from '../helpers/browser.js';
import { createToken } from '../helpers/felix-client.js';
import { connectHatsu, putSession, putUser } from '../helpers/hatsu-client.js';
import { call } from '../helpers/http.js';
import { connectJac, issueToken } from '../helpers/jac-client.js';
import { RedisProcess, redisSuite, uniquePrefix } from '../helpers/redis.js';
import { WsTestClient } from '../helpers/ws-client.js';

/** Long enough for a stream tick (1 s) and a list fetch on a busy 2-core machine; failures say what they waited for. */
const WAIT_MS = 20_000;

const PHONE = { width: 390, height: 844 };

/** The little of the page's globals a test reads (the tests compile without the DOM library). */
interface PageGlobals {
  document: {
    documentElement: { scrollWidth: number };
    querySelector(selector: string): { scrollWidth: number; clientWidth: number } | null;
  };
  innerWidth: number;
}

async function signIn(page: Page, app: TestApp, token = ADMIN_TOKEN): Promise<void> {
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(`${app.http}/admin/ui`);
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');
}

async function signedIn(page: Page, app: TestApp): Promise<void> {
  await signIn(page, app);
  await page.waitForSelector('#stream-status.ok');
}

function clientRow(page: Page, clientId: string) {
  return page.locator(`tr[data-client="${clientId}"]`);
}

/** Nothing went wrong in the page: no script error, no CSP refusal, no request to another origin. */
function assertClean(watch: PageWatch): void {
  assert.deepEqual(watch.errors, [], 'console errors');
  assert.deepEqual(watch.foreign, [], 'requests to other origins');
}

describe('the admin page in Chromium', browserSuite(), () => {
  let app: TestApp;
  let browser: Browser;

  before(async () => {
    [app, browser] = await Promise.all([startApp(), launchChromium()]);
  });

  after(async () => {
    await browser?.close();
    await app?.close();
  });

  /** A fresh page for one test; a failure leaves its screenshot in test-results/. */
  async function withPage(
    name: string,
    body: (page: Page, watch: PageWatch) => Promise<void>,
    viewport?: typeof PHONE,
  ) {
    const { page, watch, close } = await openPage(browser, app.http, viewport);
    try {
      await screenshotOnFailure(page, name, () => body(page, watch));
    } finally {
      await close();
    }
  }

  it('signs in, and shows a jac client connect and disconnect live', () =>
    withPage('connect-disconnect', async (page, watch) => {
      await signedIn(page, app);
      assert.match((await page.textContent('#instance-id')) ?? '', /memory/);
      assert.equal(await page.evaluate("sessionStorage.getItem('gatehouse.adminToken')"), ADMIN_TOKEN);
      assert.ok(!page.url().includes(ADMIN_TOKEN), 'the token is never in the URL');

      const jac = await connectJac(app, { token: await issueToken(app) });
      const row = clientRow(page, jac.clientId);
      await row.waitFor();
      assert.match((await row.textContent()) ?? '', /jac/);
      await page.locator('[data-protocol="jac"]', { hasText: /^jac 1$/ }).waitFor();

      await jac.ws.close();
      await row.waitFor({ state: 'detached' });
      assertClean(watch);
    }));

  it('publishes a jac notify from its form to a real client, shows the curl line and the feed, and pauses the feed', () =>
    withPage('jac-notify', async (page, watch) => {
      await signedIn(page, app);
      const token = await issueToken(app);
      const jac = await connectJac(app, { token });
      await page.selectOption('#jac-notify-to', 'root_ids');
      await page.fill('#jac-notify-ids', token.rootId);
      await page.fill('#jac-notify-data', '{"from": "the admin page"}');
      await page.click('#jac-notify button[type=submit]');

      assert.deepEqual(await jac.ws.next(), { from: 'the admin page' });
      await page.waitForSelector('#jac-notify .status.ok');
      assert.match((await page.textContent('#jac-notify .status')) ?? '', /^202/);
      const curl = (await page.textContent('#jac-notify code.curl')) ?? '';
      assert.ok(curl.includes('"Authorization: Bearer $ADMIN_TOKEN"'), curl);
      assert.ok(curl.includes(`${app.http}/admin/jac/notify`), curl);
      assert.ok(!curl.includes(ADMIN_TOKEN), 'the real token is never shown');
      assert.ok(curl.includes(token.rootId), curl);

      const event = page.locator('#feed-list li.event[data-topic="jac"]', { hasText: 'the admin page' });
      await event.waitFor();
      assert.match((await event.textContent()) ?? '', new RegExp(`user ${token.rootId}`));

      // Paused, a new event is held back and counted; resumed, it shows.
      await page.click('#feed-pause');
      await page.fill('#jac-notify-data', '{"second": true}');
      await page.click('#jac-notify button[type=submit]');
      assert.deepEqual(await jac.ws.next(), { second: true });
      await page.locator('#feed-note', { hasText: /^1 new while paused$/ }).waitFor();
      const second = page.locator('#feed-list li.event', { hasText: '"second"' });
      assert.equal(await second.count(), 0);
      await page.click('#feed-pause');
      await second.waitFor();
      await jac.ws.close();
      assertClean(watch);
    }));

  it('disconnects a real client with its Disconnect button', () =>
    withPage('disconnect-button', async (page, watch) => {
      await signedIn(page, app);
      const jac = await connectJac(app, { channel: 'kick-me' });
      await page.fill('#filter-channel', 'kick-me');
      const row = clientRow(page, jac.clientId);
      await row.locator('button.danger').click();
      assert.equal((await jac.ws.waitClose(WAIT_MS)).code, 1000);
      await row.waitFor({ state: 'detached' });
      await page.waitForSelector('#connections .result .status.ok');
      assert.match((await page.textContent('#connections .result code.curl')) ?? '', /-X DELETE/);
      assertClean(watch);
    }));

  it('states a 401 for a wrong token and asks again', () =>
    withPage('wrong-token', async (page, watch) => {
      await signIn(page, app, 'not-the-admin-token');
      const problem = page.locator('#login-error');
      await problem.waitFor();
      assert.match((await problem.textContent()) ?? '', /^401 Unauthorized/);
      assert.equal(await page.evaluate("sessionStorage.getItem('gatehouse.adminToken')"), null);
      await page.waitForSelector('#token');
      assertClean(watch);
    }));

  it('shows the API explorer at /admin/docs: every route listed, the admin token authorized, nothing failed', () =>
    withPage('api-docs', async (page, watch) => {
      page.setDefaultTimeout(WAIT_MS);
      const failed: string[] = [];
      page.on('requestfailed', (request) => failed.push(request.url()));
      page.on('response', (response) => {
        if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
      });
      await page.goto(`${app.http}/admin/docs`);
      await page.fill('#token', ADMIN_TOKEN);
      await page.click('#sign-in button[type=submit]');
      await page.waitForSelector('.opblock-summary-path[data-path="/admin/hatsu/dispatch"]');
      const paths = await page
        .locator('.opblock-summary-path')
        .evaluateAll((els) => els.map((el) => (el as unknown as { dataset: { path: string } }).dataset.path));
      for (const path of ['/admin/jac/notify', '/admin/connections/{clientId}', '/admin/felix/status', '/available']) {
        assert.ok(paths.includes(path), `${path} listed`);
      }
      // The Authorize button shows the admin scheme as already filled in.
      await page.waitForSelector('.auth-wrapper .authorize.locked');
      assert.deepEqual(failed, [], 'failed requests');
      assertClean(watch);
    }));

  it('is usable on a phone-sized screen', () =>
    withPage(
      'phone',
      async (page, watch) => {
        await signedIn(page, app);
        const jac = await connectJac(app, { channel: 'on-the-phone' });
        const row = clientRow(page, jac.clientId);
        await row.waitFor();
        const width = await page.evaluate(() => {
          const { document, innerWidth } = globalThis as unknown as PageGlobals;
          const table = document.querySelector('#connections .scroll');
          return {
            page: document.documentElement.scrollWidth,
            viewport: innerWidth,
            table: table ? table.scrollWidth - table.clientWidth : -1,
          };
        });
        assert.ok(width.page <= width.viewport, `no sideways scrolling (${width.page} > ${width.viewport})`);
        assert.equal(width.table, 0, 'the connection list needs no sideways scrolling either');
        for (const selector of ['#jac-notify-data', '#jac-notify button[type=submit]', '#feed-pause', '#filter-user']) {
          const box = await page.locator(selector).boundingBox();
          assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `${selector} fits the screen`);
        }
        const kick = row.locator('button.danger');
        await kick.scrollIntoViewIfNeeded();
        const box = await kick.boundingBox();
        assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, 'the Disconnect button is on screen');
        assert.ok(box.height >= 40, 'the Disconnect button is big enough to tap');
        await kick.click();
        assert.equal((await jac.ws.waitClose(WAIT_MS)).code, 1000);
        assertClean(watch);
      },
      PHONE,
    ));

  it('shows live data (written to docs/admin-ui.png with UPDATE_SCREENSHOT=1)', () =>
    withPage('screenshot', async (page, watch) => {
      const clients: { close(): Promise<void> }[] = [];
      const token = await issueToken(app);
      clients.push((await connectJac(app, { token, channel: 'lobby' })).ws);
      clients.push((await connectJac(app, { channel: 'lobby' })).ws);
      clients.push((await connectJac(app)).ws);
      const felix = await createToken(app, { user: '80351110224678912' });
      clients.push(await WsTestClient.connect(app.ws('/felix'), { headers: { Authorization: felix.token } }));
      await putUser(app, '80351110224678912');
      await putSession(app, 'screenshot-session', '80351110224678912');
      clients.push(await connectHatsu(app, 'screenshot-session'));

      await page.setViewportSize({ width: 1280, height: 1000 });
      await signedIn(page, app);
      await page.locator('#connections-summary', { hasText: / of 5 connections$/ }).waitFor();
      await page.fill('#jac-notify-ids', 'lobby');
      await page.selectOption('#jac-notify-to', 'channel_ids');
      await page.fill('#jac-notify-data', '{"type": "chat", "text": "hello, lobby"}');
      await page.click('#jac-notify button[type=submit]');
      await page.waitForSelector('#jac-notify .status.ok');
      const hatsu = await call(app, 'POST', '/admin/hatsu/dispatch', {
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
        body: { t: 'MESSAGE_CREATE', d: { content: 'deploy finished' }, to: { all: true } },
      });
      assert.equal(hatsu.status, 202, hatsu.text);
      await page.locator('#feed-list li.event[data-topic="hatsu"]').waitFor();
      await page.locator('#feed-list li.event[data-topic="jac"]').waitFor();
      if (process.env.UPDATE_SCREENSHOT === '1') {
        await page.screenshot({ path: 'docs/admin-ui.png', fullPage: true });
        console.log('wrote docs/admin-ui.png');
      }
      for (const client of clients) await client.close();
      assertClean(watch);
    }));
});

describe('the admin page with Redis away', { skip: browserSuite().skip || (await redisSuite()).skip }, () => {
  let redis: RedisProcess;
  let app: TestApp;
  let browser: Browser;

  before(async () => {
    redis = await RedisProcess.start();
    [app, browser] = await Promise.all([
      startApp({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniquePrefix() }),
      launchChromium(),
    ]);
  });

  after(async () => {
    await browser?.close();
    await redis?.start();
    await app?.close();
    await redis?.stop();
  });

  it('says Redis is down, and states the 503 a write then gets', async () => {
    const { page, watch, close } = await openPage(browser, app.http);
    try {
      await screenshotOnFailure(page, 'redis-down', async () => {
        await signedIn(page, app);
        await page.waitForSelector('#instances td.redis .state.ok');
        assert.equal(await page.isHidden('#banner'), true);

        await redis.stop();
        await page.waitForSelector('#banner:not([hidden])');
        assert.match((await page.textContent('#banner')) ?? '', /Redis is unavailable/);
        await page.waitForSelector('#instances td.redis .state.down');

        await page.click('details[data-form="jac-token"] summary');
        await page.click('#jac-token button[type=submit]');
        await page.waitForSelector('#jac-token .status.error');
        assert.match(
          (await page.textContent('#jac-token .status.error')) ?? '',
          /^503 Service Unavailable: Redis is unavailable/,
        );

        await redis.start();
        await page.waitForSelector('#banner', { state: 'hidden' });
        await page.waitForSelector('#instances td.redis .state.ok');
        assertClean(watch);
      });
    } finally {
      await close();
    }
  });
});
