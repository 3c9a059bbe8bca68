/**
 * The one seam every signature and key goes through: randomness, key generation, certificates, CRLs, leaf batches
 * (the fast template) and detached signatures (ledger entries, burn statements, releases). The file key is
 * nodeCryptoSeam; a PKCS#11 token root and renew's worker pool are other implementations of members; tests count.
 */
import { KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { ALGORITHM_SPECS, importSigningKey, signBytes, type KeyAlgorithm } from '../crypto/crypto.js';
import { signCertificate as encodeCertificate, type Certificate, type IssueParams } from './certificates.js';
import { signCrl as encodeCrl, type CrlParams } from './revocation.js';
import { signLeaves, type EncodedLeaf, type LeafOrder, type LeafTemplate } from './leaf-template.js';

/** A scope's batch of leaves to mint: the template, the orders, and what their records name as issuer. */
export interface LeafBatch {
  scope: string;
  template: LeafTemplate;
  orders: LeafOrder[];
  /** The issuing intermediate as records name it, and its PEM (chain.pem is leaf + intermediate). */
  issuer: { fingerprint: string; key: string; pem: string };
}

/**
 * Signs a batch of leaves with an intermediate's key (a KeyObject: it crosses to worker threads, a CryptoKey does not).
 */
export type LeafSigner = (batch: LeafBatch, signingKey: KeyObject) => Promise<EncodedLeaf[]>;

export interface CryptoSeam {
  randomBytes(n: number): Uint8Array;
  generateKeyPair(alg: KeyAlgorithm): Promise<CryptoKeyPair>;
  /** Encodes the TBSCertificate and signs it with `p.signingKey`. */
  signCertificate(p: IssueParams): Promise<Certificate>;
  /** Encodes and signs a CRL; returns it as `X509 CRL` PEM. */
  signCrl(p: CrlParams): Promise<string>;
  /** Signs a batch of leaves from their template: in-process here, on worker threads in trellis-ci's renew. */
  signLeafBatch: LeafSigner;
  /** A detached signature (DER for ECDSA) over `data`: ledger entries, burn statements, sealed releases. */
  signData(key: CryptoKey, algorithm: KeyAlgorithm, data: Uint8Array): Uint8Array;
}

export const nodeCryptoSeam: CryptoSeam = {
  randomBytes: (n) => new Uint8Array(randomBytes(n)),
  generateKeyPair: (alg) =>
    webcrypto.subtle.generateKey(ALGORITHM_SPECS[alg].generate as EcKeyGenParams, true, [
      'sign',
      'verify',
    ]) as Promise<CryptoKeyPair>,
  signCertificate: (p) => encodeCertificate(p),
  signCrl: (p) => encodeCrl(p),
  signLeafBatch: async (b, key) => signLeaves(b.template, b.orders, key),
  signData: (key, algorithm, data) => signBytes(key, algorithm, data),
};

/**
 * Whose key: a root signs intermediates, an intermediate signs leaves. Part of the type, so neither stands in for the
 * other.
 */
export type KeyRole = 'root' | 'intermediate';

/**
 * An opened CA key as the code that signs with it holds it. Its role is in its type: a function of the CI side takes
 * CaKey<'intermediate'>, and the compiler refuses a root there (tests/signing-seam.test.ts).
 */
export interface CaKey<R extends KeyRole> {
  readonly role: R;
  readonly cert: Certificate;
  /** What certificates and CRLs are signed with (through the seam); a token root's stands for its token object. */
  readonly key: CryptoKey;
  readonly algorithm: KeyAlgorithm;
  /** A detached signature over `data`, made through the seam the key was opened with. */
  signData(data: Uint8Array): Uint8Array;
}

/** A CA key held in memory (decrypted from its age file), signing through `seam`. */
export function caKey<R extends KeyRole>(
  role: R,
  cert: Certificate,
  held: { key: CryptoKey; algorithm: KeyAlgorithm },
  seam: CryptoSeam = nodeCryptoSeam,
): CaKey<R> {
  return {
    role,
    cert,
    key: held.key,
    algorithm: held.algorithm,
    signData: (d) => seam.signData(held.key, held.algorithm, d),
  };
}

/** caKey from a PKCS#8 PEM (just decrypted or just generated). */
export async function caKeyFromPem<R extends KeyRole>(
  role: R,
  cert: Certificate,
  pem: string,
  seam: CryptoSeam = nodeCryptoSeam,
): Promise<CaKey<R>> {
  return caKey(role, cert, await importSigningKey(pem), seam);
}

/** The KeyObject a LeafSigner signs with (it crosses to worker threads; a CryptoKey does not sign there). */
export function signingKeyObject(issuer: CaKey<'intermediate'>): KeyObject {
  return KeyObject.from(issuer.key as webcrypto.CryptoKey);
}
