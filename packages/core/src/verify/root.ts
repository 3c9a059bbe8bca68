/**
 * The root tier: the active root, roots.pem, the root key's recipients, the root ledger, the root's phase and its CRL.
 */
import { fingerprint, isSelfIssued, keyId, signedBy } from '../x509/certificates.js';
import { ageStanzaCount } from '../custody/custody.js';
import { ledgerFingerprints, ledgerProblems } from '../ledger/ledger.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import { profileViolations } from '../x509/profiles.js';
import { expiry } from './chain.js';
import { crlFindings } from './crl.js';
import { DAY, type Finding, type Level, type Where } from './finding.js';

/** The root CRL needs an offline ceremony to re-sign: warn this long before its nextUpdate. */
const ROOT_CRL_WARNING = 30 * DAY;

export async function verifyRootTier(mesh: Mesh, now: Date): Promise<Finding[]> {
  const out: Finding[] = [];
  const add = (level: Level, check: string, message: string, where: Where = {}) =>
    out.push({ level, check, message, ...where });
  const rootLedgerFps = ledgerFingerprints(mesh.rootLedger);

  const root = mesh.root;
  if (!root) add('error', 'root', 'no root certificate', { file: paths.rootCert });
  else {
    const file = paths.rootCert;
    if (!isSelfIssued(root) || !(await signedBy(root, root)))
      add('error', 'signature', 'root is not validly self-signed', { file });
    for (const v of profileViolations(root, 'root')) add('error', 'profile', `root: ${v}`, { file });
    out.push(...expiry(root, 'root', now, { file }));
    if (!mesh.roots.some((r) => fingerprint(r) === fingerprint(root)))
      add('error', 'roots', 'roots.pem does not contain the active root', { file: paths.roots });
  }
  for (const r of mesh.roots) {
    if (!(await signedBy(r, r)) || profileViolations(r, 'root').length)
      add('error', 'roots', `${r.subject} in roots.pem is not a valid root`, { file: paths.roots });
    if (!rootLedgerFps.has(fingerprint(r)))
      add('error', 'ledger', `${r.subject} in roots.pem is not recorded in the root ledger`, { file: paths.roots });
  }
  if (mesh.rootKeyUri !== undefined) {
    // A token root: the store holds only where the key is; verify with the token proves it matches root.pem.
    if (mesh.rootKeyAge !== undefined)
      add('error', 'custody', 'the root key is both on a token and in a file: one of them is not the root key', {
        file: paths.rootKey,
      });
    else if (!mesh.rootKeyUri.startsWith('pkcs11:'))
      add('error', 'custody', 'root.key.uri does not hold a PKCS#11 URI', { file: paths.rootKeyUri });
    else
      add('ok', 'custody', 'the root key is on a PKCS#11 token (root.key.uri); no key file', {
        file: paths.rootKeyUri,
      });
  } else if (mesh.rootKeyAge === undefined)
    add('error', 'custody', 'the encrypted root key is missing', { file: paths.rootKey });
  else if (ageStanzaCount(mesh.rootKeyAge) !== mesh.config.recipients.offline.length) {
    add(
      'error',
      'custody',
      `the root key file is not age ciphertext to exactly the ${mesh.config.recipients.offline.length} offline ` +
        `recipient(s)`,
      { file: paths.rootKey },
    );
  }
  for (const p of ledgerProblems(mesh.rootLedger)) add('error', 'ledger', p, { file: paths.rootLedger });

  // The root's phase: an overlap holds {old, new} and a link; steady holds one root.
  const rs = mesh.rootState;
  if (rs && root) {
    if (rs.active !== fingerprint(root))
      add('error', 'state', 'root state names another active root than root.pem', { file: paths.rootState });
    if (rs.phase === 'overlap') {
      const prev = mesh.previousRoot;
      if (!prev || fingerprint(prev) !== rs.previous)
        add('error', 'state', 'root overlap without its previous root', { file: paths.rootPrevious });
      if (mesh.roots.map(fingerprint).sort().join() !== [rs.previous, rs.active].sort().join())
        add('error', 'roots', 'roots.pem must hold exactly {old, new} during the overlap', { file: paths.roots });
      const link = mesh.link;
      if (
        !link ||
        !prev ||
        !(await signedBy(link, prev)) ||
        keyId(link) !== keyId(root) ||
        link.subject !== root.subject
      ) {
        add('error', 'link', "the link certificate must carry the new root's name and key, signed by the old root", {
          file: paths.link,
        });
      }
    } else {
      if (mesh.previousRoot || mesh.link)
        add('error', 'state', 'old root or link certificate present outside an overlap', { file: paths.rootPrevious });
      if (mesh.roots.length !== 1)
        add('error', 'roots', 'roots.pem must hold only the active root', { file: paths.roots });
    }
  }
  if (mesh.rootCrlPem === undefined)
    add('warning', 'crl', 'no root CRL: revocation of intermediates cannot be checked; run trellis-root crl', {
      file: paths.rootCrl,
    });
  else
    out.push(
      ...(await crlFindings(
        mesh.rootCrlPem,
        mesh.roots,
        liveRevokedIntermediates(mesh, now),
        now,
        ROOT_CRL_WARNING,
        { file: paths.rootCrl },
        { level: 'error', hint: 'run trellis-root crl' },
      )),
    );
  return out;
}

/** Intermediates the root revoked that have not expired: the root CRL must list them and no bundle may trust them. */
export function liveRevokedIntermediates(mesh: Mesh, now: Date) {
  return (mesh.rootState?.revoked ?? []).filter((r) => new Date(r.notAfter) > now);
}
