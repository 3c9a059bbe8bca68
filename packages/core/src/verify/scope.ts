/**
 * One scope, by concern: its live intermediates, its phase against the files
 * that hold it, the regional boundary as written in its bundles, its leaf CRL
 * and its issuance record.
 */
import { fingerprint, parseCertificates } from '../x509/certificates.js';
import { ageStanzaCount } from '../custody/custody.js';
import { leafDue, leafNames } from '../ledger/issuance.js';
import { ledgerFingerprints, ledgerProblems } from '../ledger/ledger.js';
import { crlSetOf, inRole, type LiveIntermediate } from '../trust/live.js';
import { activeIssuer, scopeAnchorFiles, scopeTrust } from '../trust/scope-trust.js';
import { paths } from '../model/paths.js';
import type { Mesh, ScopeMaterial } from '../model/mesh.js';
import { namesOutside, permittedNamesFor } from '../model/names.js';
import { anchorCrlOf, displaySerial, parseCrls, serialKey } from '../x509/revocation.js';
import { lacksIpExclusion } from '../x509/profiles.js';
import { parseTrustOpensslPem } from '../trust/trust.js';
import { notYetValid } from '../model/time.js';
import type { ScopeDef } from '../config/config.js';
import { expiry, intermediateProblems } from './chain.js';
import { crlFindings } from './crl.js';
import { safe, type Finding, type Level } from './finding.js';

export interface ScopeView {
  mesh: Mesh;
  def: ScopeDef;
  m: ScopeMaterial;
  live: LiveIntermediate[];
  now: Date;
}

type Add = (level: Level, check: string, message: string, file: string) => void;
const collector =
  (scope: string, out: Finding[]): Add =>
  (level, check, message, file) =>
    out.push({ level, check, message, scope, file });

/** Each live intermediate: chains to a recorded root, its key is CI-only ciphertext, both ledgers record it. */
export async function verifyIntermediates({ mesh, def, m, live, now }: ScopeView): Promise<Finding[]> {
  const out: Finding[] = [];
  const add = collector(def.name, out);
  const rootLedgerFps = ledgerFingerprints(mesh.rootLedger);
  const scopeLedgerFps = ledgerFingerprints(m.ledger);
  for (const l of live) {
    for (const p of await intermediateProblems(mesh, def.name, l.cert)) add('error', 'chain', p, l.file);
    if (lacksIpExclusion(l.cert))
      add(
        'warning',
        'profile',
        'its name constraints do not exclude IP addresses (minted before trellis excluded them): its key could ' +
          'certify any IP; re-mint it at the next rotation',
        l.file,
      );
    if (l.role === 'old-root') continue; // its key is the active one's, checked there
    if (l.keyAge === undefined) add('error', 'custody', 'its encrypted key is missing', l.keyFile);
    else if (ageStanzaCount(l.keyAge) !== 1)
      add('error', 'custody', 'the key file is not age ciphertext to exactly one (the CI) recipient', l.keyFile);
    const fp = fingerprint(l.cert);
    if (!scopeLedgerFps.has(fp)) add('error', 'ledger', 'not recorded in the scope ledger', l.file);
    if (!rootLedgerFps.has(fp)) add('error', 'ledger', 'not recorded in the root ledger', l.file);
  }
  const active = inRole(live, 'active')!;
  out.push(...expiry(active.cert, 'intermediate', now, { scope: def.name, file: active.file }));
  return out;
}

/** The scope's phase in state.yaml against the intermediate files that hold it. */
export function verifyPhase({ def, m, live }: ScopeView): Finding[] {
  const out: Finding[] = [];
  const add = collector(def.name, out);
  const st = m.state!;
  const file = paths.state(def.name);
  const fp = (role: 'active' | 'next' | 'previous') => {
    const l = inRole(live, role);
    return l ? fingerprint(l.cert) : undefined;
  };
  if (st.active !== fp('active'))
    add('error', 'state', 'state.yaml names another active intermediate than intermediate.pem', file);
  if ((st.phase === 'publish') !== Boolean(fp('next')) || (fp('next') && st.next !== fp('next')))
    add('error', 'state', `phase ${st.phase} does not match intermediate.next.pem`, file);
  if ((st.phase === 'switch') !== Boolean(fp('previous')) || (fp('previous') && st.previous !== fp('previous')))
    add('error', 'state', `phase ${st.phase} does not match intermediate.previous.pem`, file);
  return out;
}

/** The regional boundary as written in trust.pem and trust.openssl.pem; no revoked intermediate in either. */
export function verifyBoundary({ mesh, def, m }: ScopeView, revokedFps: Set<string>): Finding[] {
  const out: Finding[] = [];
  const add = collector(def.name, out);
  const want = scopeTrust(mesh, def.name).map(fingerprint);
  const plain = m.trustPem === undefined ? undefined : safe(() => parseCertificates(m.trustPem!).map(fingerprint));
  if (plain?.join() !== want.join())
    add(
      'error',
      'boundary',
      'trust.pem does not hold exactly the intermediates of its trusted scopes',
      paths.trust(def.name),
    );
  const trusted = m.trustOpensslPem === undefined ? undefined : safe(() => parseTrustOpensslPem(m.trustOpensslPem!));
  if (
    trusted?.map((t) => fingerprint(t.cert)).join() !== want.join() ||
    trusted.some((t) => !t.trustsClientAndServer)
  ) {
    add(
      'error',
      'boundary',
      'trust.openssl.pem does not hold exactly the trusted intermediates, each trusted for clientAuth and serverAuth',
      paths.trustOpenssl(def.name),
    );
  }
  out.push(...verifyAnchorFiles(mesh, def.name, m));
  const revokedInBundle = [...(plain ?? []), ...(trusted ?? []).map((t) => fingerprint(t.cert))].filter((f) =>
    revokedFps.has(f),
  );
  if (revokedInBundle.length)
    add(
      'error',
      'boundary',
      `a revoked intermediate is still trusted: ${[...new Set(revokedInBundle)].join(', ')}`,
      paths.trust(def.name),
    );
  return out;
}

/**
 * capath/ and anchors/ against the composition: each anchor file present,
 * holding exactly its anchor, and nothing else there. A store written before
 * these files existed (none at all) is a warning: the next renew writes them.
 */
function verifyAnchorFiles(mesh: Mesh, scope: string, m: ScopeMaterial): Finding[] {
  const out: Finding[] = [];
  const add = collector(scope, out);
  const want = scopeAnchorFiles(mesh, scope);
  if (m.anchorFiles.size === 0) {
    add(
      'warning',
      'boundary',
      `no one-anchor-per-file bundle yet (${paths.capath(scope)}/, ${paths.anchors(scope)}/; the store ` +
        `predates them): the next trellis-ci renew writes them`,
      paths.capath(scope),
    );
    return out;
  }
  for (const f of want) {
    const held = m.anchorFiles.get(f.path);
    if (held === undefined)
      add(
        'error',
        'boundary',
        'anchor file missing: the bundle trusts an intermediate this directory does not hold; trellis-ci renew ' +
          'rewrites it',
        f.path,
      );
    else if (held !== f.content)
      add(
        'error',
        'boundary',
        'anchor file does not hold exactly the anchor its name stands for; trellis-ci renew rewrites it',
        f.path,
      );
  }
  const wanted = new Set(want.map((f) => f.path));
  for (const p of m.anchorFiles.keys()) {
    if (!wanted.has(p))
      add(
        'error',
        'boundary',
        "extra anchor file: it is not in the scope's trust bundle (a CApath consumer would still trust it); " +
          'trellis-ci renew removes it',
        p,
      );
  }
  return out;
}

/** The scope's crl.pem: the leaf CRLs and anchor CRLs crlSetOf names. */
export async function verifyScopeCrl({ def, m, live, now }: ScopeView): Promise<Finding[]> {
  const file = paths.scopeCrl(def.name);
  if (m.crlPem === undefined)
    return [
      {
        level: 'warning',
        check: 'crl',
        message: 'no leaf CRL yet: the next trellis-ci renew signs it',
        scope: def.name,
        file,
      },
    ];
  const set = crlSetOf(live);
  const out = await crlFindings(
    m.crlPem,
    set.leaf.map((l) => l.cert),
    m.state!.revoked,
    now,
    0,
    { scope: def.name, file },
    { level: 'warning', hint: 'the next trellis-ci renew signs it' },
  );
  const add = collector(def.name, out);
  const crls = safe(() => parseCrls(m.crlPem!)) ?? [];
  for (const anchor of set.anchor.map((l) => l.cert)) {
    const crl = await anchorCrlOf(crls, anchor);
    if (!crl)
      add(
        'warning',
        'crl',
        `no anchor CRL of ${anchor.subject}: nginx ssl_crl and haproxy crl-file cannot check chains ending at ` +
          `it; the next trellis-ci renew signs it`,
        file,
      );
    else if (!crl.nextUpdate || crl.nextUpdate <= now)
      add(
        'error',
        'crl',
        `the anchor CRL of ${anchor.subject} is past its nextUpdate: full-chain CRL checking refuses every ` +
          `chain ending at it`,
        file,
      );
    else if (notYetValid(crl.thisUpdate, now))
      add(
        'error',
        'crl',
        `the anchor CRL of ${anchor.subject} is not valid before ${crl.thisUpdate.toISOString()}: full-chain ` +
          `CRL checking refuses every chain ending at it; trellis-ci renew re-signs it`,
        file,
      );
  }
  return out;
}

const DUE: Record<string, [Level, string]> = {
  expired: ['error', 'leaf expired; run trellis-ci renew'],
  'not-yet-valid': [
    'error',
    'leaf not yet valid (minted under a --now ahead of this clock): peers refuse it; run trellis-ci renew',
  ],
  'issuer-changed': ['warning', 'issued by an intermediate that is no longer active; renew re-mints it'],
  'names-changed': ['warning', 'names changed in the scope file; renew re-mints it'],
  'renewal-window': ['warning', 'leaf is due (⅓ of its life left); run trellis-ci renew'],
};

/** leaves.yaml: each record recorded in the ledger, inside the scope, not revoked, not due. */
export function verifyIssuance({ mesh, def, m, now }: ScopeView): Finding[] {
  const out: Finding[] = [];
  const add = collector(def.name, out);
  const file = paths.leaves(def.name);
  const active = activeIssuer(mesh, def.name)!;
  const permitted = permittedNamesFor(def.name, mesh.config.trustDomain);
  // Sets, not scans: a scope may hold 60,000 services.
  const revokedSerials = new Set(m.state!.revoked.map((r) => serialKey(r.serial)));
  for (const svc of def.services) {
    const rec = m.leaves.get(svc.name);
    if (!rec) {
      add('pending', 'leaf', `${svc.name}: no leaf yet; the next trellis-ci renew mints it`, file);
      continue;
    }
    const outside = namesOutside(rec, permitted);
    if (outside.length) add('error', 'constraints', `${svc.name}: ${outside.join(', ')} outside the scope`, file);
    if (revokedSerials.has(serialKey(rec.serial)))
      add(
        'error',
        'leaf',
        `${svc.name}: the current leaf ${displaySerial(rec.serial)} is revoked; run trellis-ci renew --force ` +
          `--scope ${def.name}`,
        file,
      );
    const due = leafDue(rec, leafNames(def.name, svc, mesh.config.trustDomain), active, now);
    if (due && DUE[due]) {
      const date =
        due === 'not-yet-valid' ? `valid from ${rec.notBefore.toISOString()}` : `expires ${rec.notAfter.toISOString()}`;
      add(
        DUE[due][0],
        due === 'expired' || due === 'renewal-window' || due === 'not-yet-valid' ? 'expiry' : 'leaf',
        `${svc.name}: ${DUE[due][1]} (${date})`,
        file,
      );
    }
  }
  const declared = new Set(def.services.map((s) => s.name));
  for (const svc of m.leaves.keys()) {
    if (!declared.has(svc)) add('warning', 'leaf', `${svc}: recorded but no longer declared`, file);
  }
  return out;
}

/** The scope ledger's chain. */
export function verifyScopeLedger({ def, m }: ScopeView): Finding[] {
  return ledgerProblems(m.ledger).map((p) => ({
    level: 'error',
    check: 'ledger',
    message: p,
    scope: def.name,
    file: paths.ledger(def.name),
  }));
}
