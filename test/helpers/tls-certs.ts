import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';

/** A certificate made by `TestCa.issue`: its files, its PEM text and its serial as Node reports it. */
export interface IssuedCertificate {
  /** The leaf followed by the CA that signed it. */
  chainFile: string;
  keyFile: string;
  chain: string;
  key: string;
  /** Upper-case hex, as `getPeerCertificate().serialNumber` and `X509Certificate.serialNumber` give it. */
  serial: string;
}

/** `openssl req` options for a new unencrypted P-256 key. */
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A throwaway certificate authority made with the `openssl` CLI in a temporary directory,
 * and server certificates it signs for `localhost` and `127.0.0.1` (subject alternative
 * names), each with a serial of its own. Clients that trust `ca` (and only it) accept them.
 */
export class TestCa {
  readonly dir: string;
  /** The CA certificate, PEM: what a client passes as `ca`. */
  readonly ca: string;
  private count = 0;

  private constructor(dir: string) {
    this.dir = dir;
    openssl(
      [
        'req',
        '-x509',
        ...NEW_KEY,
        '-keyout',
        'ca.key',
        '-out',
        'ca.crt',
        '-days',
        '2',
        '-subj',
        '/CN=Gatehouse test CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      dir,
    );
    this.ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  }

  /** A new CA in a temporary directory of its own (`remove` deletes it). */
  static create(): TestCa {
    return new TestCa(mkdtempSync(join(tmpdir(), 'gatehouse-tls-')));
  }

  /** A server certificate for localhost and 127.0.0.1, signed by this CA, with a fresh random serial. */
  issue(): IssuedCertificate {
    const name = `leaf-${++this.count}`;
    // A positive serial with no leading zero, so its hex reads the same everywhere.
    const serial = `1${randomBytes(16).toString('hex').slice(1)}`.toUpperCase();
    writeFileSync(
      join(this.dir, `${name}.ext`),
      'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' +
        'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n',
    );
    openssl(['req', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost'], this.dir);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-set_serial',
        `0x${serial}`,
        '-days',
        '1',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.crt`,
      ],
      this.dir,
    );
    const chain = readFileSync(join(this.dir, `${name}.crt`), 'utf8') + this.ca;
    const chainFile = join(this.dir, `${name}-chain.pem`);
    writeFileSync(chainFile, chain);
    const keyFile = join(this.dir, `${name}.key`);
    const key = readFileSync(keyFile, 'utf8');
    return { chainFile, keyFile, chain, key, serial: new X509Certificate(chain).serialNumber };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The files a gateway reads, laid out as a Kubernetes Secret volume (and cert-manager) lay
 * them out: `tls.crt` and `tls.key` are symlinks into `..data`, itself a symlink to a
 * directory of the current version; `publish` swaps `..data` with one rename.
 */
export class SecretVolume {
  readonly certFile: string;
  readonly keyFile: string;
  private version = 0;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.certFile = join(dir, 'tls.crt');
    this.keyFile = join(dir, 'tls.key');
  }

  /** Writes a new version of the pair (any text: a bad pair too) and makes it current at once. */
  publish(chain: string, key: string): void {
    const version = `..v${++this.version}`;
    mkdirSync(join(this.dir, version));
    writeFileSync(join(this.dir, version, 'tls.crt'), chain);
    writeFileSync(join(this.dir, version, 'tls.key'), key);
    symlinkSync(version, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (this.version === 1) {
      symlinkSync(join('..data', 'tls.crt'), this.certFile);
      symlinkSync(join('..data', 'tls.key'), this.keyFile);
    }
  }
}

/** The serial of the certificate a new TLS connection to `port` is served (verified against `ca`). */
export function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.once('error', reject);
    socket.setTimeout(3000, () => socket.destroy(new Error(`no TLS handshake on port ${port} within 3 s`)));
  });
}

/** The answer of one HTTPS request. */
export interface HttpsAnswer {
  status: number;
  text: string;
  json: unknown;
}

/**
 * One HTTPS request to `base` (`https://127.0.0.1:<port>`) trusting `ca` only: the HTTP
 * helpers' supertest client has no way to be given a CA per call.
 */
export function httpsCall(
  base: string,
  ca: string,
  method: string,
  path: string,
  { body, headers = {} }: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      new URL(path, base),
      {
        method,
        ca,
        servername: 'localhost',
        agent: false,
        timeout: 5000,
        headers: { ...(payload === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      },
    );
    req.once('timeout', () => req.destroy(new Error(`${method} ${path} did not answer within 5 s`)));
    req.once('error', reject);
    req.end(payload);
  });
}
