/** The default CryptoSeam: node:crypto for randomness and keys, @peculiar/x509 for encoding and signing. */
import { randomBytes, webcrypto } from 'node:crypto';
import { ALGORITHM_SPECS, type CryptoSeam } from './crypto.js';
import { signCertificate as encodeCertificate } from './certificates.js';
import { signCrl as encodeCrl } from './revocation.js';

export const nodeCryptoSeam: CryptoSeam = {
  randomBytes: (n) => new Uint8Array(randomBytes(n)),
  generateKeyPair: (alg) =>
    webcrypto.subtle.generateKey(ALGORITHM_SPECS[alg].generate as EcKeyGenParams, true, ['sign', 'verify']) as Promise<CryptoKeyPair>,
  signCertificate: (p) => encodeCertificate(p),
  signCrl: (p) => encodeCrl(p),
};
