import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_JSON_DEPTH } from '../../core/ws/json-depth.js';
import {
  ackFrame,
  eventFrame,
  guildInitFrame,
  HATSU_FRAME,
  hatsuCodec,
  HELLO_INFO,
  helloFrame,
  notificationFrame,
  parseClientEvent,
  parseHatsuFrame,
  parseIdentify,
  parsePresence,
  presenceUpdateFrame,
  readyFrame,
} from './hatsu.codec.js';

const json = (buffer: Buffer): unknown => JSON.parse(buffer.toString('utf8'));

describe('hatsu codec', () => {
  describe('frames', () => {
    it('parses JSON text, and binary JSON as the original did', () => {
      assert.deepEqual(parseHatsuFrame(Buffer.from('{"a":1}')), { kind: 'json', value: { a: 1 } });
      assert.deepEqual(parseHatsuFrame(Buffer.from('[1]')), { kind: 'json', value: [1] });
      assert.deepEqual(parseHatsuFrame(Buffer.from('{nope')), { kind: 'invalid' });
      assert.deepEqual(parseHatsuFrame(Buffer.from([0xff, 0xfe])), { kind: 'invalid' });
      assert.deepEqual(hatsuCodec.decode(Buffer.from('"x"'), true), {
        event: HATSU_FRAME,
        data: { kind: 'json', value: 'x' },
      });
    });

    it('treats JSON nested deeper than MAX_JSON_DEPTH as invalid (an ACK echoing it overflowed the stack)', () => {
      const heartbeat = (depth: number): Buffer =>
        Buffer.from(`{"t":"HEARTBEAT","s":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`);
      assert.equal(parseHatsuFrame(heartbeat(MAX_JSON_DEPTH)).kind, 'json');
      assert.deepEqual(parseHatsuFrame(heartbeat(MAX_JSON_DEPTH + 1)), { kind: 'invalid' });
      assert.deepEqual(parseHatsuFrame(Buffer.from('['.repeat(100_000) + ']'.repeat(100_000))), { kind: 'invalid' });
    });
  });

  describe('identify', () => {
    it('is null for anything but an object', () => {
      for (const value of [null, [], 'x', 1, true]) assert.equal(parseIdentify(value), null);
    });

    it('defaults encoding to json and presences to true', () => {
      assert.deepEqual(parseIdentify({ session_id: 's' }), { sessionId: 's', encoding: 'json', presences: true });
      assert.deepEqual(parseIdentify({ session_id: 's', encoding: 'zlib', presences: false }), {
        sessionId: 's',
        encoding: 'zlib',
        presences: false,
      });
    });

    it('marks each wrong field with null', () => {
      assert.deepEqual(parseIdentify({ session_id: 5, encoding: 'etf', presences: 'yes' }), {
        sessionId: null,
        encoding: null,
        presences: null,
      });
      assert.deepEqual(parseIdentify({ session_id: '', encoding: null, presences: null }), {
        sessionId: null,
        encoding: null,
        presences: null,
      });
      assert.equal(parseIdentify({ session_id: 'x'.repeat(513) })?.sessionId, null);
      assert.equal(parseIdentify({ session_id: 'x'.repeat(512) })?.sessionId, 'x'.repeat(512));
    });
  });

  describe('client events', () => {
    it('HEARTBEAT carries s (null when absent)', () => {
      assert.deepEqual(parseClientEvent({ t: 'HEARTBEAT', s: 3 }), { kind: 'heartbeat', s: 3 });
      assert.deepEqual(parseClientEvent({ t: 'HEARTBEAT' }), { kind: 'heartbeat', s: null });
    });

    it('every t starting with DISPATCH is a dispatch', () => {
      for (const t of ['DISPATCH', 'DISPATCH_TO', 'DISPATCH_TO_GUILD', 'DISPATCHX']) {
        assert.deepEqual(parseClientEvent({ t }), { kind: 'dispatch' });
      }
    });

    it('unknown or missing t is ignored; a non-object is invalid', () => {
      for (const value of [{ t: 'NOTIFICATION' }, { t: 'dispatch' }, { t: 1 }, {}]) {
        assert.deepEqual(parseClientEvent(value), { kind: 'ignored' });
      }
      for (const value of [[], 'x', null, 3]) assert.deepEqual(parseClientEvent(value), { kind: 'invalid' });
    });

    it('PRESENCE is reshaped as the original sent it (top_text/bottom_text under text)', () => {
      assert.deepEqual(
        parseClientEvent({
          t: 'PRESENCE',
          type: 3,
          description: 'd',
          emoji: 12,
          embed: { name: 'n', description: 'e', banner_url: 'b', top_text: 't', bottom_text: 'u', extra: 1 },
          extra: true,
        }),
        {
          kind: 'presence',
          presence: {
            type: 3,
            description: 'd',
            emoji: 12,
            embed: { name: 'n', description: 'e', banner_url: 'b', text: { top: 't', bottom: 'u' } },
          },
        },
      );
      assert.deepEqual(parsePresence({ type: 1, embed: {} }), {
        type: 1,
        description: null,
        emoji: null,
        embed: { name: null, description: null, banner_url: null, text: { top: null, bottom: null } },
      });
    });

    it('ignores a PRESENCE with a bad type or field', () => {
      for (const bad of [
        { type: 0 },
        { type: 5 },
        { type: 1.5 },
        { type: '2' },
        {},
        { type: 1, description: 1 },
        { type: 1, emoji: {} },
        { type: 1, emoji: Number.NaN },
        { type: 1, embed: [] },
        { type: 1, embed: { top_text: 3 } },
        { type: 1, description: 'x'.repeat(1025) },
      ]) {
        assert.equal(parsePresence(bad), null, JSON.stringify(bad));
        assert.deepEqual(parseClientEvent({ t: 'PRESENCE', ...bad }), { kind: 'ignored' });
      }
    });
  });

  describe('server frames', () => {
    it('HELLO, READY (d an object), GUILD_INIT and ACK have the original keys', () => {
      assert.deepEqual(json(helloFrame('01H')), { t: 'HELLO', s: '01H', d: null, i: HELLO_INFO });
      assert.match(HELLO_INFO, /continuing--with any requests\.$/);
      assert.deepEqual(json(readyFrame('sess', { _id: '1' })), { t: 'READY', s: 'sess', d: { _id: '1' }, i: null });
      assert.deepEqual(json(guildInitFrame('01J', { _id: '2', channels: [] })), {
        t: 'GUILD_INIT',
        s: '01J',
        d: { _id: '2', channels: [] },
        i: '',
      });
      assert.deepEqual(json(ackFrame('sess', 9)), { t: 'ACK', _s: 'sess', s: 9, d: null });
    });

    it('events, notifications and presence updates', () => {
      assert.deepEqual(json(eventFrame('GUILD_DELETE', undefined)), { t: 'GUILD_DELETE', d: null });
      assert.deepEqual(json(eventFrame('X', { a: 1 })), { t: 'X', d: { a: 1 } });
      assert.deepEqual(json(notificationFrame('FRIEND_REQUEST', { from: '1' })), {
        t: 'NOTIFICATION',
        type: 'FRIEND_REQUEST',
        excerpt: { from: '1' },
      });
      assert.deepEqual(json(presenceUpdateFrame('5', { type: 1 })), {
        t: 'PRESENCE_UPDATE',
        id: '5',
        _id: '5',
        d: { type: 1 },
      });
    });

    it('is compact JSON', () => {
      assert.equal(eventFrame('X', { a: [1, 2] }).toString(), '{"t":"X","d":{"a":[1,2]}}');
    });
  });
});
