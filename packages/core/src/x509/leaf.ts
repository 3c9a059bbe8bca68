/**
 * Leaf minting: the one function every caller goes through, so a faster
 * encoder can replace its body without touching them.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { exportPrivateKeyPem, randomSerial, type KeyAlgorithm } from '../crypto/crypto.js';
import type { CaKey, CryptoSeam, LeafBatch } from './seam.js';
import { certificatePem, fingerprint, keyId, parseCertificate, type Certificate } from './certificates.js';
import { LEAF_SECRET_BYTES, type EncodedLeaf, type LeafTemplate } from './leaf-template.js';
import { PROFILES, assertNamesInside, extensionsFor, validityWithin } from './profiles.js';
import { leafNames, type LeafRecord } from '../ledger/issuance.js';
import { permittedNamesFor } from '../model/names.js';
import type { ServiceDef } from '../config/config.js';
import { requestPublicKey } from './csr.js';

/** An intermediate's opened key, and the scope it serves. */
export interface SigningIntermediate extends CaKey<'intermediate'> {
  readonly scope: string;
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
  /** Parsed on first use: a renew of thousands of leaves never needs the object. */
  cert: Certificate;
  /** `CN=<first DNS name>`, what the ledger records. */
  subject: string;
  certPem: string;
  /** The private key CI made; absent for a host-held key (`key: host`), which never leaves its host. */
  keyPem?: string;
  record: LeafRecord;
}

export async function mintLeaf(req: LeafRequest, issuer: SigningIntermediate, seam: CryptoSeam): Promise<MintedLeaf> {
  const keys = await seam.generateKeyPair(req.algorithm);
  const leaf = await signLeafFor(req, keys.publicKey, issuer, seam);
  return { ...leaf, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/**
 * The leaf for a public key the host holds (its CSR checked by custody/host-keys.ts): the names are trellis's, never
 * the request's.
 */
export async function signHostLeaf(
  req: LeafRequest,
  spki: Uint8Array,
  issuer: SigningIntermediate,
  seam: CryptoSeam,
): Promise<MintedLeaf> {
  return signLeafFor(req, await requestPublicKey(spki, req.algorithm), issuer, seam);
}

async function signLeafFor(
  req: LeafRequest,
  publicKey: CryptoKey,
  issuer: SigningIntermediate,
  seam: CryptoSeam,
): Promise<MintedLeaf> {
  const sans = leafNames(req.scope, req.service, req.trustDomain);
  assertNamesInside(sans, permittedNamesFor(issuer.scope, req.trustDomain), issuer.scope);
  const validity = validityWithin('leaf', req.now, req.ttl, {
    notBefore: issuer.cert.notBefore,
    notAfter: issuer.cert.notAfter,
    label: `${issuer.scope} intermediate`,
    file: `bundles/${issuer.scope}/intermediate.pem`,
  });
  const serial = randomSerial(seam);
  const cert = await seam.signCertificate({
    serial,
    subject: `CN=${sans.dns[0]}`,
    issuer: issuer.cert.subject,
    ...validity,
    subjectPublicKey: publicKey,
    signingKey: issuer.key,
    signingAlgorithm: issuer.algorithm,
    extensions: await extensionsFor(PROFILES.leaf, {
      subjectPublicKey: publicKey,
      issuerPublicKey: issuer.cert.publicKey,
      sans,
    }),
  });
  return {
    service: req.service.name,
    cert,
    subject: cert.subject,
    certPem: certificatePem(cert),
    record: {
      serial: cert.serialNumber,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      issuer: fingerprint(issuer.cert),
      issuerKey: keyId(issuer.cert),
      fingerprint: fingerprint(cert),
      ...sans,
    },
  };
}

const SAN_OID = '2.5.29.17';
const SKI_OID = '2.5.29.14';

/**
 * The scope's leaf template: the leaf profile's extensions encoded once by the
 * same function as the one-leaf path, the per-leaf ones (SKI, SAN) left as slots.
 */
export async function leafTemplateFor(issuer: SigningIntermediate, algorithm: KeyAlgorithm): Promise<LeafTemplate> {
  // The issuer's own public key stands in for the leaf's: only the shape of the SKI matters here.
  const placeholder = await issuer.cert.publicKey.export();
  const exts = await extensionsFor(PROFILES.leaf, {
    subjectPublicKey: placeholder,
    issuerPublicKey: issuer.cert.publicKey,
    sans: { uris: ['spiffe://x.invalid/x'], dns: ['x.invalid'] },
  });
  return {
    algorithm,
    signing: issuer.algorithm,
    issuerName: new Uint8Array(new x509.Name(issuer.cert.subject).toArrayBuffer()),
    extensions: exts.map((e) =>
      e.type === SKI_OID ? 'subjectKeyIdentifier' : e.type === SAN_OID ? 'subjectAltName' : new Uint8Array(e.rawData),
    ),
  };
}

/**
 * The per-leaf checks and inputs of a scope's batch, with its randomness drawn
 * from the seam in one call: serials and key secrets.
 */
export async function leafBatch(
  scope: string,
  reqs: LeafRequest[],
  issuer: SigningIntermediate,
  seam: CryptoSeam,
): Promise<LeafBatch> {
  const algorithm = reqs[0]?.algorithm ?? 'ecdsa-p256';
  const template = await leafTemplateFor(issuer, algorithm);
  const secretBytes = LEAF_SECRET_BYTES[algorithm];
  const random = seam.randomBytes(reqs.length * (16 + secretBytes));
  const permitted = permittedNamesFor(issuer.scope, reqs[0]?.trustDomain ?? '');
  const bound = {
    notBefore: issuer.cert.notBefore,
    notAfter: issuer.cert.notAfter,
    label: `${issuer.scope} intermediate`,
    file: `bundles/${issuer.scope}/intermediate.pem`,
  };
  const orders = reqs.map((req, i) => {
    if (req.algorithm !== algorithm) throw new Error('one batch holds one leaf algorithm');
    const sans = leafNames(req.scope, req.service, req.trustDomain);
    assertNamesInside(
      sans,
      req.trustDomain === reqs[0]!.trustDomain ? permitted : permittedNamesFor(issuer.scope, req.trustDomain),
      issuer.scope,
    );
    const at = i * (16 + secretBytes);
    return {
      service: req.service.name,
      // randomSerial's form: 0x01 then 128 random bits.
      serial: `01${Buffer.from(random.subarray(at, at + 16)).toString('hex')}`,
      ...validityWithin('leaf', req.now, req.ttl, bound),
      ...sans,
      secret: random.subarray(at + 16, at + 16 + secretBytes),
    };
  });
  return {
    scope,
    template,
    orders,
    issuer: { fingerprint: fingerprint(issuer.cert), key: keyId(issuer.cert), pem: certificatePem(issuer.cert) },
  };
}

/** Turns a batch's encoded leaves into MintedLeaf: PEM, record; the certificate object only when asked for. */
export function mintedFromBatch(b: LeafBatch, encoded: EncodedLeaf[]): MintedLeaf[] {
  const byService = new Map(b.orders.map((o) => [o.service, o]));
  return encoded.map((e) => {
    const o = byService.get(e.service)!;
    let cert: Certificate | undefined;
    // Parsed from the PEM when asked: holding no DER keeps a 50k-leaf renew smaller.
    const certPem = e.certPem;
    return {
      service: e.service,
      get cert() {
        return (cert ??= parseCertificate(certPem));
      },
      subject: `CN=${o.dns[0]}`,
      certPem: e.certPem,
      keyPem: e.keyPem,
      record: {
        serial: o.serial,
        notBefore: secondsOf(o.notBefore),
        notAfter: secondsOf(o.notAfter),
        issuer: b.issuer.fingerprint,
        issuerKey: b.issuer.key,
        fingerprint: e.fingerprint,
        uris: o.uris,
        dns: o.dns,
      },
    };
  });
}

/** What the certificate carries: whole seconds (the record matches the parsed certificate). */
const secondsOf = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);
