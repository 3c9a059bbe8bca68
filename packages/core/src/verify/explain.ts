/**
 * `trellis-ci explain CLIENT SERVER`: would this mTLS handshake pass, in each
 * direction, and why. Each side verifies the other's leaf with its own
 * scope's bundle as the store holds it (trust.openssl.pem) and its edge CRLs,
 * in the order OpenSSL's verifier checks (chain, purpose, CRL, validity, then
 * name constraints), so the deciding check is the one OpenSSL reports.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { fingerprint, keyId, signedBy, subjectAltNames, type Certificate } from '../x509/certificates.js';
import { TrellisError } from '../model/errors.js';
import type { LeafRecord } from '../ledger/issuance.js';
import { liveIntermediates, type IntermediateRole } from '../trust/live.js';
import { paths } from '../model/paths.js';
import { scopeDef, trustedScopeNames } from '../trust/scope-trust.js';
import type { Mesh } from '../model/mesh.js';
import { namesOutside, permittedNamesFor, scopeDomain } from '../model/names.js';
import { edgeCrl } from '../trust/release.js';
import { anchorCrlOf, crlSignedBy, displaySerial, parseCrls, serialKey, type Crl } from '../x509/revocation.js';
import { parseTrustOpensslPem, trustedScopes } from '../trust/trust.js';
import { GLOBAL_SCOPE } from '../model/names.js';

/** One side of the handshake: what it presents, and whose bundle it verifies with. */
export interface Party {
  /** `SCOPE/SERVICE`, or the certificate file it was read from. */
  label: string;
  /** The scope whose bundle this party verifies its peer with (undefined: not a mesh party). */
  scope?: string;
  leaf: PresentedLeaf;
}

/** The facts of a leaf the verdict depends on, from the issuance record or from the certificate. */
interface PresentedLeaf {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  dns: string[];
  uris: string[];
  /** Extended key usages; undefined when the certificate has none (any purpose). */
  ekus?: string[];
  /** Key id of the issuer, when the record names it. */
  issuerKey?: string;
  /** Fingerprint of the issuer, when the record names it. */
  issuerFingerprint?: string;
  /** The certificate, when read from a file: its signature decides its issuer. */
  cert?: Certificate;
  issuerName?: string;
}

type CheckName = 'stack' | 'chain' | 'purpose' | 'crl' | 'validity' | 'name-constraints';

/**
 * The verifying stack a consumer runs: `openssl` (and what shares its verdicts: Go, NSS, Node), `jvm` (Java PKIX and
 * JSSE) or `botan` (Botan 2). What each does not check is declared in docs/conformance.md.
 */
export const STACKS = ['openssl', 'jvm', 'botan'] as const;
export type Stack = (typeof STACKS)[number];

/** What a stack leaves undone that the OpenSSL verdict assumes, said once per explanation. */
const STACK_GAPS: Record<Stack, string[]> = {
  openssl: [],
  jvm: [
    "a JVM (Java PKIX, JSSE) does not apply a trust anchor's name constraints, and trellis's anchors are the " +
      "scopes' intermediates: between the scopes it trusts, the name boundary holds only with the scope check in " +
      'docs/jvm.md (the scope from the anchor the leaf validated under, every SAN inside it)',
    'give a JVM the truststore (bundle --format pkcs12) and crl.jvm.pem (bundle --format crl-jvm), not ' +
      'crl.pem: anchored on the root, its anchor CRLs make Java refuse good leaves',
  ],
  botan: [
    'Botan 2 verifies no trellis chain: it ends a path only at a self-signed certificate, and under the root ' +
      "it reads the intermediates' ::/0 exclusion as an unknown critical extension " +
      '(docs/conformance.md#botan-consumers)',
  ],
};

interface Check {
  check: CheckName;
  ok: boolean;
  detail: string;
  /** OpenSSL's error number and text when this check fails. */
  openssl?: string;
}

interface AnchorRef {
  scope: string;
  role: IntermediateRole | 'unknown';
  fingerprint: string;
  subject: string;
  notAfter: string;
}

interface Direction {
  /** Who verifies (with its scope's bundle) and who presents. */
  verifier: string;
  presenter: string;
  purpose: 'client' | 'server';
  bundle?: string;
  passes: boolean;
  /** The anchor that ends the chain, when one does. */
  anchor?: AnchorRef;
  checks: Check[];
  /** The first failing check in OpenSSL's order; undefined when it passes. */
  decidedBy?: Check;
  /** What would change the verdict. */
  change: string;
}

export interface Explanation {
  client: string;
  server: string;
  at: string;
  /** The stack the verdicts are for; `gaps` says what it leaves undone. */
  stack: Stack;
  gaps: string[];
  passes: boolean;
  /** [server verifies client, client verifies server]. */
  directions: [Direction, Direction];
}

const EKU = { client: '1.3.6.1.5.5.7.3.2', server: '1.3.6.1.5.5.7.3.1' } as const;

/** A party named `SCOPE/SERVICE`, judged from its current leaf in the issuance record. */
export function recordParty(mesh: Mesh, ref: string): Party {
  const [scope, service, ...rest] = ref.split('/');
  if (!scope || !service || rest.length)
    throw new TrellisError('usage', `"${ref}" is neither SCOPE/SERVICE nor a certificate file`, {
      hint: 'name a party as us-east-1/api, or give the path of a PEM certificate',
    });
  const def = scopeDef(mesh, scope);
  if (!def.services.some((s) => s.name === service))
    throw new TrellisError('unknown-service', `scope ${scope} declares no service "${service}"`, {
      file: paths.scopeFile(scope),
    });
  const rec: LeafRecord | undefined = mesh.material.get(scope)?.leaves.get(service);
  if (!rec)
    throw new TrellisError('not-yet-minted', `${scope}/${service} has no leaf yet`, {
      file: paths.leaves(scope),
      hint: 'trellis-ci renew mints it',
    });
  return {
    label: ref,
    scope,
    leaf: {
      serial: rec.serial,
      notBefore: rec.notBefore,
      notAfter: rec.notAfter,
      dns: rec.dns,
      uris: rec.uris,
      ekus: [EKU.server, EKU.client],
      issuerKey: rec.issuerKey,
      issuerFingerprint: rec.issuer,
    },
  };
}

/**
 * A party given as a certificate: its scope (whose bundle it would verify with) is the one its SPIFFE ID names, when
 * the mesh declares it.
 */
export function certificateParty(mesh: Mesh, label: string, cert: Certificate): Party {
  const sans = subjectAltNames(cert);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const scope = mesh.scopes.find((s) =>
    sans.uris.some((u) => {
      try {
        return new URL(u).hostname === scopeDomain(s.name, mesh.config.trustDomain);
      } catch {
        return false;
      }
    }),
  )?.name;
  return {
    label,
    scope,
    leaf: {
      serial: cert.serialNumber,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      dns: sans.dns,
      uris: sans.uris,
      ekus: eku ? eku.usages.map(String) : undefined,
      cert,
      issuerName: cert.issuer,
    },
  };
}

interface Anchor {
  cert: Certificate;
  ref: AnchorRef;
}

/** Every live intermediate of the mesh, with its scope and role: names what an anchor or an issuer is. */
function meshIntermediates(mesh: Mesh): { scope: string; role: IntermediateRole; cert: Certificate }[] {
  return trustedScopeNames(mesh).flatMap((scope) =>
    liveIntermediates(mesh, scope).map((l) => ({ scope, role: l.role, cert: l.cert })),
  );
}

function refOf(mesh: Mesh, cert: Certificate): AnchorRef {
  const known = meshIntermediates(mesh).find((i) => fingerprint(i.cert) === fingerprint(cert));
  return {
    scope: known?.scope ?? '?',
    role: known?.role ?? 'unknown',
    fingerprint: fingerprint(cert),
    subject: cert.subject,
    notAfter: cert.notAfter.toISOString(),
  };
}

async function issues(leaf: PresentedLeaf, ca: Certificate): Promise<boolean> {
  if (leaf.cert) return ca.subject === leaf.cert.issuer && (await signedBy(leaf.cert, ca));
  if (leaf.issuerKey) return keyId(ca) === leaf.issuerKey;
  return fingerprint(ca) === leaf.issuerFingerprint;
}

const describeAnchor = (a: AnchorRef) => `${a.scope} intermediate (${a.role}, ${a.fingerprint.slice(0, 23)}…)`;

/** One direction: `verifier` checks `presenter`'s leaf for `purpose` with the verifier scope's bundle and CRLs. */
async function judge(
  mesh: Mesh,
  verifier: Party,
  presenter: Party,
  purpose: 'client' | 'server',
  now: Date,
): Promise<Direction> {
  const base = { verifier: verifier.label, presenter: presenter.label, purpose };
  const leaf = presenter.leaf;
  const checks: Check[] = [];
  const done = (anchor: Anchor | undefined, change: string): Direction => {
    const decidedBy = checks.find((c) => !c.ok);
    return {
      ...base,
      bundle: verifier.scope ? paths.trustOpenssl(verifier.scope) : undefined,
      passes: !decidedBy,
      anchor: anchor?.ref,
      checks,
      decidedBy,
      change,
    };
  };
  if (!verifier.scope) {
    checks.push({
      check: 'chain',
      ok: false,
      detail: `${verifier.label} names no scope of this mesh, so it has no bundle to verify with`,
    });
    return done(undefined, 'give the party as SCOPE/SERVICE, or a certificate whose SPIFFE ID names a declared scope');
  }
  const vs = verifier.scope;
  const m = mesh.material.get(vs);
  const bundle = m?.trustOpensslPem ? parseTrustOpensslPem(m.trustOpensslPem).map((t) => t.cert) : [];
  const anchors: Anchor[] = bundle.map((cert) => ({ cert, ref: refOf(mesh, cert) }));
  let anchor: Anchor | undefined;
  for (const a of anchors)
    if (await issues(leaf, a.cert)) {
      anchor = a;
      break;
    }

  // 1. Chain: the leaf's issuer must be an anchor of the verifier's bundle.
  if (!anchor) {
    let issuer: { scope: string; role: IntermediateRole; cert: Certificate } | undefined;
    for (const i of meshIntermediates(mesh))
      if (await issues(leaf, i.cert)) {
        issuer = i;
        break;
      }
    const holds = anchors.map((a) => `${a.ref.scope} (${a.ref.role})`).join(', ') || 'nothing';
    const openssl = 'error 20: unable to get local issuer certificate';
    if (issuer) {
      const rule = trustedScopes(scopeDef(mesh, vs), trustedScopeNames(mesh)).includes(issuer.scope);
      if (!rule) {
        const why =
          vs === GLOBAL_SCOPE
            ? ''
            : `${vs} does not trust ${issuer.scope}: the regional boundary; only global intermediates cross it`;
        checks.push({
          check: 'chain',
          ok: false,
          detail:
            `issued by the ${issuer.scope} intermediate (${issuer.role}), which ${vs}'s bundle does not hold (it ` +
            `holds ${holds})`,
          openssl,
        });
        return done(
          undefined,
          `${why}: a service of ${issuer.scope} reaches ${vs} only through a global service, or by moving to ` +
            `the global scope`,
        );
      }
      checks.push({
        check: 'chain',
        ok: false,
        detail:
          `issued by the ${issuer.scope} intermediate (${issuer.role}), which the boundary rule trusts but ` +
          `${paths.trustOpenssl(vs)} does not hold: the bundle is stale`,
        openssl,
      });
      return done(undefined, `trellis-ci renew recomposes ${vs}'s bundle (verify reports it), then deploy`);
    }
    const signer =
      leaf.issuerName ??
      (leaf.issuerFingerprint ? `an intermediate ${leaf.issuerFingerprint.slice(0, 23)}…` : 'an unknown CA');
    checks.push({
      check: 'chain',
      ok: false,
      detail:
        `issued by ${signer}, ` +
        `which is no live intermediate of this mesh (rotated out, recovered, retired or foreign); ${vs}'s bundle ` +
        `holds ${holds}`,
      openssl,
    });
    return done(
      undefined,
      presenter.scope
        ? `trellis-ci renew re-mints ${presenter.label}'s leaf under its scope's active intermediate; deploy it`
        : 'only a leaf of a live intermediate of this mesh can pass',
    );
  }
  const reached = `${describeAnchor(anchor.ref)}, an anchor of ${paths.trustOpenssl(vs)}`;
  checks.push({ check: 'chain', ok: true, detail: `leaf ${displaySerial(leaf.serial)} → ${reached}` });

  // 2. Purpose: the leaf's EKU must allow the role it plays.
  const eku = EKU[purpose];
  const purposeOk = leaf.ekus === undefined || leaf.ekus.includes(eku);
  checks.push({
    check: 'purpose',
    ok: purposeOk,
    detail: purposeOk
      ? `EKU allows ${purpose}Auth`
      : `EKU (${leaf.ekus!.join(', ') || 'empty'}) lacks ${purpose}Auth (${eku}): it cannot act as a ${purpose}`,
    ...(purposeOk ? {} : { openssl: 'error 26: unsupported certificate purpose' }),
  });

  // 3. CRL: the issuer's leaf CRL in the verifier's edge CRLs, current, not listing the serial.
  const edge = parseCrlsSafe(edgeCrl(mesh, vs)) ?? [];
  const crls = await Promise.all(
    edge.map(async (c) => (c.issuer === anchor!.cert.subject && (await crlSignedBy(c, anchor!.cert)) ? c : undefined)),
  );
  const crl = crls.find(Boolean);
  if (!crl)
    checks.push({
      check: 'crl',
      ok: false,
      detail: `no CRL signed by ${describeAnchor(anchor.ref)} in the CRLs ${vs} is shipped`,
      openssl: 'error 3: unable to get certificate CRL',
    });
  else {
    const entry = crl.entries.find((e) => serialKey(e.serialNumber) === serialKey(leaf.serial));
    if (crl.nextUpdate && crl.nextUpdate <= now)
      checks.push({
        check: 'crl',
        ok: false,
        detail: `the ${anchor.ref.scope} leaf CRL lapsed at ${crl.nextUpdate.toISOString()}`,
        openssl: 'error 12: CRL has expired',
      });
    else if (crl.thisUpdate > now)
      checks.push({
        check: 'crl',
        ok: false,
        detail: `the ${anchor.ref.scope} leaf CRL is not valid before ${crl.thisUpdate.toISOString()}`,
        openssl: 'error 11: CRL is not yet valid',
      });
    else if (entry)
      checks.push({
        check: 'crl',
        ok: false,
        detail:
          `serial ${displaySerial(leaf.serial)} is revoked in ${paths.scopeCrl(anchor.ref.scope)} (since ` +
          `${entry.revocationDate.toISOString()})`,
        openssl: 'error 23: certificate revoked',
      });
    else
      checks.push({
        check: 'crl',
        ok: true,
        detail:
          `not revoked in ${paths.scopeCrl(anchor.ref.scope)} (next update ` +
          `${crl.nextUpdate?.toISOString() ?? 'none'})`,
      });
  }
  // 3b. The edge checks CRLs along the whole chain (nginx ssl_crl, haproxy crl-file, openssl verify -crl_check_all):
  // the anchor needs its own.
  if (crl) checks.push(await anchorCrlCheck(edge, anchor, vs, now));

  // 4. Validity: the leaf and its anchor at `now`.
  const validity = (what: string, nb: Date, na: Date): Check | undefined =>
    now < nb
      ? {
          check: 'validity',
          ok: false,
          detail: `${what} is not valid before ${nb.toISOString()}`,
          openssl: 'error 9: certificate is not yet valid',
        }
      : now >= na
        ? {
            check: 'validity',
            ok: false,
            detail: `${what} expired at ${na.toISOString()}`,
            openssl: 'error 10: certificate has expired',
          }
        : undefined;
  const bad =
    validity(`leaf ${displaySerial(leaf.serial)}`, leaf.notBefore, leaf.notAfter) ??
    validity(describeAnchor(anchor.ref), anchor.cert.notBefore, anchor.cert.notAfter);
  checks.push(
    bad ?? {
      check: 'validity',
      ok: true,
      detail: `leaf valid until ${leaf.notAfter.toISOString()}, anchor until ${anchor.cert.notAfter.toISOString()}`,
    },
  );

  // 5. Name constraints of the anchor over the leaf's names.
  const outside = namesOutside(leaf, permittedNamesFor(anchor.ref.scope, mesh.config.trustDomain));
  checks.push(
    outside.length
      ? {
          check: 'name-constraints',
          ok: false,
          detail:
            `${outside.join(', ')} outside the ${anchor.ref.scope} intermediate's permitted subtree ` +
            `${scopeDomain(anchor.ref.scope, mesh.config.trustDomain)}`,
          openssl: 'error 47: permitted subtree violation',
        }
      : {
          check: 'name-constraints',
          ok: true,
          detail: `every name inside ${scopeDomain(anchor.ref.scope, mesh.config.trustDomain)}`,
        },
  );

  const failed = checks.find((c) => !c.ok);
  return done(
    anchor,
    failed ? changeFor(failed, presenter, vs) : passingUntil(leaf, anchor, crl?.nextUpdate ?? undefined, presenter),
  );
}

/**
 * The anchor CRL (see signAnchorCrl) OpenSSL's full-chain check wants at depth 1: present, current, not listing the
 * anchor.
 */
async function anchorCrlCheck(edge: Crl[], anchor: Anchor, vs: string, now: Date): Promise<Check> {
  const crl = await anchorCrlOf(edge, anchor.cert);
  const what = `the anchor CRL of ${describeAnchor(anchor.ref)}`;
  if (!crl)
    return {
      check: 'crl',
      ok: false,
      detail:
        `no anchor CRL of ${describeAnchor(anchor.ref)} in the CRLs ${vs} is shipped: a verifier that checks ` +
        `CRLs along the chain (nginx ssl_crl, haproxy crl-file) wants one for the anchor too`,
      openssl: 'error 3: unable to get certificate CRL',
    };
  if (crl.nextUpdate && crl.nextUpdate <= now)
    return {
      check: 'crl',
      ok: false,
      detail: `${what} lapsed at ${crl.nextUpdate.toISOString()}`,
      openssl: 'error 12: CRL has expired',
    };
  if (crl.thisUpdate > now)
    return {
      check: 'crl',
      ok: false,
      detail: `${what} is not valid before ${crl.thisUpdate.toISOString()}`,
      openssl: 'error 11: CRL is not yet valid',
    };
  if (crl.entries.some((e) => serialKey(e.serialNumber) === serialKey(anchor.cert.serialNumber)))
    return {
      check: 'crl',
      ok: false,
      detail: `${what} lists the anchor itself`,
      openssl: 'error 23: certificate revoked',
    };
  return {
    check: 'crl',
    ok: true,
    detail: `${what} is shipped to ${vs} (next update ${crl.nextUpdate?.toISOString() ?? 'none'})`,
  };
}

function parseCrlsSafe(pem: string | undefined) {
  try {
    return pem ? parseCrls(pem) : [];
  } catch {
    return undefined;
  }
}

function changeFor(c: Check, presenter: Party, vs: string): string {
  switch (c.check) {
    case 'purpose':
      return 'only a leaf minted with the purpose EKU passes: trellis leaves carry serverAuth and clientAuth';
    case 'crl':
      return c.openssl?.startsWith('error 23')
        ? `the leaf is revoked: deploy the replacement leaf (trellis-ci revoke minted it; renew --force --scope ` +
            `${presenter.scope ?? 'SCOPE'} mints another)`
        : `trellis-ci renew re-signs the CRL; deploy it to ${vs}'s hosts`;
    case 'validity':
      return presenter.scope
        ? `trellis-ci renew re-mints ${presenter.label}'s leaf; deploy it`
        : 'a current leaf is needed';
    case 'name-constraints':
      return 'only names inside the issuing scope pass; a leaf is minted for its own scope only';
    default:
      return '';
  }
}

function passingUntil(leaf: PresentedLeaf, anchor: Anchor, crlNext: Date | undefined, presenter: Party): string {
  const events = [
    { at: leaf.notAfter, what: `the leaf expires (renew re-mints it before: ${presenter.label})` },
    { at: anchor.cert.notAfter, what: `the ${anchor.ref.scope} intermediate expires` },
    ...(crlNext ? [{ at: crlNext, what: `the ${anchor.ref.scope} leaf CRL lapses unless renew re-signs it` }] : []),
  ].sort((a, b) => a.at.getTime() - b.at.getTime());
  return (
    `passes until ${events[0]!.at.toISOString()}, when ${events[0]!.what}; revoking the leaf, or removing the ` +
    `${anchor.ref.scope} intermediate from the bundle, would refuse it`
  );
}

/**
 * One direction as `stack` would judge it: the OpenSSL verdict, with what the stack does not check said where it bites.
 */
function forStack(d: Direction, stack: Stack): Direction {
  if (stack === 'jvm')
    return {
      ...d,
      checks: d.checks.map((c) =>
        c.check === 'name-constraints' && d.anchor
          ? { ...c, detail: `${c.detail} (a JVM applies this only with the scope check in docs/jvm.md)` }
          : c,
      ),
    };
  if (stack === 'botan') {
    const refused: Check = {
      check: 'stack',
      ok: false,
      detail:
        'Botan 2 builds no path to a trellis anchor (an intermediate, or the root through constraints it cannot read)',
    };
    return {
      ...d,
      passes: false,
      checks: [refused, ...d.checks],
      decidedBy: refused,
      change:
        'put a verifier from docs/conformance.md that holds the boundary (nginx, haproxy) in front of the ' +
        'Botan service: docs/conformance.md#botan-consumers',
    };
  }
  return d;
}

/** Both directions of the mTLS handshake between `client` and `server`, as of `now`, as `stack` verifies. */
export async function explainHandshake(
  mesh: Mesh,
  client: Party,
  server: Party,
  now: Date,
  stack: Stack = 'openssl',
): Promise<Explanation> {
  const directions: [Direction, Direction] = [
    forStack(await judge(mesh, server, client, 'client', now), stack),
    forStack(await judge(mesh, client, server, 'server', now), stack),
  ];
  return {
    client: client.label,
    server: server.label,
    at: now.toISOString(),
    stack,
    gaps: STACK_GAPS[stack],
    passes: directions.every((d) => d.passes),
    directions,
  };
}

export function renderExplanation(e: Explanation): string {
  const lines = [
    `client ${e.client} → server ${e.server}, as of ${e.at}: the handshake ${e.passes ? 'PASSES' : 'FAILS'}`,
  ];
  for (const d of e.directions) {
    lines.push(
      '',
      `${d.passes ? '✓' : '✗'} ${d.verifier} verifies ${d.presenter} as a ` +
        `${d.purpose}${d.bundle ? ` with ${d.bundle}` : ''}: ${d.passes ? 'accepted' : 'REFUSED'}`,
    );
    if (d.anchor) lines.push(`    anchor: ${describeAnchor(d.anchor)}  ${d.anchor.subject}`);
    for (const c of d.checks) lines.push(`    ${c.ok ? '✓' : '✗'} ${c.check.padEnd(16)} ${c.detail}`);
    if (d.decidedBy)
      lines.push(
        `    decided by: ${d.decidedBy.check}${d.decidedBy.openssl ? ` (OpenSSL ${d.decidedBy.openssl})` : ''}`,
      );
    lines.push(`    what would change it: ${d.change}`);
  }
  if (e.gaps.length) lines.push('', `declared for a ${e.stack} verifier:`, ...e.gaps.map((g) => `  - ${g}`));
  return `${lines.join('\n')}\n`;
}
