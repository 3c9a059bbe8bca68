/**
 * Key algorithms and the byte-level primitives (PEM, hashes, raw signatures).
 * The seam every certificate and CRL goes through is `CryptoSeam` in seam.ts,
 * so tests can inject determinism and an HSM or a faster backend can drop in.
 */
import 'reflect-metadata';
import { KeyObject, createHash, createPrivateKey, createPublicKey, sign, verify, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export const KEY_ALGORITHMS = ['ecdsa-p256', 'ecdsa-p384', 'ed25519'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

interface AlgorithmSpec {
  generate: EcKeyGenParams | Algorithm;
  /** What @peculiar/x509 signs certificates and CRLs with. */
  signing: Algorithm | EcdsaParams;
}

export const ALGORITHM_SPECS: Record<KeyAlgorithm, AlgorithmSpec> = {
  'ecdsa-p256': {
    generate: { name: 'ECDSA', namedCurve: 'P-256' },
    signing: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
  },
  'ecdsa-p384': {
    generate: { name: 'ECDSA', namedCurve: 'P-384' },
    signing: { name: 'ECDSA', hash: 'SHA-384' } as EcdsaParams,
  },
  ed25519: { generate: { name: 'Ed25519' }, signing: { name: 'Ed25519' } },
};

/**
 * A positive 128-bit serial from the CSPRNG. The fixed 0x01 lead byte keeps the
 * DER INTEGER positive and minimally encoded without spending random bits.
 */
export function randomSerial(seam: { randomBytes(n: number): Uint8Array }): string {
  return `01${Buffer.from(seam.randomBytes(16)).toString('hex')}`;
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey));
  return pemEncode('PRIVATE KEY', der);
}

/** The algorithm of a PKCS#8 private key, or undefined when trellis does not use that kind. */
function privateKeyAlgorithm(pem: string): KeyAlgorithm | undefined {
  const k = createPrivateKey(pem);
  if (k.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (k.asymmetricKeyType !== 'ec') return undefined;
  const curve = k.asymmetricKeyDetails?.namedCurve;
  return curve === 'prime256v1' ? 'ecdsa-p256' : curve === 'secp384r1' ? 'ecdsa-p384' : undefined;
}

/** The algorithm of a SubjectPublicKeyInfo, or undefined when trellis does not use that kind (RSA, other curves). */
export function publicKeyAlgorithm(spki: Uint8Array): KeyAlgorithm | undefined {
  const k = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  if (k.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (k.asymmetricKeyType !== 'ec') return undefined;
  const curve = k.asymmetricKeyDetails?.namedCurve;
  return curve === 'prime256v1' ? 'ecdsa-p256' : curve === 'secp384r1' ? 'ecdsa-p384' : undefined;
}

/** Imports a PKCS#8 PEM private key as a signing CryptoKey. */
export async function importSigningKey(pem: string): Promise<{ key: CryptoKey; algorithm: KeyAlgorithm }> {
  const algorithm = privateKeyAlgorithm(pem);
  if (!algorithm) throw new Error('unsupported private key algorithm');
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  const key = await webcrypto.subtle.importKey(
    'pkcs8',
    der,
    ALGORITHM_SPECS[algorithm].generate as EcKeyImportParams,
    false,
    ['sign'],
  );
  return { key: key as unknown as CryptoKey, algorithm };
}

/** SubjectPublicKeyInfo DER of the public half of a PKCS#8 private key. */
export function publicKeyDerOf(privatePem: string): Buffer {
  return createPublicKey(createPrivateKey(privatePem)).export({ type: 'spki', format: 'der' });
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function pemEncode(label: string, der: Uint8Array): string {
  // Lines of 64 by slicing, not a regex: a renew PEM-encodes two of these a leaf (leaf-template.ts repeats this).
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString('base64');
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += `${b64.slice(i, i + 64)}\n`;
  return `${out}-----END ${label}-----\n`;
}

/** Every PEM block of `label` in `text`, as DER. */
export function pemDecodeAll(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

const DIGEST: Record<KeyAlgorithm, string | null> = { 'ecdsa-p256': 'sha256', 'ecdsa-p384': 'sha384', ed25519: null };

/** A detached signature over `data` (DER-encoded for ECDSA). */
export function signBytes(key: CryptoKey, algorithm: KeyAlgorithm, data: Uint8Array): Buffer {
  return sign(DIGEST[algorithm], data, KeyObject.from(key as webcrypto.CryptoKey));
}

/** Checks a signature made by signBytes against a SubjectPublicKeyInfo (or the public key already built from one). */
export function verifyBytes(spki: Uint8Array | KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  const key =
    spki instanceof KeyObject ? spki : createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  const alg: KeyAlgorithm =
    key.asymmetricKeyType === 'ed25519'
      ? 'ed25519'
      : key.asymmetricKeyDetails?.namedCurve === 'secp384r1'
        ? 'ecdsa-p384'
        : 'ecdsa-p256';
  try {
    return verify(DIGEST[alg], data, key, signature);
  } catch {
    return false;
  }
}
