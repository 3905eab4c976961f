import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigValidationError, validateEnv } from './env.schema.js';

describe('environment schema', () => {
  it('applies the documented defaults', () => {
    const env = validateEnv({});
    assert.equal(env.PORT, 8080);
    assert.equal(env.HOST, '0.0.0.0');
    assert.equal(env.REDIS_URL, undefined);
    assert.equal(env.LOG_LEVEL, 'info');
    assert.equal(env.WS_MAX_PAYLOAD, 1_048_576);
    assert.equal(env.WS_SEND_BUFFER_LIMIT, 4_194_304);
    assert.equal(env.SHUTDOWN_GRACE_MS, 5000);
    assert.equal(env.JAC_PUBLISH_POLICY, 'authenticated');
    assert.equal(env.JAC_PING_INTERVAL_MS, 20_000);
    assert.equal(env.JAC_PING_TIMEOUT_MS, 20_000);
    assert.equal(env.HATSU_PRESENCE_LIMIT, 5);
    assert.equal(env.HATSU_PRESENCE_WINDOW_MS, 20_000);
  });

  it('converts numbers and treats empty strings as unset', () => {
    const env = validateEnv({ PORT: '9000', REDIS_URL: '', JAC_PING_INTERVAL_MS: ' 250 ' });
    assert.equal(env.PORT, 9000);
    assert.equal(env.REDIS_URL, undefined);
    assert.equal(env.JAC_PING_INTERVAL_MS, 250);
  });

  it('accepts a redis URL', () => {
    const secrets = { ADMIN_TOKEN: 'a-shared-admin-token', JAC_JWT_SECRET: 'a-shared-jwt-secret' };
    assert.equal(
      validateEnv({ REDIS_URL: 'redis://127.0.0.1:6379/2', ...secrets }).REDIS_URL,
      'redis://127.0.0.1:6379/2',
    );
  });

  it('names every bad variable, without echoing its value', () => {
    const secret = 'short';
    assert.throws(
      () =>
        validateEnv({ PORT: 'eighty', JAC_PUBLISH_POLICY: 'sometimes', ADMIN_TOKEN: secret, REDIS_URL: 'http://x' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigValidationError);
        const named = err.problems.map((p) => p.split(':')[0]).sort();
        assert.deepEqual(named, ['ADMIN_TOKEN', 'JAC_PUBLISH_POLICY', 'PORT', 'REDIS_URL']);
        assert.ok(!err.message.includes(secret));
        return true;
      },
    );
  });

  it('refuses two listeners on one port', () => {
    assert.throws(() => validateEnv({ PORT: '9000', FELIX_PORT: '9000' }), /FELIX_PORT: must differ from PORT/);
    assert.throws(
      () => validateEnv({ FELIX_PORT: '9100', HATSU_PORT: '9100' }),
      /HATSU_PORT: must differ from FELIX_PORT/,
    );
    assert.equal(validateEnv({ PORT: '0', FELIX_PORT: '9100', HATSU_PORT: '9101' }).HATSU_PORT, 9101);
  });

  it('takes the hatsu presence budget, and refuses one that is not a positive integer or a window under 10 ms', () => {
    const env = validateEnv({ HATSU_PRESENCE_LIMIT: '2', HATSU_PRESENCE_WINDOW_MS: '150' });
    assert.equal(env.HATSU_PRESENCE_LIMIT, 2);
    assert.equal(env.HATSU_PRESENCE_WINDOW_MS, 150);
    for (const [name, value] of [
      ['HATSU_PRESENCE_LIMIT', '0'],
      ['HATSU_PRESENCE_LIMIT', '1.5'],
      ['HATSU_PRESENCE_LIMIT', 'many'],
      ['HATSU_PRESENCE_WINDOW_MS', '5'],
      ['HATSU_PRESENCE_WINDOW_MS', '-20000'],
    ] as const) {
      assert.throws(
        () => validateEnv({ [name]: value }),
        (err: unknown) => err instanceof ConfigValidationError && err.problems.some((p) => p.startsWith(`${name}:`)),
        `${name}=${value}`,
      );
    }
  });

  it('takes HATSU_ZLIB_IDLE_MS (5000 by default, 0 for never) and refuses a negative or fractional one', () => {
    assert.equal(validateEnv({}).HATSU_ZLIB_IDLE_MS, 5000);
    assert.equal(validateEnv({ HATSU_ZLIB_IDLE_MS: '0' }).HATSU_ZLIB_IDLE_MS, 0);
    assert.equal(validateEnv({ HATSU_ZLIB_IDLE_MS: '20' }).HATSU_ZLIB_IDLE_MS, 20);
    for (const value of ['-1', '2.5', 'soon']) {
      assert.throws(
        () => validateEnv({ HATSU_ZLIB_IDLE_MS: value }),
        (err: unknown) =>
          err instanceof ConfigValidationError && err.problems.some((p) => p.startsWith('HATSU_ZLIB_IDLE_MS:')),
        value,
      );
    }
  });

  it('takes the bus log settings (on, 10000 entries, 2 min by default) and refuses others', () => {
    const defaults = validateEnv({});
    assert.deepEqual([defaults.BUS_LOG, defaults.BUS_LOG_MAX_LEN, defaults.BUS_LOG_TTL_MS], ['on', 10_000, 120_000]);
    assert.equal(validateEnv({ BUS_LOG: 'off' }).BUS_LOG, 'off');
    for (const [name, value] of [
      ['BUS_LOG', 'maybe'],
      ['BUS_LOG_MAX_LEN', '10'],
      ['BUS_LOG_TTL_MS', '1.5'],
    ] as const) {
      assert.throws(
        () => validateEnv({ [name]: value }),
        (err: unknown) => err instanceof ConfigValidationError && err.problems.some((p) => p.startsWith(`${name}:`)),
        `${name}=${value}`,
      );
    }
  });

  it('ignores variables it does not know', () => {
    assert.equal(validateEnv({ PATH: '/bin', UNRELATED: 'x' }).PORT, 8080);
  });

  it('reads booleans in the usual spellings and refuses anything else', () => {
    for (const [text, value] of [
      ['true', true],
      ['1', true],
      ['on', true],
      ['YES', true],
      ['false', false],
      ['0', false],
      ['off', false],
      ['No', false],
    ] as const) {
      assert.equal(validateEnv({ METRICS_ENABLED: text }).METRICS_ENABLED, value, text);
    }
    assert.equal(validateEnv({}).METRICS_ENABLED, true);
    assert.throws(() => validateEnv({ METRICS_ENABLED: 'maybe' }), /METRICS_ENABLED: must be true or false/);
  });

  it('takes a list of proxies, and names a bad one', () => {
    const env = validateEnv({ TRUST_PROXY: ' 10.0.0.0/8, ::1 ,loopback,192.168.1.7' });
    assert.equal(env.TRUST_PROXY, ' 10.0.0.0/8, ::1 ,loopback,192.168.1.7');
    for (const bad of ['10.0.0.0/33', 'proxy.example.com', '1.2.3', ',']) {
      assert.throws(() => validateEnv({ TRUST_PROXY: bad }), /TRUST_PROXY: must be a comma-separated list/, bad);
    }
  });

  it('names the type a value broke before its range', () => {
    for (const [value, message] of [
      ['eighty', 'PORT: must be an integer number'],
      ['8.5', 'PORT: must be an integer number'],
      ['70000', 'PORT: must not be greater than 65535'],
      ['-1', 'PORT: must not be less than 0'],
    ] as const) {
      assert.throws(
        () => validateEnv({ PORT: value }),
        (err: unknown) => err instanceof ConfigValidationError && err.problems.join() === message,
        value,
      );
    }
  });

  it('refuses the Redis engine without shared secrets, and says which is missing', () => {
    const redis = { REDIS_URL: 'redis://127.0.0.1:6379' };
    assert.throws(
      () => validateEnv(redis),
      (err: unknown) =>
        err instanceof ConfigValidationError &&
        err.problems.length === 2 &&
        err.problems[0]?.startsWith('ADMIN_TOKEN: must be set when Redis is used') === true &&
        err.problems[1]?.startsWith('JAC_JWT_SECRET: must be set when Redis is used') === true,
    );
    assert.throws(
      () => validateEnv({ ...redis, ADMIN_TOKEN: 'a-shared-admin-token' }),
      /^(?!.*ADMIN_TOKEN).*JAC_JWT_SECRET/s,
    );
    // The embedded engine makes its own.
    assert.equal(validateEnv({}).ADMIN_TOKEN, undefined);
  });

  it('keeps the metrics port apart from the others', () => {
    assert.throws(
      () => validateEnv({ HATSU_PORT: '9200', METRICS_PORT: '9200' }),
      /METRICS_PORT: must differ from HATSU_PORT/,
    );
    assert.equal(validateEnv({ METRICS_PORT: '9201' }).METRICS_PORT, 9201);
  });

  it('takes one Redis topology: a URL, sentinels with a master name, or cluster nodes', () => {
    const secrets = { ADMIN_TOKEN: 'a-shared-admin-token', JAC_JWT_SECRET: 'a-shared-jwt-secret' };
    const sentinel = validateEnv({
      REDIS_SENTINELS: '10.0.0.1:26379, [::1]:26380',
      REDIS_SENTINEL_NAME: 'mymaster',
      ...secrets,
    });
    assert.equal(sentinel.REDIS_SENTINELS, '10.0.0.1:26379, [::1]:26380');
    assert.equal(
      validateEnv({ REDIS_CLUSTER_NODES: 'redis-1:6379,redis-2:6379', ...secrets }).REDIS_CLUSTER_NODES,
      'redis-1:6379,redis-2:6379',
    );
    for (const [env, message] of [
      [{ REDIS_SENTINELS: 'host' }, /REDIS_SENTINELS: must be a comma-separated list of host:port/],
      [{ REDIS_CLUSTER_NODES: 'a:1,b:99999' }, /REDIS_CLUSTER_NODES: must be a comma-separated list of host:port/],
      [{ REDIS_SENTINELS: 'a:1', ...secrets }, /REDIS_SENTINEL_NAME: must be set with REDIS_SENTINELS/],
      [
        { REDIS_URL: 'redis://a:1', REDIS_CLUSTER_NODES: 'a:1', ...secrets },
        /REDIS_CLUSTER_NODES: must not be set together with REDIS_URL/,
      ],
      [{ REDIS_CLUSTER_NODES: 'a:1' }, /ADMIN_TOKEN: must be set when Redis is used/],
      [{ REDIS_KEY_PREFIX: '{tag}:' }, /REDIS_KEY_PREFIX: must be 1 to 64 letters, digits or : _ \. - \(no braces\)/],
    ] as const) {
      assert.throws(() => validateEnv(env), message, JSON.stringify(env));
    }
  });

  it('takes the TLS certificate and key together or not at all', () => {
    const env = validateEnv({ TLS_CERT_FILE: '/tls/tls.crt', TLS_KEY_FILE: '/tls/tls.key' });
    assert.equal(env.TLS_CERT_FILE, '/tls/tls.crt');
    assert.equal(env.TLS_KEY_FILE, '/tls/tls.key');
    assert.equal(validateEnv({ TLS_CERT_FILE: '', TLS_KEY_FILE: '' }).TLS_CERT_FILE, undefined);
    assert.throws(() => validateEnv({ TLS_CERT_FILE: '/tls/tls.crt' }), /TLS_KEY_FILE: must be set with TLS_CERT_FILE/);
    assert.throws(() => validateEnv({ TLS_KEY_FILE: '/tls/tls.key' }), /TLS_CERT_FILE: must be set with TLS_KEY_FILE/);
  });
});
