/**
 * What a host receives for one service: a release. Composed here, once, for
 * every delivery target: the leaf (when one was minted), the scope's trust
 * bundles, the CRLs its TLS stack needs, and the names-only CA list nginx wants.
 */
import {
  certificatePem,
  fingerprint,
  parseCertificate,
  parseCertificates,
  signedBy,
  type Certificate,
} from '../x509/certificates.js';
import { decryptWith, encryptTo } from '../custody/custody.js';
import { verifyBytes } from '../crypto/crypto.js';
import { canonicalJson } from '../ledger/ledger.js';
import type { SigningIntermediate } from '../x509/leaf.js';
import { decodeNameConstraints } from '../x509/name-constraints.js';
import { profileViolations } from '../x509/profiles.js';
import { TrellisError } from '../model/errors.js';
import { readBurnStatement } from '../ledger/burn.js';
import { anchorCrlOf, crlOf, parseCrls } from '../x509/revocation.js';
import { admitRelease, type Admission, type HostPolicy, type HostState, type Refusals } from './host-trust.js';
import { scopeDef, scopeTrust, trustedScopeNames } from './scope-trust.js';
import type { Mesh } from '../model/mesh.js';
import { anchorsBy, materialOf } from './live.js';
import {
  ANCHORS_DIR,
  CAPATH_DIR,
  anchorFileSet,
  composeTrustByScope,
  parseTrustOpensslPem,
  trustOpensslPem,
  trustPem,
  trustedScopes,
} from './trust.js';
import { parseJsonData } from '../model/data.js';
import { RELEASE_BINARY, RELEASE_FILES, type Release } from '../model/mesh.js';

export type { Release };

const ANCHOR_FILE = new RegExp(
  `^(${CAPATH_DIR}/[0-9a-f]{8}\\.[0-9]{1,3}|${ANCHORS_DIR}/[a-z0-9-]{1,63}-[0-9a-f]{16}\\.pem)$`,
);

/**
 * A name a release may carry: one of the fixed files or an anchor file; nothing else (a sealed release naming another
 * path is refused).
 */
export function isReleaseFile(name: string): boolean {
  return (RELEASE_FILES as readonly string[]).includes(name) || ANCHOR_FILE.test(name);
}

/**
 * nginx sends the subjects of `ssl_client_certificate` as its acceptable CA
 * list, and would let a plain copy of an intermediate there shadow the
 * trusted one. This self-signed certificate carries a name only; its key was
 * discarded when it was made, so nothing can ever chain to it.
 */
const NAMES_ONLY_CA = `-----BEGIN CERTIFICATE-----
MIIB7zCCAZWgAwIBAgIUUDbYBBwzuw4+nfpfMfqOejweuU4wCgYIKoZIzj0EAwIw
TDEQMA4GA1UECgwHdHJlbGxpczE4MDYGA1UEAwwvdHJlbGxpcyBjbGllbnQgY2Vy
dGlmaWNhdGUgcmVxdWVzdCAobmFtZXMgb25seSkwIBcNMjYxMTIyMDEwNjE4WhgP
MjEyNjEwMjkwMTA2MThaMEwxEDAOBgNVBAoMB3RyZWxsaXMxODA2BgNVBAMML3Ry
ZWxsaXMgY2xpZW50IGNlcnRpZmljYXRlIHJlcXVlc3QgKG5hbWVzIG9ubHkpMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEH72NmYhkfqPQQgXnkljngn/Q4S1fpkYV
EPByjVQ7HrjuI7MlzVnM9IT3j/zFmvsQuFuf5pe3pp+AXg97rBTzRqNTMFEwHQYD
VR0OBBYEFJHBkSGWWbt9uVZB3wQNPwZ8/LfoMB8GA1UdIwQYMBaAFJHBkSGWWbt9
uVZB3wQNPwZ8/LfoMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIg
EbJb1R8e9+ICcELhIv9RK/MfwxG5gXBSs06D6uFzGgACIQCeNEZvVn0WYzBQt4+k
lS3VAq1U2YhLD0xgN3hnM0gCvA==
-----END CERTIFICATE-----
`;

/**
 * Every CRL a verifier of this scope needs for full-chain checking: the
 * crl.pem (leaf CRLs and anchor CRLs) of each scope the boundary rule trusts.
 */
export function edgeCrl(mesh: Mesh, scope: string): string | undefined {
  const def = scopeDef(mesh, scope);
  const parts = trustedScopes(def, trustedScopeNames(mesh))
    .map((s) => materialOf(mesh, s)?.crlPem)
    .filter((p): p is string => p !== undefined);
  return parts.length ? parts.join('') : undefined;
}

/**
 * What a scope's release lacks for a verifier that checks CRLs along the whole
 * chain (nginx ssl_crl, haproxy crl-file): per anchor, a leaf CRL and an anchor
 * CRL (see crlSetOf). Empty when hosts can take it. A CRL past its nextUpdate
 * is no gap here: the release a host holds is older still, so withholding this
 * one helps nobody (check and verify report it; renew re-signs it). A ceremony
 * that cannot sign an anchor's CRLs (a root rotation re-certifies keys CI
 * holds) leaves a gap that the next renew closes. A region a pull
 * request deleted is not judged: a whole-mesh renew keeps its CRLs current
 * until its retire ceremony (a sharded one does not: docs/sharding.md), and it
 * must not hold back every other scope's deploy.
 */
export async function releaseCrlGaps(mesh: Mesh, scope: string): Promise<string[]> {
  const crls = parseCrls(edgeCrl(mesh, scope) ?? '');
  const gaps: string[] = [];
  const served = new Set(mesh.scopes.map((s) => s.name));
  const anchors = composeTrustByScope(scopeDef(mesh, scope), trustedScopeNames(mesh), anchorsBy(mesh))
    .filter((a) => served.has(a.scope))
    .map((a) => a.cert);
  for (const anchor of anchors) {
    if (!(await crlOf(crls, anchor))) gaps.push(`no leaf CRL from ${anchor.subject}`);
    if (!(await anchorCrlOf(crls, anchor))) gaps.push(`no anchor CRL of ${anchor.subject}`);
  }
  return gaps;
}

export interface LeafFiles {
  cert: string;
  /** Absent for a host-held key (`key: host`): the host pairs the certificate with the key it keeps. */
  key?: string;
  chain: string;
}

/** The release of one service: trust and CRLs always, the leaf when one is given. */
export function releaseFor(mesh: Mesh, scope: string, leaf?: LeafFiles): Release {
  const trust = scopeTrust(mesh, scope);
  const crl = edgeCrl(mesh, scope);
  const perFile = anchorFileSet(composeTrustByScope(scopeDef(mesh, scope), trustedScopeNames(mesh), anchorsBy(mesh)));
  return {
    // haproxy's `crt` wants the chain and its key in one file.
    ...(leaf
      ? {
          'cert.pem': leaf.cert,
          'chain.pem': leaf.chain,
          ...(leaf.key === undefined ? {} : { 'key.pem': leaf.key, 'chain-and-key.pem': leaf.chain + leaf.key }),
        }
      : {}),
    'trust.pem': trustPem(trust),
    'trust.openssl.pem': trustOpensslPem(trust),
    ...(crl ? { 'crl.pem': crl } : {}),
    'client-ca-names.pem': NAMES_ONLY_CA,
    ...Object.fromEntries(perFile.map((f) => [f.name, f.content])),
  };
}

/**
 * A release sealed to one host: signed by the scope's intermediate (so it
 * cannot be forged by anyone who merely knows the host's public recipient),
 * then age-encrypted to the host (so only it reads the key). Safe to commit
 * or push.
 */
export interface SealedRelease {
  version: 1;
  scope: string;
  service: string;
  host: string;
  /**
   * Millisecond RFC 3339: the agent refuses a release older than the one it installed (replay), or dated in its future.
   */
  created: string;
  /**
   * `bundles/root/crl.pem` (one CRL per root trusted now), signed with the
   * rest: the host checks the signer against it and remembers the newest.
   * Added without a version bump: agents that predate it ignore it, agents
   * that know it require it.
   */
  rootCrl: string;
  /**
   * bundles/<scope>/burned.json, after trellis-ci activate-standby: the keys the host must refuse for this scope before
   * any root CRL names them.
   */
  burned?: string;
  files: Release;
}

interface SealedEnvelope {
  release: SealedRelease;
  /** The signing intermediate's certificate. */
  signer: string;
  signature: string;
}

export async function sealRelease(r: SealedRelease, recipient: string, signer: SigningIntermediate): Promise<string> {
  const signature = Buffer.from(signer.signData(Buffer.from(canonicalJson(r))));
  const envelope: SealedEnvelope = {
    release: r,
    signer: certificatePem(signer.cert),
    signature: signature.toString('base64'),
  };
  return encryptTo([recipient], JSON.stringify(envelope));
}

export interface OpenedRelease extends Admission {
  release: SealedRelease;
}

/**
 * Opens a sealed release and proves it came from the mesh and may be
 * installed now: signed by an intermediate of the release's own scope under
 * one of `roots` (pinned on the host), every trust anchor it installs issued
 * by those roots, then admitted against what the host remembers (admitRelease:
 * root CRLs, signer validity, clock skew, replay). Malformed input exits 2,
 * anything not to be trusted 3; nothing is written here.
 */
export async function openSealedRelease(p: {
  identities: string[];
  armored: string;
  file: string;
  roots: Certificate[];
  host: HostState;
  hostStateFile: string;
  now: Date;
  policy: HostPolicy;
}): Promise<OpenedRelease> {
  const { file, roots } = p;
  const text = await decryptWith(p.identities, p.armored, file, 'agent');
  const hint = 'install only what trellis-ci deploy sealed for this host';
  const r: Refusals = {
    malformed: (why) => {
      throw new TrellisError('bad-release', `refused sealed release: ${why}`, { file, hint });
    },
    refuse: (why) => {
      throw new TrellisError('release-refused', `refused sealed release: ${why}`, { file, hint });
    },
  };
  let e: SealedEnvelope;
  try {
    e = parseJsonData<SealedEnvelope>(text);
  } catch {
    return r.malformed('not a trellis sealed release');
  }
  const rel = e?.release;
  const bad = Object.entries(rel?.files ?? {}).find(([f, v]) => !isReleaseFile(f) || typeof v !== 'string')?.[0];
  if (
    rel?.version !== 1 ||
    typeof rel.files !== 'object' ||
    rel.files === null ||
    typeof rel.scope !== 'string' ||
    typeof rel.service !== 'string' ||
    bad ||
    typeof e.signer !== 'string' ||
    typeof e.signature !== 'string'
  ) {
    r.malformed(`not a trellis sealed release${bad ? ` (unexpected file ${bad})` : ''}`);
  }
  let signer: Certificate;
  try {
    signer = parseCertificate(e.signer);
  } catch {
    return r.malformed('the signer certificate does not parse');
  }
  const rootOf = async (c: Certificate) => {
    for (const root of roots) if (await signedBy(c, root)) return root;
    return undefined;
  };
  const signerRoot = await rootOf(signer);
  if (!signerRoot) return r.refuse('not signed by an intermediate of the pinned roots');
  const ofScope = (c: Certificate) => {
    const nc = c.extensions.find((x) => x.type === '2.5.29.30');
    const permits = nc ? decodeNameConstraints(nc.value).dns : [];
    return (
      !profileViolations(c, 'intermediate').length &&
      permits.length > 0 &&
      permits.every((d) => d.startsWith(`${rel.scope}.`))
    );
  };
  if (!ofScope(signer)) r.refuse(`the signer is not an intermediate of scope ${rel.scope}`);
  if (
    !verifyBytes(
      new Uint8Array(signer.publicKey.rawData),
      Buffer.from(canonicalJson(rel)),
      Buffer.from(e.signature, 'base64'),
    )
  )
    r.refuse('the signature does not verify');
  // Burned keys: what this host remembers for the release's scope, plus a burn statement it carries (signed by an
  // intermediate of that scope only).
  const burned = new Set(p.host.burned?.[rel.scope] ?? []);
  if (rel.burned !== undefined) {
    const b =
      typeof rel.burned === 'string' ? readBurnStatement(rel.burned) : { problem: 'its burn statement is not text' };
    if ('problem' in b) return r.refuse(b.problem);
    if (b.statement.scope !== rel.scope)
      r.refuse(
        `it carries a burn statement of scope ${b.statement.scope} in a release of scope ${rel.scope}: a ` +
          `statement speaks for its own scope only`,
      );
    if (!(await rootOf(b.signer)) || !ofScope(b.signer))
      r.refuse(`its burn statement is not signed by an intermediate of scope ${rel.scope} under the pinned roots`);
    for (const fp of b.statement.burned) burned.add(fp);
  }
  if (burned.has(fingerprint(signer)))
    r.refuse(`its signer ${fingerprint(signer)} was burned (trellis-ci activate-standby) for scope ${rel.scope}`);
  // Every file that makes an anchor: the bundles and each one-anchor file.
  for (const f of Object.keys(rel.files).filter(
    (n) => n === 'trust.pem' || n === 'trust.openssl.pem' || ANCHOR_FILE.test(n),
  )) {
    const pem = rel.files[f];
    if (pem === undefined) continue;
    let certs: Certificate[];
    try {
      certs =
        f === 'trust.pem' || f.startsWith(`${ANCHORS_DIR}/`)
          ? parseCertificates(pem)
          : parseTrustOpensslPem(pem).map((t) => t.cert);
    } catch {
      return r.malformed(`${f} does not parse`);
    }
    for (const c of certs)
      if (!(await rootOf(c))) r.refuse(`${f} holds ${c.subject}, which the pinned roots did not issue`);
    for (const c of certs)
      if (burned.has(fingerprint(c)))
        r.refuse(
          `${f} holds intermediate ${fingerprint(c)}, burned (trellis-ci activate-standby) for scope ${rel.scope}`,
        );
  }
  const admission = await admitRelease(
    {
      created: rel.created,
      rootCrl: rel.rootCrl,
      signer,
      signerRoot,
      roots,
      host: p.host,
      now: p.now,
      policy: p.policy,
      hostStateFile: p.hostStateFile,
    },
    r,
  );
  const host = burned.size
    ? { ...admission.host, burned: { ...p.host.burned, [rel.scope]: [...burned].sort() } }
    : { ...admission.host, ...(p.host.burned ? { burned: p.host.burned } : {}) };
  return { release: rel, ...admission, host };
}

/** A one-line description of what a release carries, for logs. */
export function describeRelease(r: Release): string {
  const leaf = r['cert.pem'] ? `leaf ${fingerprint(parseCertificate(r['cert.pem'])).slice(0, 19)}…` : 'no new leaf';
  return `${leaf}, trust${r['crl.pem'] ? ', CRLs' : ''}${r['truststore.p12'] ? ', PKCS#12' : ''}`;
}

/** The bytes an installer writes for one release file: binary files travel base64. */
export function releaseFileBytes(name: string, content: string): string | Uint8Array {
  return RELEASE_BINARY.includes(name) ? Buffer.from(content, 'base64') : content;
}
