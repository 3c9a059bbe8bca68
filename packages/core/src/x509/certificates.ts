/** Parsing, fingerprints and signing of X.509 certificates, shared by every tier. */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import {
  ALGORITHM_SPECS,
  pemDecodeAll,
  pemEncode,
  publicKeyDerOf,
  sha256Hex,
  type KeyAlgorithm,
} from '../crypto/crypto.js';

export type Certificate = x509.X509Certificate;

/**
 * One certificate: a PEM text must hold exactly one CERTIFICATE block and nothing else (a second block or trailing data
 * is refused).
 */
export function parseCertificate(pemOrDer: string | Uint8Array): Certificate {
  if (typeof pemOrDer === 'string') {
    const blocks = pemOrDer.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length > 1) throw new Error(`${blocks.length} certificates where one certificate belongs`);
    if (blocks.length === 1 && pemOrDer.replace(blocks[0]!, '').trim())
      throw new Error('data outside its one certificate block');
  }
  // A store holds each CA certificate many times over (every trust bundle, CRL issuer and ledger signer): each is
  // parsed once.
  const k = typeof pemOrDer === 'string' ? pemOrDer : Buffer.from(pemOrDer).toString('base64');
  let cert = parsed.get(k);
  if (!cert) {
    cert = new x509.X509Certificate(typeof pemOrDer === 'string' ? pemOrDer : new Uint8Array(pemOrDer));
    if (parsed.size >= 4096) parsed.delete(parsed.keys().next().value!);
    parsed.set(k, cert);
  }
  return cert;
}

/** Parsed certificates by their PEM or base64 DER; they are never mutated, so callers share them. */
const parsed = new Map<string, Certificate>();

/** Every `CERTIFICATE` block in a PEM file, in order. */
export function parseCertificates(pem: string): Certificate[] {
  return pemDecodeAll(pem, 'CERTIFICATE').map((der) => parseCertificate(der));
}

export function certificatePem(cert: Certificate): string {
  return pemEncode('CERTIFICATE', new Uint8Array(cert.rawData));
}

/** `sha256:<hex>` of the DER: how the store names a certificate. */
export function fingerprint(cert: Certificate): string {
  return `sha256:${sha256Hex(new Uint8Array(cert.rawData))}`;
}

export function spkiDer(cert: Certificate): Buffer {
  return Buffer.from(cert.publicKey.rawData);
}

/**
 * `sha256:<hex>` of the SubjectPublicKeyInfo: names a key across the certificates that carry it (a re-signed
 * intermediate keeps it).
 */
export function keyId(cert: Certificate): string {
  return `sha256:${sha256Hex(spkiDer(cert))}`;
}

export interface IssueParams {
  serial: string;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  subjectPublicKey: CryptoKey;
  signingKey: CryptoKey;
  signingAlgorithm: KeyAlgorithm;
  extensions: x509.Extension[];
}

/**
 * The default encoder behind `CryptoSeam.signCertificate`: call it through a seam. The profile's extensions are decided
 * by the caller's tier.
 */
export async function signCertificate(p: IssueParams, crypto?: Crypto): Promise<Certificate> {
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: p.serial,
      subject: p.subject,
      issuer: p.issuer,
      notBefore: p.notBefore,
      notAfter: p.notAfter,
      publicKey: p.subjectPublicKey,
      signingKey: p.signingKey,
      signingAlgorithm: ALGORITHM_SPECS[p.signingAlgorithm].signing,
      extensions: p.extensions,
    },
    crypto,
  );
}

/** True when `cert`'s signature verifies under `issuer`'s public key. */
export async function signedBy(cert: Certificate, issuer: Certificate): Promise<boolean> {
  try {
    return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

export function isSelfIssued(cert: Certificate): boolean {
  return cert.subject === cert.issuer;
}

/** The SANs of a certificate, by kind. */
export function subjectAltNames(cert: Certificate): { dns: string[]; uris: string[]; other: number } {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const out = { dns: [] as string[], uris: [] as string[], other: 0 };
  for (const n of ext?.names.items ?? []) {
    if (n.type === 'dns') out.dns.push(n.value);
    else if (n.type === 'url') out.uris.push(n.value);
    else out.other++;
  }
  return out;
}

/** True when the PKCS#8 private key is the key of `cert`. */
export function keyMatchesCert(privatePem: string, cert: Certificate): boolean {
  try {
    return publicKeyDerOf(privatePem).equals(spkiDer(cert));
  } catch {
    return false;
  }
}
