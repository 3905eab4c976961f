import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'ioredis';
import { CommandGate, RedisSaturatedError } from './command-gate.js';

/** Holds what it is sent, as a connection to a Redis that does not answer would. */
class HeldSender {
  readonly sent: Command[] = [];
  sendCommand(command: Command): unknown {
    this.sent.push(command);
    return command.promise;
  }
}

describe('CommandGate', () => {
  it('refuses a command while the count or the bytes waiting are at their limit, and admits again once answered', async () => {
    const sender = new HeldSender();
    const gate = new CommandGate({ commands: 2, bytes: 100 }, () => assert.fail('no stall'));
    gate.install(sender);
    const first = new Command('set', ['a', 'x'.repeat(10)]);
    const second = new Command('set', ['b', 'y']);
    sender.sendCommand(first);
    sender.sendCommand(second);
    assert.deepEqual([gate.commands, gate.bytes], [2, 13]);
    const third = new Command('get', ['c']);
    sender.sendCommand(third);
    await assert.rejects(third.promise, RedisSaturatedError);
    assert.equal(gate.refused, 1);
    assert.equal(sender.sent.length, 2, 'a refused command is not written');

    first.resolve('OK');
    await first.promise;
    const big = new Command('set', ['d', 'z'.repeat(99)]);
    sender.sendCommand(big);
    await assert.rejects(big.promise, RedisSaturatedError, 'over the byte bound');
    const small = new Command('get', ['e']);
    sender.sendCommand(small);
    assert.equal(sender.sent.at(-1), small);
    assert.deepEqual([gate.commands, gate.bytes, gate.refused], [2, 3, 2]);
  });

  it('counts a batched command but never refuses it, and counts a resent command once', async () => {
    const sender = new HeldSender();
    const gate = new CommandGate({ commands: 1, bytes: 1000 }, () => undefined);
    gate.install(sender);
    const held = new Command('get', ['a']);
    sender.sendCommand(held);
    const batched = new Command('set', ['b', 'v']);
    (sender.sendCommand as (c: Command, stream: unknown) => unknown)(batched, {});
    assert.equal(gate.commands, 2);
    sender.sendCommand(held);
    assert.equal(gate.commands, 2, 'a redirected command is counted once');
    held.reject(new Error('connection closed'));
    batched.resolve('OK');
    await Promise.allSettled([held.promise, batched.promise]);
    assert.deepEqual([gate.commands, gate.bytes], [0, 0]);
  });

  it('reports a stall when a command times out', async () => {
    const sender = new HeldSender();
    let stalls = 0;
    const gate = new CommandGate({ commands: 10, bytes: 1000 }, () => void stalls++);
    gate.install(sender);
    const command = new Command('get', ['a']);
    sender.sendCommand(command);
    command.reject(new Error('Command timed out'));
    await assert.rejects(command.promise);
    await Promise.resolve();
    assert.equal(stalls, 1);
    assert.equal(gate.commands, 0);
  });
});
