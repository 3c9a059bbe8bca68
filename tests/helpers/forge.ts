/**
 * What a thief holding one scope's intermediate key could mint: a leaf with
 * any names, signed outside trellis's checks. Peers must refuse it.
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
} from '@trellis/core';
import type { FakeMesh } from './fake-mesh.js';

export async function forgeLeaf(
  m: FakeMesh,
  issuerScope: string,
  sans: { dns: string[]; uris: string[] },
  now = new Date(),
): Promise<{ cert: string; key: string; chain: string }> {
  const ci = fs
    .readFileSync(m.ciIdentityFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('AGE-SECRET-KEY'));
  const opened = await tryDecrypt(ci, m.read(`bundles/${issuerScope}/intermediate.key.age`));
  if (!opened.ok) throw new Error('cannot open the intermediate key');
  const keyPem = opened.text;
  const issuer = parseCertificate(m.read(`bundles/${issuerScope}/intermediate.pem`));
  const { key, algorithm } = await importSigningKey(keyPem);
  const keys = await nodeCryptoSeam.generateKeyPair('ecdsa-p256');
  const cert = await nodeCryptoSeam.signCertificate({
    serial: randomSerial(nodeCryptoSeam),
    subject: `CN=${sans.dns[0]}`,
    issuer: issuer.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 86_400_000),
    subjectPublicKey: keys.publicKey,
    signingKey: key,
    signingAlgorithm: algorithm,
    extensions: await extensionsFor(PROFILES.leaf, {
      subjectPublicKey: keys.publicKey,
      issuerPublicKey: issuer.publicKey,
      sans,
    }),
  });
  const pem = certificatePem(cert);
  return {
    cert: pem,
    key: await exportPrivateKeyPem(keys.privateKey),
    chain: pem + m.read(`bundles/${issuerScope}/intermediate.pem`),
  };
}
