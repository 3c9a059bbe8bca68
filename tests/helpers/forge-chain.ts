/**
 * Certificates and CRLs that trellis would never mint, signed with a real
 * key of a FakeMesh: a profile with one field changed, so a verifier's
 * refusal can be pinned to that one field. Built from @trellis/core's own
 * profile and extension code, so everything else stays as trellis writes it.
 */
import fs from 'node:fs';
import {
  PROFILES,
  certificatePem,
  exportPrivateKeyPem,
  extensionsFor,
  importSigningKey,
  nodeCryptoSeam,
  parseCertificate,
  randomSerial,
  tryDecrypt,
  type PermittedNames,
  type Profile,
} from '@trellis/core';

/** A CA (or leaf) as PEM: its certificate and its private key. */
export interface KeyPair {
  cert: string;
  key: string;
}

/** Opens `keyAge` with the age identities in `identityFile` (a FakeMesh's root or CI identity). */
export async function openCa(identityFile: string, keyAge: string, certPem: string): Promise<KeyPair> {
  const ids = fs
    .readFileSync(identityFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('AGE-SECRET-KEY'));
  const opened = await tryDecrypt(ids, keyAge);
  if (!opened.ok) throw new Error('the identity does not open this key');
  return { cert: certPem, key: opened.text };
}

export interface ForgeSpec {
  subject: string;
  /** A trellis profile, usually with one field changed: `{ ...PROFILES.leaf, keyUsage: … }`. */
  profile: Profile;
  sans?: { dns: string[]; uris: string[] };
  permitted?: PermittedNames;
  notBefore: Date;
  notAfter: Date;
}

/** A certificate of `spec` signed by `issuer`, with a fresh P-256 key. */
export async function forgeCertificate(issuer: KeyPair, spec: ForgeSpec): Promise<KeyPair> {
  const issuerCert = parseCertificate(issuer.cert);
  const { key, algorithm } = await importSigningKey(issuer.key);
  const keys = await nodeCryptoSeam.generateKeyPair('ecdsa-p256');
  const cert = await nodeCryptoSeam.signCertificate({
    serial: randomSerial(nodeCryptoSeam),
    subject: spec.subject,
    issuer: issuerCert.subject,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    subjectPublicKey: keys.publicKey,
    signingKey: key,
    signingAlgorithm: algorithm,
    extensions: await extensionsFor(spec.profile, {
      subjectPublicKey: keys.publicKey,
      issuerPublicKey: issuerCert.publicKey,
      permitted: spec.permitted,
      sans: spec.sans,
    }),
  });
  return { cert: certificatePem(cert), key: await exportPrivateKeyPem(keys.privateKey) };
}

/** The empty leaf CRL a forged CA would publish, as trellis does for its intermediates (CRL checking wants one). */
export async function forgeLeafCrl(ca: KeyPair, now: Date): Promise<string> {
  const { key, algorithm } = await importSigningKey(ca.key);
  return nodeCryptoSeam.signCrl({
    issuer: parseCertificate(ca.cert),
    key,
    algorithm,
    thisUpdate: new Date(now.getTime() - 60_000),
    nextUpdate: new Date(now.getTime() + 86_400_000),
    entries: [],
  });
}

export { PROFILES };
