/**
 * OpenSSL's subject name hash (X509_NAME_hash, `openssl x509 -subject_hash`):
 * the name under which a `CApath` directory holds a CA (`<hash>.0`). SHA-1 of
 * the name's canonical encoding, first four bytes read little-endian.
 *
 * The canonical encoding (OpenSSL's x509_name_canon) is each RDN's DER SET,
 * concatenated without the outer SEQUENCE, where every string value of a
 * text type is re-encoded as a UTF8String, ASCII-lowercased, trimmed, and each
 * inner run of whitespace folded to one space. Values of other types are kept
 * byte for byte.
 */
import { createHash } from 'node:crypto';
import type { Certificate } from './certificates.js';

interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  body: number;
  /** Offset just past the content. */
  end: number;
}

function tlvAt(der: Uint8Array, at: number): Tlv {
  if (at + 2 > der.length) throw new Error('truncated DER');
  const tag = der[at]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte DER tags are not expected in a name');
  let len = der[at + 1]!;
  let body = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[body + i]!;
    body += n;
  }
  if (body + len > der.length) throw new Error('truncated DER');
  return { tag, start: at, body, end: body + len };
}

function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.body; at < parent.end; at = out.at(-1)!.end) out.push(tlvAt(der, at));
  return out;
}

function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag: number, content: Uint8Array) =>
  Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);

/** The DER of the subject Name inside a certificate's DER: Certificate → tbsCertificate → subject. */
function subjectDer(certDer: Uint8Array): Buffer {
  const tbs = children(certDer, tlvAt(certDer, 0))[0]!;
  const fields = children(certDer, tbs);
  // version [0] is optional; then serial, signature, issuer, validity, subject.
  const subject = fields[fields[0]!.tag === 0xa0 ? 5 : 4]!;
  return Buffer.from(certDer.subarray(subject.start, subject.end));
}

const UTF8 = 0x0c;
/** The text types OpenSSL canonicalizes (ASN1_MASK_CANON), and how each decodes. */
const TEXT: Record<number, (b: Buffer) => string> = {
  [UTF8]: (b) => b.toString('utf8'),
  0x13: (b) => b.toString('latin1'), // PrintableString
  0x14: (b) => b.toString('latin1'), // T61String, read by OpenSSL as Latin-1
  0x16: (b) => b.toString('latin1'), // IA5String
  0x1a: (b) => b.toString('latin1'), // VisibleString
  0x1e: (b) => Buffer.from(b).swap16().toString('utf16le'), // BMPString: UTF-16BE
  // UniversalString
  0x1c: (b) => [...Array(b.length / 4).keys()].map((i) => String.fromCodePoint(b.readUInt32BE(i * 4))).join(''),
};

const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/** OpenSSL's asn1_string_canon on UTF-8 bytes: trim, fold inner whitespace, lowercase ASCII only. */
function canonText(utf8: Buffer): Buffer {
  let from = 0;
  let to = utf8.length;
  while (from < to && isSpace(utf8[from]!)) from++;
  while (to > from && isSpace(utf8[to - 1]!)) to--;
  const out: number[] = [];
  for (let i = from; i < to; i++) {
    const c = utf8[i]!;
    if (isSpace(c)) {
      out.push(0x20);
      while (i + 1 < to && isSpace(utf8[i + 1]!)) i++;
    } else out.push(c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
  }
  return Buffer.from(out);
}

/** The canonical encoding of a DER Name, as OpenSSL hashes it. */
function canonicalNameEncoding(nameDer: Uint8Array): Buffer {
  const name = tlvAt(nameDer, 0);
  return Buffer.concat(
    children(nameDer, name).map((rdn) => {
      const avas = children(nameDer, rdn).map((ava) => {
        const [oid, value] = children(nameDer, ava);
        const raw = Buffer.from(nameDer.subarray(value!.body, value!.end));
        const decode = TEXT[value!.tag];
        const canon = decode
          ? tlv(UTF8, canonText(Buffer.from(decode(raw), 'utf8')))
          : Buffer.from(nameDer.subarray(value!.start, value!.end));
        return tlv(0x30, Buffer.concat([Buffer.from(nameDer.subarray(oid!.start, oid!.end)), canon]));
      });
      // A DER SET OF is ordered by encoding.
      return tlv(0x31, Buffer.concat(avas.sort(Buffer.compare)));
    }),
  );
}

/** `openssl x509 -subject_hash`: 8 lowercase hex digits. */
export function subjectHash(cert: Certificate): string {
  const md = createHash('sha1')
    .update(canonicalNameEncoding(subjectDer(new Uint8Array(cert.rawData))))
    .digest();
  return md.readUInt32LE(0).toString(16).padStart(8, '0');
}
