/**
 * Everything checkable about a store, as findings. `verifyMesh` needs no
 * secret; `custodyFindings` adds what an identity can prove. Both are what
 * `trellis-ci verify` and `trellis-root verify` print.
 */
import { fingerprint, isSelfIssued, keyId, keyMatchesCert, parseCertificates, signedBy, type Certificate } from './certificates.js';
import { ageStanzaCount, tryDecrypt } from './custody.js';
import { leafDue, leafNames } from './issuance.js';
import { ledgerFingerprints, ledgerProblems } from './ledger.js';
import { activeIssuer, paths, scopeTrust, type Mesh } from './mesh.js';
import { namesOutside, permittedNamesFor } from './names.js';
import { profileViolations, type Tier } from './profiles.js';
import { anchorCrlOf, crlEntriesFor, crlOf, parseCrls, serialKey, type Revocation } from './revocation.js';
import { parseTrustOpensslPem } from './trust.js';
import { verifyLedgers } from './verify-ledgers.js';

export type Level = 'error' | 'warning' | 'pending' | 'ok';

export interface Finding {
  level: Level;
  check: string;
  message: string;
  scope?: string;
  file?: string;
}

const DAY = 86_400_000;
/** How long before expiry a CA certificate is flagged: a ceremony takes planning. */
export const EXPIRY_WARNING: Record<Exclude<Tier, 'leaf'>, number> = { root: 365 * DAY, intermediate: 90 * DAY };
/** The root CRL needs an offline ceremony to re-sign: warn this long before its nextUpdate. */
export const ROOT_CRL_WARNING = 30 * DAY;

type Where = { scope?: string; file?: string };

function expiry(cert: Certificate, tier: Exclude<Tier, 'leaf'>, now: Date, where: Where): Finding[] {
  if (cert.notAfter <= now) return [{ ...where, level: 'error', check: 'expiry', message: `${tier} expired at ${cert.notAfter.toISOString()}` }];
  if (cert.notBefore > now) return [{ ...where, level: 'error', check: 'expiry', message: `${tier} not valid before ${cert.notBefore.toISOString()}` }];
  const left = cert.notAfter.getTime() - now.getTime();
  if (left < EXPIRY_WARNING[tier]) {
    return [{ ...where, level: 'warning', check: 'expiry', message: `${tier} expires in ${Math.floor(left / DAY)} days (${cert.notAfter.toISOString()}): plan its rotation` }];
  }
  return [];
}

/** The roots in roots.pem that the root ledger records: the only ones an intermediate may chain to. */
function recordedRoots(mesh: Mesh): Certificate[] {
  const recorded = ledgerFingerprints(mesh.rootLedger);
  return mesh.roots.filter((r) => recorded.has(fingerprint(r)));
}

/**
 * Why an intermediate must not be signed under or trusted: it does not chain
 * to a recorded root, outlives it, drifts from its profile, or was revoked.
 * The signing gate of trellis-ci renew and verify both ask this.
 */
export async function intermediateProblems(mesh: Mesh, scope: string, cert: Certificate): Promise<string[]> {
  const out: string[] = [];
  const signer = (await Promise.all(recordedRoots(mesh).map(async (r) => ((await signedBy(cert, r)) ? r : undefined)))).find(Boolean);
  if (!signer) out.push('intermediate is not signed by any root in roots.pem that the root ledger records');
  else if (cert.notAfter > signer.notAfter) out.push('intermediate outlives its root');
  out.push(...profileViolations(cert, 'intermediate', { permitted: permittedNamesFor(scope, mesh.config.trustDomain) }).map((v) => `intermediate: ${v}`));
  if (mesh.rootState?.revoked.some((r) => r.fingerprint === fingerprint(cert))) out.push('intermediate is revoked in the root CRL');
  return out;
}

/** A CRL file checked against the issuers that must each sign one and the revocations each must list. */
async function crlFindings(pem: string, issuers: Certificate[], revoked: Revocation[], now: Date, warnAhead: number, where: Where, unsigned: { level: Level; hint: string }): Promise<Finding[]> {
  const out: Finding[] = [];
  let crls;
  try {
    crls = parseCrls(pem);
  } catch {
    return [{ ...where, level: 'error', check: 'crl', message: 'not a readable CRL file' }];
  }
  for (const issuer of issuers) {
    const crl = await crlOf(crls, issuer);
    if (!crl) {
      out.push({ ...where, level: unsigned.level, check: 'crl', message: `no CRL signed by ${issuer.subject}: ${unsigned.hint}` });
      continue;
    }
    const listed = new Set(crl.entries.map((e) => serialKey(e.serialNumber)));
    const missing = crlEntriesFor(issuer, revoked, now).filter((e) => !listed.has(serialKey(e.serial)));
    if (missing.length) out.push({ ...where, level: 'error', check: 'crl', message: `CRL of ${issuer.subject} does not list revoked serial(s) ${missing.map((e) => e.serial).join(', ')}` });
    const next = crl.nextUpdate;
    if (!next || next <= now) out.push({ ...where, level: 'error', check: 'crl', message: `CRL of ${issuer.subject} is past its nextUpdate (${next?.toISOString()}): verifiers that check CRLs refuse everything` });
    else if (next.getTime() - now.getTime() < warnAhead) out.push({ ...where, level: 'warning', check: 'crl', message: `CRL of ${issuer.subject} expires ${next.toISOString()}: re-sign it soon` });
  }
  return out;
}

export async function verifyMesh(mesh: Mesh, now: Date): Promise<Finding[]> {
  const out: Finding[] = [];
  const add = (level: Level, check: string, message: string, where: Where = {}) => out.push({ level, check, message, ...where });
  const rootLedgerFps = ledgerFingerprints(mesh.rootLedger);

  // The root tier.
  const root = mesh.root;
  if (!root) add('error', 'root', 'no root certificate', { file: paths.rootCert });
  else {
    const file = paths.rootCert;
    if (!isSelfIssued(root) || !(await signedBy(root, root))) add('error', 'signature', 'root is not validly self-signed', { file });
    for (const v of profileViolations(root, 'root')) add('error', 'profile', `root: ${v}`, { file });
    out.push(...expiry(root, 'root', now, { file }));
    if (!mesh.roots.some((r) => fingerprint(r) === fingerprint(root))) add('error', 'roots', 'roots.pem does not contain the active root', { file: paths.roots });
  }
  for (const r of mesh.roots) {
    if (!(await signedBy(r, r)) || profileViolations(r, 'root').length) add('error', 'roots', `${r.subject} in roots.pem is not a valid root`, { file: paths.roots });
    if (!rootLedgerFps.has(fingerprint(r))) add('error', 'ledger', `${r.subject} in roots.pem is not recorded in the root ledger`, { file: paths.roots });
  }
  if (mesh.rootKeyAge === undefined) add('error', 'custody', 'the encrypted root key is missing', { file: paths.rootKey });
  else if (ageStanzaCount(mesh.rootKeyAge) !== mesh.config.recipients.offline.length) {
    add('error', 'custody', `the root key file is not age ciphertext to exactly the ${mesh.config.recipients.offline.length} offline recipient(s)`, { file: paths.rootKey });
  }
  for (const p of ledgerProblems(mesh.rootLedger)) add('error', 'ledger', p, { file: paths.rootLedger });

  // The root's phase: an overlap holds {old, new} and a link; steady holds one root.
  const rs = mesh.rootState;
  if (rs && root) {
    if (rs.active !== fingerprint(root)) add('error', 'state', 'root state names another active root than root.pem', { file: paths.rootState });
    if (rs.phase === 'overlap') {
      const prev = mesh.previousRoot;
      if (!prev || fingerprint(prev) !== rs.previous) add('error', 'state', 'root overlap without its previous root', { file: paths.rootPrevious });
      if (mesh.roots.map(fingerprint).sort().join() !== [rs.previous, rs.active].sort().join()) add('error', 'roots', 'roots.pem must hold exactly {old, new} during the overlap', { file: paths.roots });
      const link = mesh.link;
      if (!link || !prev || !(await signedBy(link, prev)) || keyId(link) !== keyId(root) || link.subject !== root.subject) {
        add('error', 'link', 'the link certificate must carry the new root\'s name and key, signed by the old root', { file: paths.link });
      }
    } else {
      if (mesh.previousRoot || mesh.link) add('error', 'state', 'old root or link certificate present outside an overlap', { file: paths.rootPrevious });
      if (mesh.roots.length !== 1) add('error', 'roots', 'roots.pem must hold only the active root', { file: paths.roots });
    }
  }
  const revokedIntermediates = (rs?.revoked ?? []).filter((r) => new Date(r.notAfter) > now);
  if (mesh.rootCrlPem === undefined) add('warning', 'crl', 'no root CRL: revocation of intermediates cannot be checked; run trellis-root crl', { file: paths.rootCrl });
  else out.push(...(await crlFindings(mesh.rootCrlPem, mesh.roots, revokedIntermediates, now, ROOT_CRL_WARNING, { file: paths.rootCrl }, { level: 'error', hint: 'run trellis-root crl' })));

  // Every scope.
  const revokedFps = new Set(revokedIntermediates.map((r) => r.fingerprint));
  for (const scope of mesh.scopes) {
    const m = mesh.material.get(scope.name)!;
    const at = (file: string) => ({ scope: scope.name, file });
    const scopeLedgerFps = ledgerFingerprints(m.ledger);
    for (const p of ledgerProblems(m.ledger)) add('error', 'ledger', p, at(paths.ledger(scope.name)));
    const inter = m.intermediate;
    if (!inter) {
      if (m.keyAge !== undefined || m.ledger.includes('"kind":"intermediate"')) add('error', 'custody', 'intermediate.pem is missing but the scope had an intermediate: restore it from git', at(paths.intermediate(scope.name)));
      else add('pending', 'ceremony', `declared in ${paths.scopeFile(scope.name)}, awaiting its intermediate: the custodian runs trellis-root intermediate ${scope.name} offline`, at(paths.intermediate(scope.name)));
      continue;
    }

    // Each intermediate of the scope: active, and during a rotation the next or previous one.
    const slots = [
      { cert: inter, key: m.keyAge, file: paths.intermediate(scope.name), keyFile: paths.intermediateKey(scope.name) },
      { cert: m.next, key: m.nextKeyAge, file: paths.nextIntermediate(scope.name), keyFile: paths.nextIntermediateKey(scope.name) },
      { cert: m.previous, key: m.previousKeyAge, file: paths.previousIntermediate(scope.name), keyFile: paths.previousIntermediateKey(scope.name) },
    ];
    for (const s of slots) {
      if (!s.cert) continue;
      for (const p of await intermediateProblems(mesh, scope.name, s.cert)) add('error', 'chain', p, at(s.file));
      if (s.key === undefined) add('error', 'custody', 'its encrypted key is missing', at(s.keyFile));
      else if (ageStanzaCount(s.key) !== 1) add('error', 'custody', 'the key file is not age ciphertext to exactly one (the CI) recipient', at(s.keyFile));
      const fp = fingerprint(s.cert);
      if (!scopeLedgerFps.has(fp)) add('error', 'ledger', 'not recorded in the scope ledger', at(s.file));
      if (!rootLedgerFps.has(fp)) add('error', 'ledger', 'not recorded in the root ledger', at(s.file));
    }
    out.push(...expiry(inter, 'intermediate', now, at(paths.intermediate(scope.name))));

    // The scope's phase, against the files that hold it.
    const st = m.state!;
    const sfile = paths.state(scope.name);
    if (st.active !== fingerprint(inter)) add('error', 'state', 'state.yaml names another active intermediate than intermediate.pem', at(sfile));
    if ((st.phase === 'publish') !== Boolean(m.next) || (m.next && st.next !== fingerprint(m.next))) add('error', 'state', `phase ${st.phase} does not match intermediate.next.pem`, at(sfile));
    if ((st.phase === 'switch') !== Boolean(m.previous) || (m.previous && st.previous !== fingerprint(m.previous))) add('error', 'state', `phase ${st.phase} does not match intermediate.previous.pem`, at(sfile));

    // The regional boundary, as written in the bundle files.
    const want = scopeTrust(mesh, scope.name).map(fingerprint);
    const plain = m.trustPem === undefined ? undefined : safeFingerprints(() => parseCertificates(m.trustPem!));
    if (plain?.join() !== want.join()) add('error', 'boundary', 'trust.pem does not hold exactly the intermediates of its trusted scopes', at(paths.trust(scope.name)));
    const trusted = m.trustOpensslPem === undefined ? undefined : safe(() => parseTrustOpensslPem(m.trustOpensslPem!));
    if (trusted?.map((t) => fingerprint(t.cert)).join() !== want.join() || trusted.some((t) => !t.trustsClientAndServer)) {
      add('error', 'boundary', 'trust.openssl.pem does not hold exactly the trusted intermediates, each trusted for clientAuth and serverAuth', at(paths.trustOpenssl(scope.name)));
    }
    const revokedInBundle = [...(plain ?? []), ...(trusted ?? []).map((t) => fingerprint(t.cert))].filter((f) => revokedFps.has(f));
    if (revokedInBundle.length) add('error', 'boundary', `a revoked intermediate is still trusted: ${[...new Set(revokedInBundle)].join(', ')}`, at(paths.trust(scope.name)));

    // The scope's leaf CRL: one per intermediate whose leaves may be live.
    const crlIssuers = [inter, m.previous].filter((c): c is Certificate => c !== undefined);
    if (m.crlPem === undefined) add('warning', 'crl', 'no leaf CRL yet: the next trellis-ci renew signs it', at(paths.scopeCrl(scope.name)));
    else {
      out.push(...(await crlFindings(m.crlPem, crlIssuers, st.revoked, now, 0, at(paths.scopeCrl(scope.name)), { level: 'warning', hint: 'the next trellis-ci renew signs it' })));
      const crls = safe(() => parseCrls(m.crlPem!)) ?? [];
      for (const anchor of [m.previous, inter, m.next].filter((c): c is Certificate => c !== undefined)) {
        const crl = await anchorCrlOf(crls, anchor);
        if (!crl) add('warning', 'crl', `no anchor CRL of ${anchor.subject}: nginx ssl_crl and haproxy crl-file cannot check chains ending at it; the next trellis-ci renew signs it`, at(paths.scopeCrl(scope.name)));
        else if (!crl.nextUpdate || crl.nextUpdate <= now) add('error', 'crl', `the anchor CRL of ${anchor.subject} is past its nextUpdate: full-chain CRL checking refuses every chain ending at it`, at(paths.scopeCrl(scope.name)));
      }
    }

    // The issuance record.
    const lfile = paths.leaves(scope.name);
    const active = activeIssuer(mesh, scope.name)!;
    const permitted = permittedNamesFor(scope.name, mesh.config.trustDomain);
    const DUE: Record<string, [Level, string]> = {
      expired: ['error', 'leaf expired; run trellis-ci renew'],
      'issuer-changed': ['warning', 'issued by an intermediate that is no longer active; renew re-mints it'],
      'names-changed': ['warning', 'names changed in the scope file; renew re-mints it'],
      'renewal-window': ['warning', 'leaf is due (⅓ of its life left); run trellis-ci renew'],
    };
    for (const svc of scope.services) {
      const rec = m.leaves.get(svc.name);
      if (!rec) {
        add('pending', 'leaf', `${svc.name}: no leaf yet; the next trellis-ci renew mints it`, at(lfile));
        continue;
      }
      const outside = namesOutside(rec, permitted);
      if (outside.length) add('error', 'constraints', `${svc.name}: ${outside.join(', ')} outside the scope`, at(lfile));
      if (st.revoked.some((r) => serialKey(r.serial) === serialKey(rec.serial))) add('error', 'leaf', `${svc.name}: the current leaf ${rec.serial} is revoked; run trellis-ci renew --force --scope ${scope.name}`, at(lfile));
      const due = leafDue(rec, leafNames(scope.name, svc, mesh.config.trustDomain), active, now);
      if (due && DUE[due]) add(DUE[due][0], due === 'expired' || due === 'renewal-window' ? 'expiry' : 'leaf', `${svc.name}: ${DUE[due][1]} (expires ${rec.notAfter.toISOString()})`, at(lfile));
    }
    for (const svc of m.leaves.keys()) {
      if (!scope.services.some((s) => s.name === svc)) add('warning', 'leaf', `${svc}: recorded but no longer declared`, at(lfile));
    }
  }
  out.push(...verifyLedgers(mesh, now));
  for (const o of mesh.orphans) add('warning', 'orphan', `bundles/${o}/ has no scopes/${o}.yaml: a removed scope's material is still in the store`, { file: `bundles/${o}` });
  return out;
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

function safeFingerprints(fn: () => Certificate[]): string[] | undefined {
  return safe(() => fn().map(fingerprint));
}

/**
 * What an identity proves about custody. With the CI identity: every
 * intermediate key opens and matches its certificate, and the root key does
 * not open. With the root identity: the root key opens and matches, and no
 * intermediate key opens.
 */
export async function custodyFindings(mesh: Mesh, ids: { ci?: string[]; root?: string[] }): Promise<Finding[]> {
  const out: Finding[] = [];
  const open = async (who: string[], ct: string | undefined) => (ct === undefined ? undefined : tryDecrypt(who, ct));
  const keys = [...mesh.material].flatMap(([scope, m]) => [
    { scope, cert: m.intermediate, ct: m.keyAge, file: paths.intermediateKey(scope) },
    { scope, cert: m.next, ct: m.nextKeyAge, file: paths.nextIntermediateKey(scope) },
    { scope, cert: m.previous, ct: m.previousKeyAge, file: paths.previousIntermediateKey(scope) },
  ]).filter((k) => k.cert && k.ct !== undefined);
  if (ids.ci) {
    if ((await open(ids.ci, mesh.rootKeyAge))?.ok) {
      out.push({ level: 'error', check: 'custody', file: paths.rootKey, message: 'the CI identity opens the root key: the root key is exposed to CI; rotate the root' });
    } else if (mesh.rootKeyAge !== undefined) out.push({ level: 'ok', check: 'custody', file: paths.rootKey, message: 'the CI identity cannot open the root key' });
    for (const k of keys) {
      const r = (await open(ids.ci, k.ct))!;
      if (!r.ok) out.push({ level: 'error', check: 'custody', scope: k.scope, file: k.file, message: r.why === 'malformed' ? 'this intermediate key file is not readable age ciphertext' : 'the CI identity does not open this intermediate key' });
      else if (!keyMatchesCert(r.text, k.cert!)) out.push({ level: 'error', check: 'custody', scope: k.scope, file: k.file, message: 'the intermediate key does not match its certificate' });
      else out.push({ level: 'ok', check: 'custody', scope: k.scope, file: k.file, message: 'intermediate key opens with the CI identity and matches its certificate' });
    }
  }
  if (ids.root) {
    for (const [cert, ct, file] of [[mesh.root, mesh.rootKeyAge, paths.rootKey], [mesh.previousRoot, mesh.previousRootKeyAge, paths.rootPreviousKey]] as const) {
      if (!cert) continue;
      const r = await open(ids.root, ct);
      if (!r?.ok) out.push({ level: 'error', check: 'custody', file, message: 'the root identity does not open this root key' });
      else if (!keyMatchesCert(r.text, cert)) out.push({ level: 'error', check: 'custody', file, message: 'the root key does not match its certificate' });
      else out.push({ level: 'ok', check: 'custody', file, message: 'root key opens with the offline identity and matches its certificate' });
    }
    for (const k of keys) {
      if ((await open(ids.root, k.ct))?.ok) {
        out.push({ level: 'error', check: 'custody', scope: k.scope, file: k.file, message: 'the root identity opens this intermediate key: it must be encrypted to the CI recipient only' });
      }
    }
  }
  return out;
}

export function worstLevel(findings: Finding[]): Level {
  for (const l of ['error', 'warning', 'pending'] as const) if (findings.some((f) => f.level === l)) return l;
  return 'ok';
}
