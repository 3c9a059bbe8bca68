/** The shape of a loaded store (`Mesh`): plain data only, so the rules over it need not import the loader. */
import type { MeshConfig, ScopeDef } from '../config/config.js';
import type { Certificate } from '../x509/certificates.js';
import type { IssuanceRecord } from '../ledger/issuance.js';
import type { RootState, ScopeState } from '../rotation/rotation.js';

export interface ScopeMaterial {
  intermediatePem?: string;
  intermediate?: Certificate;
  keyAge?: string;
  next?: Certificate;
  nextKeyAge?: string;
  previous?: Certificate;
  previousKeyAge?: string;
  oldRootIntermediate?: Certificate;
  /** The standby: anchored nowhere, its key to the break-glass recipient only. */
  standby?: Certificate;
  standbyKeyAge?: string;
  /** burned.json: the burn statement of the last standby activation, as the store holds it. */
  burned?: string;
  /** Parsed state.yaml; a store without one is steady on its intermediate. */
  state?: ScopeState;
  /** The evidence JSON of the procedure under way (state.evidence), as the store holds it. */
  openEvidence?: string;
  crlPem?: string;
  trustPem?: string;
  trustOpensslPem?: string;
  /**
   * Every regular file under capath/ and anchors/, by store path: the one-anchor-per-file bundle as the store holds it.
   */
  anchorFiles: Map<string, string>;
  leaves: IssuanceRecord;
  /** SHA-256 of leaves.yaml as read: what a renew entry's hash binding is checked against. */
  leavesSha256?: string;
  ledger: string;
  /** Each signed probe run under probes/, by store path, as the store holds it (rotation/fleet-gate.ts judges it). */
  probeRuns: Map<string, string>;
  /**
   * Each `key: host` service's committed CSR (PEM text as the store holds it), by service; absent when not committed.
   */
  csrs: Map<string, string>;
  /** Each `key: host` service's committed rotation proof (key-proof.json as the store holds it), by service. */
  keyProofs: Map<string, string>;
}

export interface Mesh {
  dir: string;
  config: MeshConfig;
  scopes: ScopeDef[];
  rootPem?: string;
  root?: Certificate;
  rootsPem?: string;
  roots: Certificate[];
  rootKeyAge?: string;
  /** The PKCS#11 URI of a root key held on a token (root.key.uri), instead of rootKeyAge. */
  rootKeyUri?: string;
  rootLedger: string;
  previousRoot?: Certificate;
  previousRootKeyAge?: string;
  previousRootKeyUri?: string;
  link?: Certificate;
  rootState?: RootState;
  rootCrlPem?: string;
  /** The evidence JSON of a root rotation under way, as the store holds it. */
  rootOpenEvidence?: string;
  /** Material under bundles/<scope>/ for every declared scope (empty when none yet). */
  material: Map<string, ScopeMaterial>;
  /** bundles/<dir> with no scopes/<dir>.yaml: left behind by a deleted scope. */
  orphans: string[];
  /** The material of each orphan named like a scope: what `trellis-root retire` revokes and removes. */
  retired: Map<string, ScopeMaterial>;
}

export const RELEASE_FILES = [
  'cert.pem',
  'key.pem',
  'chain.pem',
  'chain-and-key.pem',
  'trust.pem',
  'trust.openssl.pem',
  'crl.pem',
  'client-ca-names.pem',
  // Only for a deploy entry with `formats: [pkcs12]` (docs/jvm.md): the PKCS#12 files travel base64 (RELEASE_BINARY).
  'keystore.p12',
  'truststore.p12',
  'crl.jvm.pem',
] as const;
type ReleaseFile = (typeof RELEASE_FILES)[number];
/** Release files that are binary: a release carries them base64, and an installer writes the bytes. */
export const RELEASE_BINARY: readonly string[] = ['keystore.p12', 'truststore.p12'];
/** Release files holding key material: written 0600. */
export const RELEASE_SECRET: readonly string[] = ['key.pem', 'chain-and-key.pem', 'keystore.p12'];
/**
 * What a host receives for one service: the fixed files, plus the bundle one anchor per file
 * (`capath/<subject-hash>.<n>`, `anchors/<scope>-<fingerprint>.pem`).
 */
export type Release = Partial<Record<ReleaseFile, string>> & { [anchorFile: string]: string | undefined };
