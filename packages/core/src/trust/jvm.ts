/**
 * What a JVM consumer of a scope receives: its anchors as a PKCS#12
 * truststore and the CRL set Java's PKIX revocation check can use.
 */
import { parseCertificates } from '../x509/certificates.js';
import { pemEncode } from '../crypto/crypto.js';
import { anchorsBy } from './live.js';
import type { Mesh } from '../model/mesh.js';
import { scopeDef, trustedScopeNames } from './scope-trust.js';
import { anchorAlias, pkcs12Keystore, pkcs12Truststore } from '../x509/pkcs12.js';
import { edgeCrl, type LeafFiles } from './release.js';
import type { Release } from '../model/mesh.js';
import { crlOf, parseCrls, type Crl } from '../x509/revocation.js';
import { composeTrustByScope } from './trust.js';

/** The scope's anchors, composed as trust.pem composes them, each under its anchors/ alias. */
function scopeAnchors(mesh: Mesh, scope: string) {
  return composeTrustByScope(scopeDef(mesh, scope), trustedScopeNames(mesh), anchorsBy(mesh));
}

/** The scope's trust bundle as a PKCS#12 truststore (trustedCertEntry per anchor). */
export function scopeTruststore(mesh: Mesh, scope: string, password: string): Uint8Array {
  return pkcs12Truststore(
    scopeAnchors(mesh, scope).map((a) => ({ alias: anchorAlias(a.scope, a.cert), cert: a.cert })),
    password,
  );
}

/** A service's keystore from the files renew wrote: key.pem and chain.pem (leaf first). */
export function serviceKeystore(
  service: string,
  files: { keyPem: string; chainPem: string },
  password: string,
): Uint8Array {
  return pkcs12Keystore({ alias: service, keyPem: files.keyPem, chain: parseCertificates(files.chainPem) }, password);
}

/**
 * crl.jvm.pem: the leaf CRL of each anchor the scope trusts and the root's
 * CRL, without the anchor CRLs. An anchor CRL (named for the root, signed by
 * an intermediate) makes Java's CRL check throw when it anchors on the root,
 * after which it discards every CRL and refuses good leaves; anchored on the
 * bundle, Java never needs one.
 */
export async function jvmCrlPem(mesh: Mesh, scope: string): Promise<string> {
  const crls = parseCrls(edgeCrl(mesh, scope) ?? '');
  const kept: Crl[] = [];
  for (const a of scopeAnchors(mesh, scope)) {
    const c = await crlOf(crls, a.cert);
    if (c) kept.push(c);
  }
  // The root's own CRLs: what a JVM anchored on roots.pem checks each intermediate against.
  for (const c of parseCrls(mesh.rootCrlPem ?? '')) if (mesh.roots.some((r) => r.subject === c.issuer)) kept.push(c);
  return kept.map((c) => pemEncode('X509 CRL', new Uint8Array(c.rawData))).join('');
}

/**
 * What a deploy entry with `formats: [pkcs12]` adds to a service's release: the truststore, crl.jvm.pem and, when the
 * release carries a leaf, the keystore of that very leaf and key (base64: RELEASE_BINARY). No new key material: the
 * keystore re-encodes the key.pem the same target already gets.
 */
export async function jvmReleaseFiles(
  mesh: Mesh,
  scope: string,
  service: string,
  leaf: LeafFiles | undefined,
  password: string,
): Promise<Release> {
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
  return {
    // A host-held key (key: host) never reaches CI: no keystore for it, the host builds its own.
    ...(leaf?.key
      ? { 'keystore.p12': b64(serviceKeystore(service, { keyPem: leaf.key, chainPem: leaf.chain }, password)) }
      : {}),
    'truststore.p12': b64(scopeTruststore(mesh, scope, password)),
    'crl.jvm.pem': await jvmCrlPem(mesh, scope),
  };
}
