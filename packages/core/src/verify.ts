/**
 * Everything checkable about a store, as findings. `verifyMesh` needs no
 * secret; `custodyFindings` adds what an identity can prove. Both are what
 * `trellis-ci verify` and `trellis-root verify` print.
 */
import { fingerprint, isSelfIssued, parseCertificates, signedBy, spkiDer, type Certificate } from './certificates.js';
import { publicKeyDerOf } from './crypto.js';
import { tryDecrypt } from './custody.js';
import { leafNames } from './issuance.js';
import { ledgerFingerprints, ledgerProblems } from './ledger.js';
import { paths, trustedIntermediatesOf, type Mesh } from './mesh.js';
import { namesOutside, permittedNamesFor } from './names.js';
import { profileViolations, renewalPoint, type Tier } from './profiles.js';
import { composeTrust, parseTrustOpensslPem } from './trust.js';

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

function expiry(cert: Certificate, tier: Exclude<Tier, 'leaf'>, now: Date, f: Omit<Finding, 'level' | 'check' | 'message'>): Finding[] {
  if (cert.notAfter <= now) return [{ ...f, level: 'error', check: 'expiry', message: `${tier} expired at ${cert.notAfter.toISOString()}` }];
  if (cert.notBefore > now) return [{ ...f, level: 'error', check: 'expiry', message: `${tier} not valid before ${cert.notBefore.toISOString()}` }];
  const left = cert.notAfter.getTime() - now.getTime();
  if (left < EXPIRY_WARNING[tier]) {
    return [{ ...f, level: 'warning', check: 'expiry', message: `${tier} expires in ${Math.floor(left / DAY)} days (${cert.notAfter.toISOString()}): plan its rotation` }];
  }
  return [];
}

export async function verifyMesh(mesh: Mesh, now: Date): Promise<Finding[]> {
  const out: Finding[] = [];
  const add = (level: Level, check: string, message: string, where: { scope?: string; file?: string } = {}) => out.push({ level, check, message, ...where });

  // The root tier.
  const root = mesh.root;
  if (!root) add('error', 'root', 'no root certificate', { file: paths.rootCert });
  else {
    const file = paths.rootCert;
    if (!isSelfIssued(root) || !(await signedBy(root, root))) add('error', 'signature', 'root is not validly self-signed', { file });
    for (const v of profileViolations(root, 'root')) add('error', 'profile', `root: ${v}`, { file });
    out.push(...expiry(root, 'root', now, { file }));
    if (!mesh.roots.some((r) => fingerprint(r) === fingerprint(root))) add('error', 'roots', 'roots.pem does not contain the active root', { file: paths.roots });
    if (!ledgerFingerprints(mesh.rootLedger).has(fingerprint(root))) add('error', 'ledger', 'the active root is not recorded in the root ledger', { file: paths.rootLedger });
  }
  for (const r of mesh.roots) {
    if (!(await signedBy(r, r)) || profileViolations(r, 'root').length) add('error', 'roots', `${r.subject} in roots.pem is not a valid root`, { file: paths.roots });
  }
  if (mesh.rootKeyAge === undefined) add('error', 'custody', 'the encrypted root key is missing', { file: paths.rootKey });
  for (const p of ledgerProblems(mesh.rootLedger)) add('error', 'ledger', p, { file: paths.rootLedger });

  // Every scope.
  const allScopes = mesh.scopes.map((s) => s.name);
  const intermediatesOf = trustedIntermediatesOf(mesh);
  for (const scope of mesh.scopes) {
    const m = mesh.material.get(scope.name)!;
    const at = (file: string) => ({ scope: scope.name, file });
    for (const p of ledgerProblems(m.ledger)) add('error', 'ledger', p, at(paths.ledger(scope.name)));
    const inter = m.intermediate;
    if (!inter) {
      add('pending', 'ceremony', `declared in ${paths.scopeFile(scope.name)}, awaiting its intermediate: the custodian runs trellis-root intermediate ${scope.name} offline`, at(paths.intermediate(scope.name)));
      continue;
    }
    const ifile = paths.intermediate(scope.name);
    const permitted = permittedNamesFor(scope.name, mesh.config.trustDomain);
    const signer = (await Promise.all(mesh.roots.map(async (r) => ((await signedBy(inter, r)) ? r : undefined)))).find(Boolean);
    if (!signer) add('error', 'signature', 'intermediate is not signed by any root in roots.pem', at(ifile));
    else if (inter.notAfter > signer.notAfter) add('error', 'validity', 'intermediate outlives its root', at(ifile));
    for (const v of profileViolations(inter, 'intermediate', { permitted })) add('error', 'profile', `intermediate: ${v}`, at(ifile));
    out.push(...expiry(inter, 'intermediate', now, at(ifile)));
    if (m.keyAge === undefined) add('error', 'custody', 'the encrypted intermediate key is missing', at(paths.intermediateKey(scope.name)));
    const fp = fingerprint(inter);
    if (!ledgerFingerprints(m.ledger).has(fp)) add('error', 'ledger', 'the intermediate is not recorded in the scope ledger', at(paths.ledger(scope.name)));
    if (!ledgerFingerprints(mesh.rootLedger).has(fp)) add('error', 'ledger', 'the intermediate is not recorded in the root ledger', at(paths.rootLedger));

    // The regional boundary, as written in the bundle files.
    const want = composeTrust(scope, allScopes, intermediatesOf).map(fingerprint);
    const plain = m.trustPem === undefined ? undefined : parseCertificates(m.trustPem).map(fingerprint);
    if (plain?.join() !== want.join()) add('error', 'boundary', `trust.pem does not hold exactly the intermediates of ${want.length ? 'its trusted scopes' : 'nothing'}`, at(paths.trust(scope.name)));
    const trusted = m.trustOpensslPem === undefined ? undefined : parseTrustOpensslPem(m.trustOpensslPem);
    if (trusted?.map((t) => fingerprint(t.cert)).join() !== want.join() || trusted.some((t) => !t.trustsClientAndServer)) {
      add('error', 'boundary', 'trust.openssl.pem does not hold exactly the trusted intermediates, each trusted for clientAuth and serverAuth', at(paths.trustOpenssl(scope.name)));
    }

    // The issuance record.
    const lfile = paths.leaves(scope.name);
    const issued = ledgerFingerprints(m.ledger);
    for (const svc of scope.services) {
      const rec = m.leaves.get(svc.name);
      if (!rec) {
        add('pending', 'leaf', `${svc.name}: no leaf yet; the next trellis-ci renew mints it`, at(lfile));
        continue;
      }
      const wanted = leafNames(scope.name, svc, mesh.config.trustDomain);
      if (!issued.has(rec.fingerprint)) add('error', 'ledger', `${svc.name}: leaf ${rec.serial} is not recorded in the scope ledger`, at(lfile));
      if (rec.issuer !== fp) add('warning', 'leaf', `${svc.name}: issued by an intermediate that is no longer active; renew re-mints it`, at(lfile));
      const outside = namesOutside(rec, permitted);
      if (outside.length) add('error', 'constraints', `${svc.name}: ${outside.join(', ')} outside the scope`, at(lfile));
      if (rec.uris.join() !== wanted.uris.join() || rec.dns.join() !== wanted.dns.join()) add('warning', 'leaf', `${svc.name}: names changed in the scope file; renew re-mints it`, at(lfile));
      if (rec.notAfter <= now) add('error', 'expiry', `${svc.name}: leaf expired at ${rec.notAfter.toISOString()}; run trellis-ci renew`, at(lfile));
      else if (renewalPoint(rec) <= now) add('warning', 'expiry', `${svc.name}: leaf is due (⅓ of its life left, expires ${rec.notAfter.toISOString()}); run trellis-ci renew`, at(lfile));
    }
    for (const svc of m.leaves.keys()) {
      if (!scope.services.some((s) => s.name === svc)) add('warning', 'leaf', `${svc}: recorded but no longer declared`, at(lfile));
    }
  }
  for (const o of mesh.orphans) add('warning', 'orphan', `bundles/${o}/ has no scopes/${o}.yaml: a removed scope's material is still in the store`, { file: `bundles/${o}` });
  return out;
}

/**
 * What an identity proves about custody. With the CI identity: every
 * intermediate key opens and matches its certificate, and the root key does
 * not open. With the root identity: the root key opens and matches, and no
 * intermediate key opens.
 */
export async function custodyFindings(mesh: Mesh, ids: { ci?: string[]; root?: string[] }): Promise<Finding[]> {
  const out: Finding[] = [];
  const keyMatches = (keyPem: string, cert: Certificate) => {
    try {
      return publicKeyDerOf(keyPem).equals(spkiDer(cert));
    } catch {
      return false;
    }
  };
  const opens = async (who: string[], ct: string | undefined) => (ct === undefined ? undefined : tryDecrypt(who, ct));
  if (ids.ci) {
    if ((await opens(ids.ci, mesh.rootKeyAge)) !== undefined) {
      out.push({ level: 'error', check: 'custody', file: paths.rootKey, message: 'the CI identity opens the root key: the root key is exposed to CI; rotate the root' });
    } else if (mesh.rootKeyAge !== undefined) out.push({ level: 'ok', check: 'custody', file: paths.rootKey, message: 'the CI identity cannot open the root key' });
    for (const [scope, m] of mesh.material) {
      if (!m.intermediate || m.keyAge === undefined) continue;
      const file = paths.intermediateKey(scope);
      const key = await opens(ids.ci, m.keyAge);
      if (key === undefined) out.push({ level: 'error', check: 'custody', scope, file, message: 'the CI identity does not open this intermediate key' });
      else if (!keyMatches(key, m.intermediate)) out.push({ level: 'error', check: 'custody', scope, file, message: 'the intermediate key does not match intermediate.pem' });
      else out.push({ level: 'ok', check: 'custody', scope, file, message: 'intermediate key opens with the CI identity and matches its certificate' });
    }
  }
  if (ids.root) {
    const key = await opens(ids.root, mesh.rootKeyAge);
    if (key === undefined) out.push({ level: 'error', check: 'custody', file: paths.rootKey, message: 'the root identity does not open the root key' });
    else if (!mesh.root || !keyMatches(key, mesh.root)) out.push({ level: 'error', check: 'custody', file: paths.rootKey, message: 'the root key does not match root.pem' });
    else out.push({ level: 'ok', check: 'custody', file: paths.rootKey, message: 'root key opens with the offline identity and matches root.pem' });
    for (const [scope, m] of mesh.material) {
      if ((await opens(ids.root, m.keyAge)) !== undefined) {
        out.push({ level: 'error', check: 'custody', scope, file: paths.intermediateKey(scope), message: 'the root identity opens this intermediate key: it must be encrypted to the CI recipient only' });
      }
    }
  }
  return out;
}

export function worstLevel(findings: Finding[]): Level {
  for (const l of ['error', 'warning', 'pending'] as const) if (findings.some((f) => f.level === l)) return l;
  return 'ok';
}
