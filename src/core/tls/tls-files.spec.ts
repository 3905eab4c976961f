import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestCa, type IssuedCertificate } from '../../../test/helpers/tls-certs.js';
import { readTlsPair, TlsFilesError } from './tls-files.js';

describe('readTlsPair', () => {
  let authority: TestCa;
  let pair: IssuedCertificate;
  let other: IssuedCertificate;

  before(() => {
    authority = TestCa.create();
    pair = authority.issue();
    other = authority.issue();
  });

  after(() => authority?.remove());

  function file(name: string, text: string): string {
    const path = join(authority.dir, name);
    writeFileSync(path, text);
    return path;
  }

  function problems(certFile: string, keyFile: string): string[] {
    try {
      readTlsPair({ certFile, keyFile });
    } catch (err) {
      assert.ok(err instanceof TlsFilesError);
      for (const line of `${pair.key}${other.key}`.split('\n').filter((l) => l !== '' && !l.startsWith('-----'))) {
        assert.ok(!err.message.includes(line), 'no key material in the message');
      }
      return err.problems;
    }
    throw new Error('the pair was accepted');
  }

  it('reads a chain and its key: the chain only, leaf first, and the leaf named by its serial', () => {
    // Other PEM blocks around them (EC parameters, a key in the certificate file) are dropped.
    const certFile = file('combined.pem', `${pair.key}${pair.chain}`);
    const keyFile = file(
      'with-params.key',
      `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${pair.key}`,
    );
    const read = readTlsPair({ certFile, keyFile });
    assert.equal(read.leaf.serial, pair.serial);
    assert.equal(read.leaf.chain, 2);
    assert.equal(read.leaf.subject, 'CN=localhost');
    assert.doesNotMatch(read.cert, /PRIVATE KEY/);
    assert.equal((read.key.match(/-----BEGIN/g) ?? []).length, 1);
  });

  it('names each unreadable or non-PEM file', () => {
    assert.deepEqual(problems(join(authority.dir, 'none.pem'), join(authority.dir, 'none.key')), [
      'TLS_CERT_FILE: cannot be read (ENOENT)',
      'TLS_KEY_FILE: cannot be read (ENOENT)',
    ]);
    assert.deepEqual(problems(authority.dir, pair.keyFile), ['TLS_CERT_FILE: cannot be read (EISDIR)']);
    assert.deepEqual(problems(pair.keyFile, pair.chainFile), [
      'TLS_CERT_FILE: holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
      'TLS_KEY_FILE: holds no PEM private key (-----BEGIN PRIVATE KEY-----)',
    ]);
    const broken = pair.chain.replace(/^(-----BEGIN CERTIFICATE-----\n)[A-Za-z0-9+/]{8}/, '$1AAAAAAAA');
    assert.deepEqual(problems(file('broken.pem', broken), pair.keyFile), [
      'TLS_CERT_FILE: certificate 1 of 2 cannot be parsed',
    ]);
  });

  it('refuses an encrypted key, a key that does not parse and a key of another certificate', () => {
    const encrypted = file(
      'enc.key',
      '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n',
    );
    assert.deepEqual(problems(pair.chainFile, encrypted), [
      'TLS_KEY_FILE: the key is encrypted; give it unencrypted (no passphrase is read)',
    ]);
    const junk = file('junk.key', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    assert.deepEqual(problems(pair.chainFile, junk), ['TLS_KEY_FILE: the PEM private key cannot be parsed']);
    assert.deepEqual(problems(pair.chainFile, other.keyFile), [
      'TLS_KEY_FILE: is not the private key of the certificate in TLS_CERT_FILE',
    ]);
  });
});
