/** CRL files checked against the issuers that must sign them and the revocations they must list. */
import type { Certificate } from '../x509/certificates.js';
import {
  crlEntriesFor,
  crlOf,
  displaySerial,
  parseCrls,
  serialKey,
  type Crl,
  type Revocation,
} from '../x509/revocation.js';
import type { Finding, Level, Where } from './finding.js';
import { notYetValid } from '../model/time.js';

/** A CRL file checked against the issuers that must each sign one and the revocations each must list. */
export async function crlFindings(
  pem: string,
  issuers: Certificate[],
  revoked: Revocation[],
  now: Date,
  warnAhead: number,
  where: Where,
  unsigned: { level: Level; hint: string },
): Promise<Finding[]> {
  const out: Finding[] = [];
  let crls: Crl[];
  try {
    crls = parseCrls(pem);
  } catch {
    return [{ ...where, level: 'error', check: 'crl', message: 'not a readable CRL file' }];
  }
  for (const issuer of issuers) {
    const crl = await crlOf(crls, issuer);
    if (!crl) {
      out.push({
        ...where,
        level: unsigned.level,
        check: 'crl',
        message: `no CRL signed by ${issuer.subject}: ${unsigned.hint}`,
      });
      continue;
    }
    const listed = new Set(crl.entries.map((e) => serialKey(e.serialNumber)));
    const missing = crlEntriesFor(issuer, revoked, now).filter((e) => !listed.has(serialKey(e.serial)));
    if (missing.length)
      out.push({
        ...where,
        level: 'error',
        check: 'crl',
        message:
          `CRL of ${issuer.subject} does not list revoked serial(s) ` +
          `${missing.map((e) => displaySerial(e.serial)).join(', ')}`,
      });
    const next = crl.nextUpdate;
    if (!next || next <= now)
      out.push({
        ...where,
        level: 'error',
        check: 'crl',
        message:
          `CRL of ${issuer.subject} is past its nextUpdate (${next?.toISOString()}): verifiers that check CRLs ` +
          `refuse everything`,
      });
    else if (notYetValid(crl.thisUpdate, now))
      out.push({
        ...where,
        level: 'error',
        check: 'crl',
        message:
          `CRL of ${issuer.subject} is not valid before ${crl.thisUpdate.toISOString()} (signed under a --now ` +
          `ahead of this clock): verifiers that check CRLs refuse everything until then; ${unsigned.hint}`,
      });
    else if (next.getTime() - now.getTime() < warnAhead)
      out.push({
        ...where,
        level: 'warning',
        check: 'crl',
        message: `CRL of ${issuer.subject} expires ${next.toISOString()}: re-sign it soon`,
      });
  }
  return out;
}
