/**
 * Signed ledger entries. An unkeyed hash chain can be extended by anyone who
 * can edit the file (a pull request), so every entry written now is signed:
 * root-ledger entries by the root key, scope-ledger entries by the scope's
 * signing intermediate (CI) or the root (offline ceremonies).
 *
 * The entry names its signer inside the hashed body (`signer`: key id and
 * certificate fingerprint, and the certificate itself the first time a key
 * signs in that ledger, so the entry stays verifiable after the certificate
 * leaves the store); `signature` covers the entry's hash, which chains to
 * `prev`, so one signature vouches for the whole chain before it.
 */
import { type KeyObject, X509Certificate, createPublicKey } from 'node:crypto';
import { fingerprint, keyId, parseCertificate, spkiDer, type Certificate } from '../x509/certificates.js';
import { verifyBytes } from '../crypto/crypto.js';
import type { CaKey, KeyRole } from '../x509/seam.js';

/** Who signed an entry; part of the hashed body, so it cannot be stripped without breaking the chain. */
export interface EntrySigner {
  keyId: string;
  fingerprint: string;
  /** base64 DER of the signer's certificate, on the first entry that key signs in a ledger. */
  certificate?: string;
}

/** A synchronous signer of ledger entries (node:crypto `sign`; no key export on this path). */
export interface LedgerSigner {
  keyId: string;
  fingerprint: string;
  certificate: string;
  sign(data: Uint8Array): Uint8Array;
}

/**
 * Domain separation: the same keys sign certificates, CRLs and sealed releases; this prefix keeps a ledger signature
 * from meaning anything else.
 */
const CONTEXT = 'trellis-ledger-entry-v1:';

export function signedPayload(hash: string): Buffer {
  return Buffer.from(`${CONTEXT}${hash}`, 'utf8');
}

/** A ledger signer from an opened CA key (a root's or an intermediate's): it signs through that key's seam. */
export function ledgerSigner(holder: CaKey<KeyRole>): LedgerSigner {
  return {
    keyId: keyId(holder.cert),
    fingerprint: fingerprint(holder.cert),
    certificate: Buffer.from(holder.cert.rawData).toString('base64'),
    sign: (data) => holder.signData(data),
  };
}

/**
 * The certificate an entry's signer names, checked against the fingerprint and key id it claims; undefined when it does
 * not match.
 */
export function signerCertificate(signer: EntrySigner, known: Map<string, Certificate>): Certificate | undefined {
  let cert = known.get(signer.fingerprint);
  if (!cert && signer.certificate) {
    try {
      cert = parseCertificate(Buffer.from(signer.certificate, 'base64'));
    } catch {
      return undefined;
    }
  }
  if (!cert || fingerprint(cert) !== signer.fingerprint || keyId(cert) !== signer.keyId) return undefined;
  return cert;
}

// A ledger names the same few keys thousands of times: build each public key, and check each issuer pair, once.
const publicKeys = new WeakMap<Certificate, KeyObject>();
const publicKeyOf = (cert: Certificate) => {
  let k = publicKeys.get(cert);
  if (!k) publicKeys.set(cert, (k = createPublicKey({ key: spkiDer(cert), format: 'der', type: 'spki' })));
  return k;
};
const issued = new WeakMap<Certificate, WeakMap<Certificate, boolean>>();

/** True when `signature` (base64) is `cert`'s key signing the entry hash. */
export function entrySignatureValid(hash: string, signature: string, cert: Certificate): boolean {
  return verifyBytes(publicKeyOf(cert), signedPayload(hash), Buffer.from(signature, 'base64'));
}

/** Synchronous X.509 signature check (node:crypto), so ledger proofs need no event loop. */
export function issuedUnder(cert: Certificate, issuer: Certificate): boolean {
  let byIssuer = issued.get(cert);
  if (!byIssuer) issued.set(cert, (byIssuer = new WeakMap()));
  let ok = byIssuer.get(issuer);
  if (ok === undefined) {
    try {
      ok = new X509Certificate(Buffer.from(cert.rawData)).verify(publicKeyOf(issuer));
    } catch {
      ok = false;
    }
    byIssuer.set(issuer, ok);
  }
  return ok;
}
