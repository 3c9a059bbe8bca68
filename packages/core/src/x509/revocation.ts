/**
 * CRLs: the root CRL of intermediates (signed offline) and one leaf CRL per
 * scope (signed in CI by the scope's intermediates). One function signs both.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CRLNumber, id_ce_cRLNumber } from '@peculiar/asn1-x509';
import { ALGORITHM_SPECS, pemDecodeAll, pemEncode, type KeyAlgorithm } from '../crypto/crypto.js';
import { keyId, type Certificate } from './certificates.js';
import { own } from '../model/data.js';
import { notYetValid } from '../model/time.js';

export type Crl = x509.X509Crl;

export interface CrlEntry {
  serial: string;
  at: Date;
  reason: string;
}

const REASONS: Record<string, x509.X509CrlReason> = {
  keyCompromise: x509.X509CrlReason.keyCompromise,
  cACompromise: x509.X509CrlReason.cACompromise,
  affiliationChanged: x509.X509CrlReason.affiliationChanged,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
};

/** A CRL reason code for free text: its own name when it is one of RFC 5280's, else unspecified. */
function crlReason(text: string): x509.X509CrlReason {
  return own(REASONS, text) ?? x509.X509CrlReason.unspecified;
}

export interface CrlParams {
  /** The CA whose key signs: its subject is the CRL's issuer, unless `issuerName` says otherwise. */
  issuer: Certificate;
  issuerName?: string;
  key: CryptoKey;
  algorithm: KeyAlgorithm;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: CrlEntry[];
}

/** The default encoder behind `CryptoSeam.signCrl`: call it through a seam. */
export async function signCrl(p: CrlParams, crypto?: Crypto): Promise<string> {
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: p.issuerName ?? p.issuer.subject,
      thisUpdate: p.thisUpdate,
      // A CRL promises nothing past its issuer's life: whatever lifetime trellis.yaml sets, it ends with the issuer.
      nextUpdate: p.nextUpdate > p.issuer.notAfter ? p.issuer.notAfter : p.nextUpdate,
      signingKey: p.key,
      signingAlgorithm: ALGORITHM_SPECS[p.algorithm].signing,
      entries: p.entries.map((e) => ({ serialNumber: e.serial, revocationDate: e.at, reason: crlReason(e.reason) })),
      extensions: [
        await x509.AuthorityKeyIdentifierExtension.create(p.issuer.publicKey),
        // A number that grows with time: RFC 5280 wants it monotonic per issuer.
        new x509.Extension(
          id_ce_cRLNumber,
          false,
          AsnConvert.serialize(new CRLNumber(Math.floor(p.thisUpdate.getTime() / 1000))),
        ),
      ],
    },
    crypto,
  );
  // @peculiar/x509 labels CRLs "BEGIN CRL", which OpenSSL refuses.
  return pemEncode('X509 CRL', new Uint8Array(crl.rawData));
}

export function parseCrls(pem: string): Crl[] {
  return pemDecodeAll(pem, 'X509 CRL').map((der) => new x509.X509Crl(new Uint8Array(der)));
}

export async function crlSignedBy(crl: Crl, issuer: Certificate): Promise<boolean> {
  try {
    return await crl.verify({ publicKey: issuer.publicKey });
  } catch {
    return false;
  }
}

/**
 * A serial as a user reads it everywhere trellis prints one: upper-case hex in
 * whole bytes, as `openssl x509 -serial` prints it (what operators grep for).
 * Stored files keep their own form (serialKey compares any two).
 */
export function displaySerial(serial: string): string {
  const hex = serialKey(serial).toUpperCase();
  return hex.length % 2 ? `0${hex}` : hex;
}

/** Normalises a serial as trellis writes it (lower-case hex, no separators). */
export function serialKey(serial: string): string {
  return serial
    .toLowerCase()
    .replace(/[^0-9a-f]/g, '')
    .replace(/^0+(?=.)/, '');
}

/**
 * An intermediate's "anchor CRL": empty, named for the intermediate's own
 * issuer (the root), signed by the intermediate's key. OpenSSL's full-chain
 * CRL checking (nginx `ssl_crl`, haproxy `crl-file`) wants a CRL for every
 * certificate up to the anchor, and when the anchor is a non-self-signed
 * intermediate it checks that CRL's signature with the anchor's own key; a
 * real root CRL fails there (error 8), no CRL fails too (error 3). This one
 * passes, and says only what the anchor's explicit trust already says.
 * Revoking an intermediate is done by removing it from every bundle.
 */
export function signAnchorCrl(
  p: { issuer: Certificate; key: CryptoKey; algorithm: KeyAlgorithm; thisUpdate: Date; nextUpdate: Date },
  seam: { signCrl(p: CrlParams): Promise<string> },
): Promise<string> {
  return seam.signCrl({ ...p, issuerName: p.issuer.issuer, entries: [] });
}

/** The CRL `cert` signs for the certificates it issued. */
export async function crlOf(crls: Crl[], cert: Certificate): Promise<Crl | undefined> {
  for (const c of crls) if (c.issuer === cert.subject && (await crlSignedBy(c, cert))) return c;
  return undefined;
}

/** The anchor CRL of `cert` (see signAnchorCrl). */
export async function anchorCrlOf(crls: Crl[], cert: Certificate): Promise<Crl | undefined> {
  for (const c of crls)
    if (c.issuer === cert.issuer && c.issuer !== cert.subject && (await crlSignedBy(c, cert))) return c;
  return undefined;
}

/** A revocation as the store records it: `issuer` is the key id of the issuing CA. */
export interface Revocation {
  serial: string;
  issuer: string;
  notAfter: string;
  at: string;
  reason: string;
}

/** The entries of `issuer`'s CRL: what it revoked that has not yet expired anyway. */
export function crlEntriesFor(issuer: Certificate, revoked: Revocation[], now: Date): CrlEntry[] {
  const id = keyId(issuer);
  return revoked
    .filter((r) => r.issuer === id && new Date(r.notAfter) > now)
    .map((r) => ({ serial: r.serial, at: new Date(r.at), reason: r.reason }))
    .sort((a, b) => a.serial.localeCompare(b.serial));
}

/**
 * Why a CRL file must be re-signed, or undefined when it stands: one CRL per
 * issuer, each verifying under it, listing exactly its entries, with at least
 * half its life left.
 */
export async function crlStaleness(
  crlPem: string | undefined,
  issuers: Certificate[],
  anchors: Certificate[],
  revoked: Revocation[],
  now: Date,
): Promise<string | undefined> {
  if (crlPem === undefined) return 'missing';
  let crls: Crl[];
  try {
    crls = parseCrls(crlPem);
  } catch {
    return 'unreadable';
  }
  if (crls.length !== issuers.length + anchors.length) return 'issuers changed';
  const halfLife = (crl: Crl) => {
    const next = crl.nextUpdate?.getTime() ?? 0;
    return next - now.getTime() < (next - crl.thisUpdate.getTime()) / 2;
  };
  for (const issuer of issuers) {
    const crl = await crlOf(crls, issuer);
    if (!crl) return `no CRL signed by ${issuer.subject}`;
    const want = crlEntriesFor(issuer, revoked, now)
      .map((e) => serialKey(e.serial))
      .sort()
      .join();
    const got = crl.entries
      .map((e) => serialKey(e.serialNumber))
      .sort()
      .join();
    if (want !== got) return 'revocations changed';
    if (halfLife(crl)) return 'past half its life';
    if (notYetValid(crl.thisUpdate, now)) return 'not yet valid';
  }
  for (const anchor of anchors) {
    const crl = await anchorCrlOf(crls, anchor);
    if (!crl) return `no anchor CRL of ${anchor.subject}`;
    if (halfLife(crl) || notYetValid(crl.thisUpdate, now))
      return halfLife(crl) ? 'past half its life' : 'not yet valid';
  }
  return undefined;
}

/** A CRL's number (RFC 5280 5.2.3), or undefined when it carries none. */
export function crlNumber(crl: Crl): bigint | undefined {
  const ext = crl.extensions.find((x) => x.type === id_ce_cRLNumber);
  return ext ? BigInt(String(AsnConvert.parse(ext.value, CRLNumber).value)) : undefined;
}
