/** The CryptoSeam and its default: node:crypto for randomness and keys, @peculiar/x509 for encoding and signing. */
import { randomBytes, webcrypto } from 'node:crypto';
import { ALGORITHM_SPECS, type KeyAlgorithm } from '../crypto/crypto.js';
import { signCertificate as encodeCertificate, type Certificate, type IssueParams } from './certificates.js';
import { signCrl as encodeCrl, type CrlParams } from './revocation.js';

/**
 * Every primitive a certificate or CRL goes through: randomness, key
 * generation, and the encode-and-sign of certificates and CRLs. A token
 * signer or a faster leaf encoder replaces one member; tests inject one.
 */
export interface CryptoSeam {
  randomBytes(n: number): Uint8Array;
  generateKeyPair(alg: KeyAlgorithm): Promise<CryptoKeyPair>;
  /** Encodes the TBSCertificate and signs it with `p.signingKey`. */
  signCertificate(p: IssueParams): Promise<Certificate>;
  /** Encodes and signs a CRL; returns it as `X509 CRL` PEM. */
  signCrl(p: CrlParams): Promise<string>;
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
};
