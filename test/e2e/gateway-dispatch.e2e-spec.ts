import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ProbeModule } from '../fixtures/probe.module.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { WsTestClient } from '../helpers/ws-client.js';

// Client frames skip Nest's promise and observable plumbing; everything a gateway declares
// around its handlers must still behave as Nest documents it.
describe("a gateway's handlers keep Nest's guards, pipes, filters and interceptors", () => {
  let app: TestApp;
  let client: WsTestClient;

  before(async () => {
    app = await startApp({}, { protocols: [ProbeModule] });
    client = await WsTestClient.connect(app.ws('/probe'));
  });
  after(async () => {
    await client?.close();
    await app?.close();
  });

  const ask = (op: string, data?: unknown): Promise<unknown> => {
    client.send({ op, data });
    return client.next();
  };

  it('sends what a handler returns: a value, a promise, each value of an observable, nothing for null', async () => {
    assert.deepEqual(await ask('value', 1), { value: 1 });
    assert.deepEqual(await ask('promise', 2), { promised: 2 });
    client.send({ op: 'stream', data: 3 });
    assert.deepEqual(await client.next(), { n: 3 });
    assert.deepEqual(await client.next(), { n: 4 });
    client.send({ op: 'nothing' });
    // Nothing came for `nothing`: the next message is the answer to what followed it.
    assert.deepEqual(await ask('value', 'after'), { value: 'after' });
  });

  it('answers frames in the order they came', async () => {
    for (let i = 0; i < 50; i++) client.send({ op: 'value', data: i });
    for (let i = 0; i < 50; i++) assert.deepEqual(await client.next(), { value: i });
  });

  it('hands what a handler throws, at once or later, to the exception filter', async () => {
    assert.deepEqual(await ask('throw'), { error: 'thrown at once', kind: 'WsException', pattern: 'throw' });
    assert.deepEqual(await ask('reject'), { error: 'rejected later', kind: 'Error', pattern: 'reject' });
  });

  it('runs guards that answer a boolean, a promise or an observable; a refusal is Forbidden resource', async () => {
    const forbidden = (pattern: string) => ({ error: 'Forbidden resource', kind: 'WsException', pattern });
    for (const [op, kind] of [
      ['sync-guard', 'sync'],
      ['promise-guard', 'promise'],
      ['observable-guard', 'observable'],
    ] as const) {
      assert.deepEqual(await ask(op, { allow: true }), { passed: kind }, op);
      assert.deepEqual(await ask(op, { allow: false }), forbidden(op), op);
    }
  });

  it("runs the gateway's own guard, injected with its dependencies, before every handler", async () => {
    const before = (await ask('guarded')) as { guarded: number };
    await ask('value', 'x');
    await ask('sync-guard', { allow: false });
    assert.deepEqual(await ask('guarded'), { guarded: before.guarded + 3 });
  });

  it('applies parameter pipes in order, synchronous and asynchronous', async () => {
    assert.deepEqual(await ask('piped', 'abc'), { piped: 'ABC' });
    assert.deepEqual(await ask('piped-later', 'abc'), { piped: 'ABC!' });
  });

  it('validates a DTO payload with the global validation pipe', async () => {
    assert.deepEqual(await ask('validated', { name: 'ada' }), { name: 'ada', isDto: true });
    const refused = (await ask('validated', { name: 'far too long a name', extra: 1 })) as {
      kind: string;
      detail: { statusCode: number; message: string[] };
    };
    assert.equal(refused.kind, 'BadRequestException');
    assert.equal(refused.detail.statusCode, 400);
    assert.deepEqual(
      [...refused.detail.message].sort(),
      ['extra: should not exist', 'name: must be shorter than or equal to 10 characters'].sort(),
    );
  });

  it('resolves custom parameter decorators, synchronous and asynchronous, and the socket', async () => {
    assert.deepEqual(await ask('sender', { from: 'ada' }), {
      from: 'ada',
      later: 'sender from ada',
      socket: 'function',
    });
  });

  it("leaves a handler with an interceptor to Nest's own pipeline", async () => {
    assert.deepEqual(await ask('intercepted', { a: 1 }), { wrapped: { a: 1 } });
  });
});
