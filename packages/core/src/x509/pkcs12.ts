/**
 * PKCS#12 files the JVM loads: a truststore of a scope's anchors and a
 * per-service keystore (leaf key, leaf, chain). Pure: bytes in, bytes out; the
 * password comes from the caller and is never written anywhere but the MAC
 * and the key's encryption. What Java 17's default PKCS12 keystore reads:
 * PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for the key, an HMAC-SHA256 MAC.
 * The same content under the same password gives the same bytes (every salt
 * and IV derives from both), so a deploy that changed nothing changes no file.
 */
import 'reflect-metadata';
import { createCipheriv, createHash, createHmac, createPrivateKey, pbkdf2Sync } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { ContentInfo, id_data } from '@peculiar/asn1-cms';
import { DigestInfo } from '@peculiar/asn1-rsa';
import {
  AuthenticatedSafe,
  CertBag,
  MacData,
  PFX,
  PKCS12Attribute,
  SafeBag,
  SafeContents,
  id_certBag,
  id_pkcs8ShroudedKeyBag,
  id_x509Certificate,
} from '@peculiar/asn1-pfx';
import { fingerprint, type Certificate } from './certificates.js';
import { TrellisError } from '../model/errors.js';

const ID_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
const ID_LOCAL_KEY_ID = '1.2.840.113549.1.9.21';
/** Oracle's trusted-key-usage attribute: without it Java loads a certificate bag as no entry at all. */
const ID_ORACLE_TRUSTED_KEY_USAGE = '2.16.840.1.113894.746875.1.1';
const ANY_EXTENDED_KEY_USAGE_DER = Buffer.from('0604551d2500', 'hex'); // OID 2.5.29.37.0
const ID_SHA256 = '2.16.840.1.101.3.4.2.1';
/** Java's own default for PKCS12 MACs and key encryption since JDK 12. */
const ITERATIONS = 10_000;

/** A truststore entry: the alias keytool lists it under, and the anchor. */
export interface TrustedEntry {
  alias: string;
  cert: Certificate;
}

/** The alias of an anchor, as the bundle's anchors/ directory names it: `<scope>-<fingerprint prefix>`. */
export function anchorAlias(scope: string, cert: Certificate): string {
  return `${scope}-${fingerprint(cert).slice('sha256:'.length, 'sha256:'.length + 16)}`;
}

/**
 * A PKCS#12 truststore: each anchor a trustedCertEntry for Java (anyExtendedKeyUsage), integrity under the password's
 * MAC.
 */
export function pkcs12Truststore(entries: TrustedEntry[], password: string): Uint8Array {
  const bags = entries.map((e) =>
    certBag(e.cert, [
      attribute(ID_FRIENDLY_NAME, bmpString(e.alias)),
      attribute(ID_ORACLE_TRUSTED_KEY_USAGE, ANY_EXTENDED_KEY_USAGE_DER),
    ]),
  );
  return pfx([bags], password);
}

/** A PKCS#12 keystore: one PrivateKeyEntry `alias` (the key PBES2-encrypted, the leaf, then the rest of the chain). */
export function pkcs12Keystore(
  p: { alias: string; keyPem: string; chain: Certificate[] },
  password: string,
): Uint8Array {
  const [leaf, ...rest] = p.chain;
  if (!leaf)
    throw new TrellisError('usage', 'a keystore needs the leaf certificate', {
      hint: 'give the leaf output directory renew wrote (cert.pem, chain.pem, key.pem)',
    });
  const localKeyId = attribute(
    ID_LOCAL_KEY_ID,
    derOctetString(createHash('sha1').update(Buffer.from(leaf.rawData)).digest()),
  );
  const name = attribute(ID_FRIENDLY_NAME, bmpString(p.alias));
  const shrouded = pbes2(createPrivateKey(p.keyPem).export({ type: 'pkcs8', format: 'der' }), password);
  const keyBag = new SafeBag({
    bagId: id_pkcs8ShroudedKeyBag,
    bagValue: toArrayBuffer(shrouded),
    bagAttributes: [name, localKeyId],
  });
  const certBags = [certBag(leaf, [name, localKeyId]), ...rest.map((c) => certBag(c, []))];
  return pfx([[keyBag], certBags], password);
}

function certBag(cert: Certificate, attrs: PKCS12Attribute[]): SafeBag {
  const value = AsnConvert.serialize(
    new CertBag({ certId: id_x509Certificate, certValue: AsnConvert.serialize(new OctetString(cert.rawData)) }),
  );
  return new SafeBag({ bagId: id_certBag, bagValue: value, ...(attrs.length ? { bagAttributes: attrs } : {}) });
}

/**
 * The PFX: each group of bags one plain `data` content (the key bag is shrouded itself), then the MAC over them all.
 */
function pfx(groups: SafeBag[][], password: string): Uint8Array {
  const safe = new AuthenticatedSafe(groups.map((bags) => dataContent(AsnConvert.serialize(new SafeContents(bags)))));
  const safeDer = Buffer.from(AsnConvert.serialize(safe));
  const salt = derivedBytes(password, 'mac salt', safeDer, 16);
  const macKey = pkcs12Kdf(password, salt, 3, ITERATIONS, 32);
  const mac = createHmac('sha256', macKey).update(safeDer).digest();
  const out = new PFX({
    version: 3,
    authSafe: dataContent(safeDer),
    macData: new MacData({
      mac: new DigestInfo({
        digestAlgorithm: new AlgorithmIdentifier({ algorithm: ID_SHA256, parameters: null }),
        digest: new OctetString(mac),
      }),
      macSalt: new OctetString(salt),
      iterations: ITERATIONS,
    }),
  });
  return new Uint8Array(AsnConvert.serialize(out));
}

/**
 * Salt or IV bytes for `content` under `password`: equal inputs, equal files. It reveals only that two files hold the
 * same content under the same password, which their plaintext parts show anyway.
 */
function derivedBytes(password: string, label: string, content: Uint8Array, size: number): Buffer {
  return createHmac('sha256', password).update(`trellis pkcs12 ${label}\0`).update(content).digest().subarray(0, size);
}

const OID_PBES2 = '06092a864886f70d01050d'; // 1.2.840.113549.1.5.13
const OID_PBKDF2 = '06092a864886f70d01050c'; // 1.2.840.113549.1.5.12
const HMAC_SHA256 = '300c06082a864886f70d02090500'; // AlgorithmIdentifier hmacWithSHA256, NULL parameters
const OID_AES256_CBC = '060960864801650304012a'; // 2.16.840.1.101.3.4.1.42

/** An EncryptedPrivateKeyInfo (RFC 8018 PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC), as Node would write it. */
function pbes2(pkcs8: Buffer, password: string): Buffer {
  const salt = derivedBytes(password, 'key salt', pkcs8, 16);
  const iv = derivedBytes(password, 'key iv', pkcs8, 16);
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, ITERATIONS, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
  const hex = (h: string) => Buffer.from(h, 'hex');
  const kdf = der(0x30, hex(OID_PBKDF2), der(0x30, der(0x04, salt), derInteger(ITERATIONS), hex(HMAC_SHA256)));
  const scheme = der(0x30, hex(OID_AES256_CBC), der(0x04, iv));
  return der(0x30, der(0x30, hex(OID_PBES2), der(0x30, kdf, scheme)), der(0x04, encrypted));
}

function der(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

function derInteger(n: number): Buffer {
  const bytes: number[] = [];
  for (let x = n; x > 0; x >>= 8) bytes.unshift(x & 0xff);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return der(0x02, Buffer.from(bytes));
}

function dataContent(der: ArrayBuffer | Uint8Array): ContentInfo {
  return new ContentInfo({ contentType: id_data, content: AsnConvert.serialize(new OctetString(der)) });
}

function attribute(id: string, valueDer: Uint8Array): PKCS12Attribute {
  // Set after construction: asn1-pfx 2.11.1's constructor drops its params (`Object.assign(params)`).
  return Object.assign(new PKCS12Attribute(), { attrId: id, attrValues: [toArrayBuffer(valueDer)] });
}

/**
 * RFC 7292 appendix B.2 with SHA-256 (u = 32, v = 64): the MAC key from the
 * password as a NUL-terminated BMPString. `id` 3 derives a MAC key.
 */
function pkcs12Kdf(password: string, salt: Uint8Array, id: number, iterations: number, size: number): Buffer {
  const u = 32;
  const v = 64;
  const pw = Buffer.alloc((password.length + 1) * 2);
  for (let i = 0; i < password.length; i++) pw.writeUInt16BE(password.charCodeAt(i), 2 * i);
  const stretch = (b: Uint8Array): Buffer => {
    const out = Buffer.alloc(b.length ? v * Math.ceil(b.length / v) : 0);
    for (let i = 0; i < out.length; i++) out[i] = b[i % b.length]!;
    return out;
  };
  const d = Buffer.alloc(v, id);
  const i = Buffer.concat([stretch(salt), stretch(pw)]);
  const blocks: Buffer[] = [];
  for (let n = 0; n * u < size; n++) {
    let a = createHash('sha256').update(d).update(i).digest();
    for (let c = 1; c < iterations; c++) a = createHash('sha256').update(a).digest();
    blocks.push(a);
    const b = stretch(a);
    // I_j = (I_j + B + 1) mod 2^(8v), for each v-byte block of I.
    for (let j = 0; j < i.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const s = i[j + k]! + b[k]! + carry;
        i[j + k] = s & 0xff;
        carry = s >> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, size);
}

function bmpString(s: string): Uint8Array {
  const body = Buffer.alloc(s.length * 2);
  for (let i = 0; i < s.length; i++) body.writeUInt16BE(s.charCodeAt(i), 2 * i);
  return Buffer.concat([Buffer.from([0x1e]), derLength(body.length), body]);
}

function derOctetString(b: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from([0x04]), derLength(b.length), b]);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x >>= 8) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}
