/**
 * A host-held key's certificate request (PKCS#10), decoded and its
 * self-signature checked by @peculiar/x509: what renew learns from a CSR is
 * its public key and the proof that the requester holds the private half;
 * the names it asks for are ignored (trellis derives them from the scope).
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { ECDSASigValue } from '@peculiar/asn1-ecc';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as x509 from '@peculiar/x509';
import { ALGORITHM_SPECS, publicKeyAlgorithm, sha256Hex, type KeyAlgorithm } from '../crypto/crypto.js';

export interface HostKeyRequest {
  /** `sha256:<hex>` of the SubjectPublicKeyInfo: the key's name, as keyId names a certificate's key. */
  keyId: string;
  /** The SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  /** undefined: a kind of key trellis does not sign for. */
  algorithm?: KeyAlgorithm;
  /** The self-signature verifies with the request's own key: the requester holds the private key. */
  possessed: boolean;
}

const BLOCK = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----[\s\S]*?-----END (NEW )?CERTIFICATE REQUEST-----/g;

/** Decodes one PEM certificate request; throws an Error saying what is wrong with it. */
export async function readCertificateRequest(pem: string): Promise<HostKeyRequest> {
  const blocks = pem.match(BLOCK) ?? [];
  if (blocks.length !== 1) throw new Error(`holds ${blocks.length} CERTIFICATE REQUEST blocks where one belongs`);
  if (pem.replace(blocks[0]!, '').trim()) throw new Error('holds data outside its one CERTIFICATE REQUEST block');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(blocks[0]!.replace(/(BEGIN|END) NEW /g, '$1 '));
  } catch (e) {
    throw new Error(`is not a PKCS#10 certificate request (${(e as Error).message})`);
  }
  if (!isDistinguishedEncoding(new Uint8Array(csr.rawData))) {
    throw new Error('is not in DER: the request, or its signature value, does not re-encode to the same bytes');
  }
  const spki = new Uint8Array(csr.publicKey.rawData);
  let algorithm: KeyAlgorithm | undefined;
  try {
    algorithm = publicKeyAlgorithm(spki);
  } catch (e) {
    throw new Error(`carries a public key that does not parse (${(e as Error).message})`);
  }
  // A key of a kind WebCrypto cannot verify here is refused for its kind, not for its signature.
  let possessed = false;
  if (algorithm) {
    try {
      possessed = await csr.verify();
    } catch {
      possessed = false;
    }
  }
  return { keyId: `sha256:${sha256Hex(spki)}`, spki, algorithm, possessed };
}

/**
 * The parsers accept BER and some malformed lengths (a changed length byte, a
 * sign bit flipped in an ECDSA integer), so one request could be written many
 * ways: only the one encoding that re-encodes to itself is a request here.
 */
function isDistinguishedEncoding(der: Uint8Array): boolean {
  const same = (a: ArrayBuffer, b: Uint8Array) => Buffer.from(a).equals(b);
  try {
    const request = AsnConvert.parse(der, CertificationRequest);
    if (!same(AsnConvert.serialize(request), der)) return false;
    if (!request.signatureAlgorithm.algorithm.startsWith('1.2.840.10045.4.')) return true;
    const signature = new Uint8Array(request.signature);
    return same(AsnConvert.serialize(AsnConvert.parse(signature, ECDSASigValue)), signature);
  } catch {
    return false;
  }
}

/** The request's public key as the certificate encoder takes it. */
export async function requestPublicKey(spki: Uint8Array, algorithm: KeyAlgorithm): Promise<CryptoKey> {
  const params =
    algorithm === 'ed25519'
      ? { name: 'Ed25519' }
      : { name: 'ECDSA', namedCurve: algorithm === 'ecdsa-p384' ? 'P-384' : 'P-256' };
  return (await webcrypto.subtle.importKey('spki', spki, params, true, ['verify'])) as unknown as CryptoKey;
}

/** A host's certificate request for its own key pair (`trellis-agent keygen`): the subject is a label only. */
export async function certificateRequestPem(
  keys: CryptoKeyPair,
  algorithm: KeyAlgorithm,
  name: string,
): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: ALGORITHM_SPECS[algorithm].signing,
  });
  return csr.toString('pem').replace(/\r\n/g, '\n').trimEnd() + '\n';
}
