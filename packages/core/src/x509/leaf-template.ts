/**
 * The fast leaf encoder: a scope's leaves differ only in serial, validity,
 * subject, key and SANs, so everything else of the TBSCertificate is DER
 * encoded once per scope (a `LeafTemplate`, built in leaf.ts from the same
 * profile and @peculiar/x509 classes as the one-leaf path) and each leaf is
 * assembled by concatenation. Its TBSCertificate is tested byte-identical to
 * the @peculiar/x509 path for the same inputs (tests/leaf-template.test.ts).
 *
 * This module imports node:crypto only, so a worker thread loads it alone
 * (`@trellis/core/leaf-template`). Keys are derived from secrets the caller
 * drew from the CryptoSeam: no randomness of its own, no OpenSSL encoder.
 */
import { type KeyObject, createECDH, createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';

type KeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519';

/**
 * Everything of a scope's leaves that does not change from leaf to leaf, as plain data (it crosses to worker threads).
 */
export interface LeafTemplate {
  /** The leaves' key algorithm. */
  algorithm: KeyAlgorithm;
  /** The issuing intermediate's key algorithm: the signature's. */
  signing: KeyAlgorithm;
  /** The issuer Name, DER. */
  issuerName: Uint8Array;
  /** The profile's extensions in order: fixed DER, or a slot filled per leaf. */
  extensions: (Uint8Array | 'subjectKeyIdentifier' | 'subjectAltName')[];
}

/** One leaf to mint: the per-leaf inputs, and the seam's secret its key is derived from. */
export interface LeafOrder {
  service: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  uris: string[];
  dns: string[];
  /** LEAF_SECRET_BYTES[algorithm] bytes from the CryptoSeam. */
  secret: Uint8Array;
}

export interface EncodedLeaf {
  service: string;
  /** The certificate, DER. */
  der: Uint8Array;
  certPem: string;
  /** The leaf's private key, PKCS#8 PEM. */
  keyPem: string;
  /** `sha256:<hex>` of the DER. */
  fingerprint: string;
}

/**
 * Seam bytes per leaf key: EC scalars take 64 extra bits so the reduction mod n is unbiased (FIPS 186-5 A.2.1); Ed25519
 * takes its 32-byte seed.
 */
export const LEAF_SECRET_BYTES: Record<KeyAlgorithm, number> = { 'ecdsa-p256': 40, 'ecdsa-p384': 56, ed25519: 32 };

// ---------------------------------------------------------------------------
// DER
// ---------------------------------------------------------------------------

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const hex = (h: string) => Buffer.from(h, 'hex');
const SEQUENCE = 0x30;

/** A DER INTEGER from a big-endian hex magnitude: minimal, and positive (a 0x00 lead before a high bit). */
function derIntegerHex(h: string): Buffer {
  let b = Buffer.from(h.length % 2 ? `0${h}` : h, 'hex');
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && b[i + 1]! < 0x80) i++;
  b = b.subarray(i);
  if (b.length === 0) b = Buffer.from([0]);
  return tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Z. */
function derTime(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050
    ? tlv(0x17, Buffer.from(`${s.slice(2)}Z`, 'latin1'))
    : tlv(0x18, Buffer.from(`${s}Z`, 'latin1'));
}

const SIGNATURE_ALGORITHM: Record<KeyAlgorithm, Buffer> = {
  'ecdsa-p256': hex('300a06082a8648ce3d040302'), // ecdsa-with-SHA256
  'ecdsa-p384': hex('300a06082a8648ce3d040303'), // ecdsa-with-SHA384
  ed25519: hex('300506032b6570'),
};
const DIGEST: Record<KeyAlgorithm, string | null> = { 'ecdsa-p256': 'sha256', 'ecdsa-p384': 'sha384', ed25519: null };

interface Curve {
  name: string;
  oid: Buffer;
  bytes: number;
  n: bigint;
}
const EC_PUBLIC_KEY = hex('06072a8648ce3d0201');
const CURVES: Record<'ecdsa-p256' | 'ecdsa-p384', Curve> = {
  'ecdsa-p256': {
    name: 'prime256v1',
    oid: hex('06082a8648ce3d030107'),
    bytes: 32,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  },
  'ecdsa-p384': {
    name: 'secp384r1',
    oid: hex('06052b81040022'),
    bytes: 48,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  },
};

const VERSION_V3 = hex('a003020102');
const ZERO = Buffer.from([0]);
const INTEGER_0 = hex('020100');
const INTEGER_1 = hex('020101');
const ECDH_BY_CURVE: Record<string, ReturnType<typeof createECDH>> = {};
const ALG_ID: Partial<Record<KeyAlgorithm, Buffer>> = {};
const OID_COMMON_NAME = hex('0603550403');
const OID_SKI = hex('0603551d0e');
const OID_SAN = hex('0603551d11');

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

export interface LeafKeyPair {
  pkcs8: Buffer;
  spki: Buffer;
  /** The subjectPublicKey BIT STRING's bits: what the SKI hashes. */
  point: Buffer;
}

/** The leaf key of `secret`: an EC scalar in [1, n-1] (or an Ed25519 seed), its public point, PKCS#8 and SPKI DER. */
export function leafKeyPair(algorithm: KeyAlgorithm, secret: Uint8Array): LeafKeyPair {
  if (secret.length !== LEAF_SECRET_BYTES[algorithm])
    throw new Error(`a ${algorithm} leaf key takes ${LEAF_SECRET_BYTES[algorithm]} secret bytes, got ${secret.length}`);
  if (algorithm === 'ed25519') {
    const pkcs8 = Buffer.concat([hex('302e020100300506032b657004220420'), secret]);
    const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({
      format: 'der',
      type: 'spki',
    });
    return { pkcs8, spki, point: spki.subarray(spki.length - 32) };
  }
  const c = CURVES[algorithm];
  const d = (BigInt(`0x${Buffer.from(secret).toString('hex')}`) % (c.n - 1n)) + 1n;
  const scalar = Buffer.from(d.toString(16).padStart(c.bytes * 2, '0'), 'hex');
  // One ECDH object per curve and thread: setPrivateKey replaces its key and computes the point.
  const ecdh = (ECDH_BY_CURVE[c.name] ??= createECDH(c.name));
  ecdh.setPrivateKey(scalar);
  const point = ecdh.getPublicKey();
  const algId = (ALG_ID[algorithm] ??= tlv(SEQUENCE, EC_PUBLIC_KEY, c.oid));
  const bits = tlv(0x03, ZERO, point);
  // The ECPrivateKey (RFC 5915) as OpenSSL writes it inside PKCS#8: the curve is in the AlgorithmIdentifier, the public
  // key in [1].
  const ecPrivateKey = tlv(SEQUENCE, INTEGER_1, tlv(0x04, scalar), tlv(0xa1, bits));
  return { pkcs8: tlv(SEQUENCE, INTEGER_0, algId, tlv(0x04, ecPrivateKey)), spki: tlv(SEQUENCE, algId, bits), point };
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/**
 * `CN=<name>` as @peculiar/x509 encodes it: one RDN, a PrintableString when the name allows (a DNS name always does),
 * else UTF8String.
 */
function commonNameDer(name: string): Buffer {
  const value = PRINTABLE.test(name) ? tlv(0x13, Buffer.from(name, 'latin1')) : tlv(0x0c, Buffer.from(name, 'utf8'));
  return tlv(SEQUENCE, tlv(0x31, tlv(SEQUENCE, OID_COMMON_NAME, value)));
}

function extension(oid: Buffer, value: Buffer): Buffer {
  return tlv(SEQUENCE, oid, tlv(0x04, value));
}

/** GeneralNames: URIs then DNS names, in the order the profile lists them. */
function subjectAltNameDer(uris: string[], dns: string[]): Buffer {
  return extension(
    OID_SAN,
    tlv(
      SEQUENCE,
      ...uris.map((u) => tlv(0x86, Buffer.from(u, 'latin1'))),
      ...dns.map((n) => tlv(0x82, Buffer.from(n, 'latin1'))),
    ),
  );
}

// A batch's leaves share their validity: encode each distinct one once.
const validities = new Map<string, Buffer>();
function validityDer(notBefore: Date, notAfter: Date): Buffer {
  const k = `${notBefore.getTime()}/${notAfter.getTime()}`;
  let v = validities.get(k);
  if (!v) {
    if (validities.size > 64) validities.clear();
    v = tlv(SEQUENCE, derTime(notBefore), derTime(notAfter));
    validities.set(k, v);
  }
  return v;
}

/** The TBSCertificate of one leaf, DER. */
export function leafTbs(
  t: LeafTemplate,
  o: Omit<LeafOrder, 'secret'>,
  key: Pick<LeafKeyPair, 'spki' | 'point'>,
): Buffer {
  const exts = t.extensions.map((e) => {
    if (e === 'subjectKeyIdentifier')
      return extension(OID_SKI, tlv(0x04, createHash('sha1').update(key.point).digest()));
    if (e === 'subjectAltName') return subjectAltNameDer(o.uris, o.dns);
    return e;
  });
  return tlv(
    SEQUENCE,
    VERSION_V3,
    derIntegerHex(o.serial),
    SIGNATURE_ALGORITHM[t.signing],
    t.issuerName,
    validityDer(o.notBefore, o.notAfter),
    commonNameDer(o.dns[0]!),
    key.spki,
    tlv(0xa3, tlv(SEQUENCE, ...exts)),
  );
}

/** crypto.ts's pemEncode, repeated here so a worker loads node:crypto alone. */
function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString('base64');
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += `${b64.slice(i, i + 64)}\n`;
  return `${out}-----END ${label}-----\n`;
}

/** Derives each order's key, fills the template and signs it with the intermediate's key. */
export function signLeaves(t: LeafTemplate, orders: LeafOrder[], signingKey: KeyObject): EncodedLeaf[] {
  return orders.map((o) => {
    const key = leafKeyPair(t.algorithm, o.secret);
    const tbs = leafTbs(t, o, key);
    const signature = sign(DIGEST[t.signing], tbs, signingKey);
    const der = tlv(SEQUENCE, tbs, SIGNATURE_ALGORITHM[t.signing], tlv(0x03, ZERO, signature));
    return {
      service: o.service,
      der,
      certPem: pem('CERTIFICATE', der),
      keyPem: pem('PRIVATE KEY', key.pkcs8),
      fingerprint: `sha256:${createHash('sha256').update(der).digest('hex')}`,
    };
  });
}
