/**
 * The issuance record (`bundles/<scope>/leaves.yaml`): the current leaf of each
 * service. CI runners start empty, so whether a leaf is due is decided here,
 * from the record, never from files left on a runner.
 */
import { TrellisError } from '../model/errors.js';
import { fromYaml, toYaml, type ServiceDef } from '../config/config.js';
import { serviceDnsName, serviceSpiffeId } from '../model/names.js';
import { renewalPoint } from '../x509/profiles.js';
import { iso, notYetValid } from '../model/time.js';
import { plainKey, plainString } from '../config/plain-yaml.js';

export interface LeafRecord {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Fingerprint of the issuing intermediate certificate. */
  issuer: string;
  /** Key id of the issuing intermediate (absent in records written before it existed). */
  issuerKey?: string;
  fingerprint: string;
  uris: string[];
  dns: string[];
}

export type IssuanceRecord = Map<string, LeafRecord>;

export function leafNames(scope: string, service: ServiceDef, trustDomain: string): { uris: string[]; dns: string[] } {
  return {
    uris: [serviceSpiffeId(scope, service.name, trustDomain)],
    dns: [serviceDnsName(scope, service.name, trustDomain), ...service.dns],
  };
}

export type DueReason =
  | 'new'
  | 'renewal-window'
  | 'expired'
  | 'not-yet-valid'
  | 'issuer-changed'
  | 'names-changed'
  | 'forced'
  | 'revoked'
  /** A host-held service's CSR carries a key other than the one its leaf certifies. */
  | 'key-changed';

/** The scope's signing intermediate as leaf records name it: its key, and every certificate of that key. */
export interface ActiveIssuer {
  key: string;
  fingerprints: string[];
}

/** True when the leaf was issued under the active key (a root rotation re-signs the certificate, not the key). */
function issuedBy(record: LeafRecord, active: ActiveIssuer): boolean {
  return record.issuerKey ? record.issuerKey === active.key : active.fingerprints.includes(record.issuer);
}

/** Why the service's leaf must be minted now, or null when its current leaf stands. */
export function leafDue(
  current: LeafRecord | undefined,
  wanted: { uris: string[]; dns: string[] },
  active: ActiveIssuer,
  now: Date,
): DueReason | null {
  if (!current) return 'new';
  if (current.notAfter <= now) return 'expired';
  // Minted under a --now ahead of this clock: no peer accepts it yet, so it is re-minted now.
  if (notYetValid(current.notBefore, now)) return 'not-yet-valid';
  if (!issuedBy(current, active)) return 'issuer-changed';
  if (current.uris.join() !== wanted.uris.join() || current.dns.join() !== wanted.dns.join()) return 'names-changed';
  if (renewalPoint(current) <= now) return 'renewal-window';
  return null;
}

export function parseIssuanceRecord(text: string, file: string): IssuanceRecord {
  const raw = (fromYaml(text, file) ?? {}) as Record<string, Record<string, unknown>>;
  const out: IssuanceRecord = new Map();
  for (const [svc, r] of Object.entries(raw)) {
    const bad = (field: string): never => {
      throw new TrellisError('corrupt-store', 'missing or malformed', {
        file,
        field: `${svc}.${field}`,
        hint: 'restore the file from git; it is machine-managed',
      });
    };
    const str = (k: string) => (typeof r?.[k] === 'string' ? (r[k] as string) : bad(k));
    const date = (k: string) => {
      const d = new Date(str(k));
      return Number.isNaN(d.getTime()) ? bad(k) : d;
    };
    const list = (k: string) => (Array.isArray(r?.[k]) ? (r[k] as unknown[]).map(String) : bad(k));
    const rec: LeafRecord = {
      serial: str('serial'),
      notBefore: date('notBefore'),
      notAfter: date('notAfter'),
      issuer: str('issuer'),
      fingerprint: str('fingerprint'),
      uris: list('uris'),
      dns: list('dns'),
    };
    if (r.issuerKey !== undefined) rec.issuerKey = str('issuerKey');
    out.set(svc, rec);
  }
  return out;
}

/** leaves.yaml as toYaml writes it (linear for plain records: config.ts's writePlainYaml). */
export function serializeIssuanceRecord(rec: IssuanceRecord): string {
  if (!rec.size) return '{}\n';
  return plainRecords(rec) ?? objectRecords(rec);
}

/**
 * The bytes writePlainYaml writes for the records' object form, without
 * building it (a renew rewrites every record of a scope, 10k at a time);
 * undefined when a value needs quoting, which objectRecords then does.
 */
function plainRecords(rec: IssuanceRecord): string | undefined {
  const out: string[] = [];
  const field = (k: string, v: string) => {
    if (!plainString(v)) return false;
    out.push(`  ${k}: ${v}\n`);
    return true;
  };
  const list = (k: string, vs: string[]) => {
    if (!vs.length) return out.push(`  ${k}: []\n`) > 0;
    out.push(`  ${k}:\n`);
    for (const v of vs) {
      if (!plainString(v)) return false;
      out.push(`    - ${v}\n`);
    }
    return true;
  };
  for (const svc of [...rec.keys()].sort()) {
    const r = rec.get(svc)!;
    if (!plainKey(svc)) return undefined;
    out.push(`${svc}:\n`);
    const ok =
      field('serial', r.serial) &&
      field('notBefore', iso(r.notBefore)) &&
      field('notAfter', iso(r.notAfter)) &&
      field('issuer', r.issuer) &&
      (!r.issuerKey || field('issuerKey', r.issuerKey)) &&
      field('fingerprint', r.fingerprint) &&
      list('uris', r.uris) &&
      list('dns', r.dns);
    if (!ok) return undefined;
  }
  return out.join('');
}

function objectRecords(rec: IssuanceRecord): string {
  const obj: Record<string, unknown> = {};
  for (const svc of [...rec.keys()].sort()) {
    const r = rec.get(svc)!;
    obj[svc] = {
      serial: r.serial,
      notBefore: iso(r.notBefore),
      notAfter: iso(r.notAfter),
      issuer: r.issuer,
      ...(r.issuerKey ? { issuerKey: r.issuerKey } : {}),
      fingerprint: r.fingerprint,
      uris: r.uris,
      dns: r.dns,
    };
  }
  return toYaml(obj);
}
