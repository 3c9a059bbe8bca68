/**
 * Leaf minting: the one function every caller goes through, so a faster
 * encoder can replace its body without touching them.
 */
import { exportPrivateKeyPem, randomSerial, type CryptoSeam, type KeyAlgorithm } from './crypto.js';
import { certificatePem, fingerprint, keyId, type Certificate } from './certificates.js';
import { PROFILES, assertNamesInside, extensionsFor, validityWithin } from './profiles.js';
import { leafNames, type LeafRecord } from './issuance.js';
import { permittedNamesFor } from './names.js';
import type { ServiceDef } from './config.js';

export interface SigningIntermediate {
  scope: string;
  cert: Certificate;
  key: CryptoKey;
  algorithm: KeyAlgorithm;
}

export interface LeafRequest {
  scope: string;
  service: ServiceDef;
  trustDomain: string;
  ttl: number;
  algorithm: KeyAlgorithm;
  now: Date;
}

export interface MintedLeaf {
  service: string;
  cert: Certificate;
  certPem: string;
  keyPem: string;
  record: LeafRecord;
}

export async function mintLeaf(req: LeafRequest, issuer: SigningIntermediate, seam: CryptoSeam): Promise<MintedLeaf> {
  const sans = leafNames(req.scope, req.service, req.trustDomain);
  assertNamesInside(sans, permittedNamesFor(issuer.scope, req.trustDomain), issuer.scope);
  const validity = validityWithin('leaf', req.now, req.ttl, { notBefore: issuer.cert.notBefore, notAfter: issuer.cert.notAfter, label: `${issuer.scope} intermediate`, file: `bundles/${issuer.scope}/intermediate.pem` });
  const keys = await seam.generateKeyPair(req.algorithm);
  const serial = randomSerial(seam);
  const cert = await seam.signCertificate({
    serial,
    subject: `CN=${sans.dns[0]}`,
    issuer: issuer.cert.subject,
    ...validity,
    subjectPublicKey: keys.publicKey,
    signingKey: issuer.key,
    signingAlgorithm: issuer.algorithm,
    extensions: await extensionsFor(PROFILES.leaf, { subjectPublicKey: keys.publicKey, issuerPublicKey: issuer.cert.publicKey, sans }),
  });
  return {
    service: req.service.name,
    cert,
    certPem: certificatePem(cert),
    keyPem: await exportPrivateKeyPem(keys.privateKey),
    record: { serial: cert.serialNumber, notBefore: cert.notBefore, notAfter: cert.notAfter, issuer: fingerprint(issuer.cert), issuerKey: keyId(issuer.cert), fingerprint: fingerprint(cert), ...sans },
  };
}
