/** The CA tiers: expiry windows, the roots an intermediate may chain to, and why an intermediate must not be used. */
import { fingerprint, signedBy, type Certificate } from '../x509/certificates.js';
import { ledgerFingerprints } from '../ledger/ledger.js';
import type { Mesh } from '../model/mesh.js';
import { permittedNamesFor } from '../model/names.js';
import { profileViolations, type Tier } from '../x509/profiles.js';
import { DAY, type Finding, type Where } from './finding.js';
import { CLOCK_SKEW_MS, formatDuration, notYetValid } from '../model/time.js';

/** How long before expiry a CA certificate is flagged: a ceremony takes planning. */
const EXPIRY_WARNING: Record<Exclude<Tier, 'leaf'>, number> = { root: 365 * DAY, intermediate: 90 * DAY };

export function expiry(cert: Certificate, tier: Exclude<Tier, 'leaf'>, now: Date, where: Where): Finding[] {
  if (cert.notAfter <= now)
    return [
      { ...where, level: 'error', check: 'expiry', message: `${tier} expired at ${cert.notAfter.toISOString()}` },
    ];
  if (notYetValid(cert.notBefore, now))
    return [
      {
        ...where,
        level: 'error',
        check: 'expiry',
        message:
          `${tier} not valid before ${cert.notBefore.toISOString()} (later than ${now.toISOString()} and the ` +
          `${formatDuration(CLOCK_SKEW_MS)} clock-skew allowance): peers refuse it until then`,
      },
    ];
  const left = cert.notAfter.getTime() - now.getTime();
  if (left < EXPIRY_WARNING[tier]) {
    const days = Math.floor(left / DAY);
    return [
      {
        ...where,
        level: 'warning',
        check: 'expiry',
        message: `${tier} expires in ${days} days (${cert.notAfter.toISOString()}): plan its rotation`,
      },
    ];
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
  const signer = (
    await Promise.all(recordedRoots(mesh).map(async (r) => ((await signedBy(cert, r)) ? r : undefined)))
  ).find(Boolean);
  if (!signer) out.push('intermediate is not signed by any root in roots.pem that the root ledger records');
  else if (cert.notAfter > signer.notAfter) out.push('intermediate outlives its root');
  out.push(
    ...profileViolations(cert, 'intermediate', { permitted: permittedNamesFor(scope, mesh.config.trustDomain) }).map(
      (v) => `intermediate: ${v}`,
    ),
  );
  if (mesh.rootState?.revoked.some((r) => r.fingerprint === fingerprint(cert)))
    out.push('intermediate is revoked in the root CRL');
  return out;
}
