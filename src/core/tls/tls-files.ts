import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigValidationError } from '../../config/env.schema.js';

/** Where the certificate and its key are read from (`TLS_CERT_FILE`, `TLS_KEY_FILE`). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** A certificate chain and its key, checked to belong together, ready for `https.createServer`. */
export interface TlsPair {
  /** The PEM certificates of the chain, leaf first, and nothing else from the file. */
  cert: string;
  /** The PEM private key block, and nothing else from the file. */
  key: string;
  /** What identifies the leaf in a log line: never any key material. */
  leaf: CertificateSummary;
}

export interface CertificateSummary {
  serial: string;
  subject: string;
  issuer: string;
  validTo: string;
  /** The chain's length: the leaf and the certificates after it. */
  chain: number;
}

/** A certificate file or key file that cannot serve: one line per problem, never the files' content. */
export class TlsFilesError extends ConfigValidationError {
  constructor(problems: string[]) {
    super(problems);
    this.name = 'TlsFilesError';
  }
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const PRIVATE_KEY = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/;

/**
 * Reads and checks a certificate and its key: each file readable and PEM, every certificate
 * parseable, the key unencrypted and the leaf's own, and OpenSSL willing to serve the pair.
 * Throws a `TlsFilesError` otherwise. The messages name the variable and what is wrong, in
 * words of their own: neither the files' content nor OpenSSL's dump of it ever reaches them.
 */
export function readTlsPair({ certFile, keyFile }: TlsFiles): TlsPair {
  const problems: string[] = [];
  const certText = readText('TLS_CERT_FILE', certFile, problems);
  const keyText = readText('TLS_KEY_FILE', keyFile, problems);
  const leaf = certText === null ? null : parseChain(certText, problems);
  const key = keyText === null ? null : parseKey(keyText, problems);
  if (leaf === null || key === null) throw new TlsFilesError(problems);
  if (!leaf.certificate.checkPrivateKey(key.object)) {
    throw new TlsFilesError(['TLS_KEY_FILE: is not the private key of the certificate in TLS_CERT_FILE']);
  }
  try {
    createSecureContext({ cert: leaf.pem, key: key.pem });
  } catch (err) {
    throw new TlsFilesError([`TLS_CERT_FILE: OpenSSL refuses the pair (${opensslReason(err)})`]);
  }
  return { cert: leaf.pem, key: key.pem, leaf: leaf.summary };
}

function readText(variable: string, file: string, problems: string[]): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${variable}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return null;
  }
}

interface ParsedChain {
  pem: string;
  certificate: X509Certificate;
  summary: CertificateSummary;
}

function parseChain(text: string, problems: string[]): ParsedChain | null {
  const blocks = text.match(CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    problems.push('TLS_CERT_FILE: holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
    return null;
  }
  const certificates: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch {
      problems.push(`TLS_CERT_FILE: certificate ${index + 1} of ${blocks.length} cannot be parsed`);
      return null;
    }
  }
  const certificate = certificates[0] as X509Certificate;
  return {
    pem: `${blocks.join('\n')}\n`,
    certificate,
    summary: {
      serial: certificate.serialNumber,
      subject: certificate.subject.replace(/\n/g, ', '),
      issuer: certificate.issuer.replace(/\n/g, ', '),
      validTo: new Date(certificate.validTo).toISOString(),
      chain: certificates.length,
    },
  };
}

function parseKey(text: string, problems: string[]): { pem: string; object: KeyObject } | null {
  const match = PRIVATE_KEY.exec(text);
  if (!match) {
    problems.push('TLS_KEY_FILE: holds no PEM private key (-----BEGIN PRIVATE KEY-----)');
    return null;
  }
  if (match[1] === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,ENCRYPTED/.test(match[0])) {
    problems.push('TLS_KEY_FILE: the key is encrypted; give it unencrypted (no passphrase is read)');
    return null;
  }
  try {
    return { pem: `${match[0]}\n`, object: createPrivateKey(match[0]) };
  } catch {
    problems.push('TLS_KEY_FILE: the PEM private key cannot be parsed');
    return null;
  }
}

/** OpenSSL's reason ("ee key too small"), without the error's other fields. */
function opensslReason(err: unknown): string {
  const reason = (err as { reason?: unknown }).reason;
  if (typeof reason === 'string' && /^[\w .,'-]{1,120}$/.test(reason)) return reason;
  return (err as { code?: unknown }).code === undefined ? 'unknown reason' : String((err as { code: unknown }).code);
}
