/**
 * The regional boundary, in one place: which scopes' intermediates a scope's
 * services trust, and the bundle files that encode it.
 */
import { GLOBAL_SCOPE } from '../model/names.js';
import { pemDecodeAll, pemEncode } from '../crypto/crypto.js';
import { certificatePem, fingerprint, parseCertificate, type Certificate } from '../x509/certificates.js';
import type { ScopeKind } from '../config/config.js';
import { subjectHash } from '../x509/subject-hash.js';
import { ANCHORS_DIR, CAPATH_DIR } from '../model/paths.js';

/**
 * A region trusts its own and the global intermediates; the global scope
 * trusts every scope's. No root is ever in a mesh verifier's trust path, so a
 * leaf from another region fails the handshake itself.
 */
export function trustedScopes(scope: { name: string; kind: ScopeKind }, allScopes: readonly string[]): string[] {
  const trusted = scope.kind === 'global' ? allScopes : [scope.name, GLOBAL_SCOPE].filter((s) => allScopes.includes(s));
  return [...new Set(trusted)].sort();
}

/**
 * The intermediates a scope's services trust, ordered by scope then as listed
 * by `intermediatesOf` (which returns every intermediate of a scope that
 * should be trusted now: during a rotation, both old and new).
 */
export function composeTrust(
  scope: { name: string; kind: ScopeKind },
  allScopes: readonly string[],
  intermediatesOf: (scope: string) => Certificate[],
): Certificate[] {
  return composeTrustByScope(scope, allScopes, intermediatesOf).map((a) => a.cert);
}

/** An anchor of a bundle, with the scope whose intermediate it is. */
export interface ScopedAnchor {
  scope: string;
  cert: Certificate;
}

/** composeTrust, keeping which scope each anchor belongs to (for per-anchor files and the report's matrix). */
export function composeTrustByScope(
  scope: { name: string; kind: ScopeKind },
  allScopes: readonly string[],
  intermediatesOf: (scope: string) => Certificate[],
): ScopedAnchor[] {
  return trustedScopes(scope, allScopes).flatMap((s) => intermediatesOf(s).map((cert) => ({ scope: s, cert })));
}

/** `trust.pem`: plain CERTIFICATE blocks, for Go and other stacks that anchor on any listed certificate. */
export function trustPem(certs: Certificate[]): string {
  return certs.map(certificatePem).join('');
}

/**
 * OpenSSL's X509_CERT_AUX trailer marking a certificate trusted for clientAuth
 * and serverAuth, byte for byte what `openssl x509 -addtrust clientAuth
 * -addtrust serverAuth -trustout` writes: SEQUENCE { SEQUENCE OF OID }. It is
 * what lets OpenSSL-based stacks end a chain at a non-self-signed intermediate.
 */
const TRUST_AUX = Buffer.from(
  '3016' + '3014' + '06082b06010505070302' /* clientAuth */ + '06082b06010505070301' /* serverAuth */,
  'hex',
);

/** `trust.openssl.pem`: the same certificates as OpenSSL TRUSTED CERTIFICATE blocks. */
export function trustOpensslPem(certs: Certificate[]): string {
  return certs
    .map((c) => pemEncode('TRUSTED CERTIFICATE', Buffer.concat([Buffer.from(c.rawData), TRUST_AUX])))
    .join('');
}

/**
 * One anchor per file, in both encodings, named as their consumers look them
 * up: `capath/<subject-hash>.<n>` (the OpenSSL trusted form, for `CApath`;
 * `n` counts anchors sharing a subject hash in bundle order, as c_rehash
 * does, and old and new intermediates of one scope share a subject during a
 * rotation) and `anchors/<scope>-<fingerprint prefix>.pem` (plain PEM, for
 * servers that load one CA certificate per file or directive). Regular files,
 * never links. Paths are relative to the bundle's directory.
 */
export function anchorFileSet(anchors: ScopedAnchor[]): { name: string; content: string }[] {
  const seen = new Map<string, number>();
  return anchors.flatMap(({ scope, cert }) => {
    const h = subjectHash(cert);
    const n = seen.get(h) ?? 0;
    seen.set(h, n + 1);
    return [
      { name: `${CAPATH_DIR}/${h}.${n}`, content: trustOpensslPem([cert]) },
      {
        name: `${ANCHORS_DIR}/${scope}-${fingerprint(cert).slice('sha256:'.length, 'sha256:'.length + 16)}.pem`,
        content: certificatePem(cert),
      },
    ];
  });
}

/** The directories of a bundle (and of a release) that hold one anchor per file. */
export { CAPATH_DIR, ANCHORS_DIR };

/** Length in bytes of the DER TLV at the start of `der`. */
function tlvLength(der: Buffer): number {
  const first = der[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!;
  return 2 + n + len;
}

export interface TrustedCertificate {
  cert: Certificate;
  /** True when the trailer grants exactly clientAuth and serverAuth trust. */
  trustsClientAndServer: boolean;
}

/** Reads a `trust.openssl.pem` back, for verification of its composition. */
export function parseTrustOpensslPem(text: string): TrustedCertificate[] {
  return pemDecodeAll(text, 'TRUSTED CERTIFICATE').map((der) => {
    const n = tlvLength(der);
    return { cert: parseCertificate(der.subarray(0, n)), trustsClientAndServer: der.subarray(n).equals(TRUST_AUX) };
  });
}
