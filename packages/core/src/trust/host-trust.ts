/**
 * What a host remembers between sealed releases, and the rules it judges the
 * next one by. It keeps the `created` of the newest release it installed (an
 * older one is a replay) and, per pinned root, the newest root CRL it has seen
 * (an older one is a rollback of revocation; the newest decides whether a
 * signer is revoked, whatever CRL a release carries). Pure: `now` and the
 * state are parameters, the agent reads and writes the file.
 */
import { fingerprint, type Certificate } from '../x509/certificates.js';
import { pemEncode } from '../crypto/crypto.js';
import { TrellisError } from '../model/errors.js';
import { crlNumber, crlSignedBy, displaySerial, parseCrls, serialKey, type Crl } from '../x509/revocation.js';
import { CLOCK_SKEW_MS, formatDuration } from '../model/time.js';
import { parseJsonData } from '../model/data.js';

export interface HostState {
  /** The `created` (millisecond RFC 3339) of the newest release installed: the replay high-water mark. */
  newestRelease?: string;
  /** The newest root CRL seen, PEM, by the fingerprint of the pinned root that signed it. */
  rootCrls: Record<string, string>;
  /**
   * scope → intermediates a standby activation burned (burn statements seen): refused for that scope, whatever later
   * releases carry.
   */
  burned?: Record<string, string[]>;
}

export interface HostPolicy {
  /** How far in the future a release or CRL may be dated (the host's clock may lag CI's). */
  clockSkew: number;
  /** How long past its nextUpdate the newest root CRL is still relied on, with a warning. */
  crlGrace: number;
}

// The agent's default skew is the one trellis allows everywhere (time.ts).
export const DEFAULT_HOST_POLICY: HostPolicy = { clockSkew: CLOCK_SKEW_MS, crlGrace: 30 * 86_400_000 };

const HOST_STATE_VERSION = 1;
/** How `created` is written (Date#toISOString): fixed width, so later sorts later as text. */
const CREATED = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function isReleaseInstant(text: unknown): text is string {
  return (
    typeof text === 'string' &&
    CREATED.test(text) &&
    !Number.isNaN(new Date(text).getTime()) &&
    new Date(text).toISOString() === text
  );
}

export function parseHostState(text: string | undefined, file: string): HostState {
  if (text === undefined) return { rootCrls: {} };
  const bad = (field: string | undefined, why: string): never => {
    throw new TrellisError('bad-host-state', why, {
      file,
      field,
      hint:
        'restore it from a backup; deleting it makes this host forget the newest release and root CRL it saw, so ' +
        'replay and revocation-rollback protection start over',
    });
  };
  let j: { version?: unknown; newestRelease?: unknown; rootCrls?: unknown; burned?: unknown };
  try {
    j = parseJsonData(text);
  } catch {
    return bad(undefined, 'is not JSON');
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j))
    return bad(undefined, 'is not a trellis-agent host state');
  const unknown = Object.keys(j).find((k) => !['version', 'newestRelease', 'rootCrls', 'burned'].includes(k));
  if (unknown) bad(unknown, 'is not a field of the host state');
  if (j.version !== HOST_STATE_VERSION) bad('version', `must be ${HOST_STATE_VERSION}`);
  if (j.newestRelease !== undefined && !isReleaseInstant(j.newestRelease))
    bad('newestRelease', 'must be a millisecond RFC 3339 UTC timestamp');
  const crls = j.rootCrls ?? {};
  if (typeof crls !== 'object' || crls === null || Array.isArray(crls))
    return bad('rootCrls', 'must map root fingerprints to CRL PEM');
  for (const [k, v] of Object.entries(crls)) {
    if (!/^sha256:[0-9a-f]{64}$/.test(k)) bad(`rootCrls.${k}`, 'is not a root fingerprint');
    if (typeof v !== 'string' || !v.includes('-----BEGIN X509 CRL-----')) bad(`rootCrls.${k}`, 'must be a CRL in PEM');
  }
  const burned = j.burned ?? {};
  if (typeof burned !== 'object' || burned === null || Array.isArray(burned))
    return bad('burned', 'must map scopes to burned intermediate fingerprints');
  for (const [k, v] of Object.entries(burned)) {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && /^sha256:[0-9a-f]{64}$/.test(x)))
      bad(`burned.${k}`, 'must list intermediate fingerprints');
  }
  return {
    ...(j.newestRelease !== undefined ? { newestRelease: j.newestRelease as string } : {}),
    rootCrls: crls as Record<string, string>,
    ...(j.burned !== undefined ? { burned: burned as Record<string, string[]> } : {}),
  };
}

/** Deterministic: stable key order, LF, trailing newline. */
export function serializeHostState(s: HostState): string {
  const rootCrls = Object.fromEntries(Object.entries(s.rootCrls).sort(([a], [b]) => a.localeCompare(b)));
  const burned =
    s.burned && Object.keys(s.burned).length
      ? { burned: Object.fromEntries(Object.entries(s.burned).sort(([a], [b]) => a.localeCompare(b))) }
      : {};
  const newest = s.newestRelease ? { newestRelease: s.newestRelease } : {};
  return `${JSON.stringify({ version: HOST_STATE_VERSION, ...newest, rootCrls, ...burned }, null, 2)}\n`;
}

/** A root CRL a host relies on: signed by a pinned root, named for it, numbered. */
interface RootCrl {
  root: Certificate;
  crl: Crl;
  number: bigint;
}

/** Refusals of a sealed release: malformed (exit 2) or not to be trusted (exit 3). */
export interface Refusals {
  malformed(why: string): never;
  refuse(why: string): never;
}

async function rootCrlsIn(pem: string, roots: Certificate[], what: string, r: Refusals): Promise<RootCrl[]> {
  let crls: Crl[];
  try {
    crls = parseCrls(pem);
  } catch {
    return r.malformed(`${what} does not parse as X509 CRLs`);
  }
  if (!crls.length) r.malformed(`${what} holds no CRL`);
  const out: RootCrl[] = [];
  for (const crl of crls) {
    let root: Certificate | undefined;
    for (const c of roots) {
      if (crl.issuer === c.subject && (await crlSignedBy(crl, c))) {
        root = c;
        break;
      }
    }
    if (!root) r.refuse(`${what}: the CRL issued by "${crl.issuer}" is not signed by a pinned root`);
    let number: bigint | undefined;
    try {
      number = crlNumber(crl);
    } catch {
      number = undefined;
    }
    if (number === undefined) return r.malformed(`${what}: the CRL of ${root.subject} carries no CRL number`);
    if (!crl.nextUpdate) r.malformed(`${what}: the CRL of ${root.subject} has no nextUpdate`);
    if (out.some((o) => o.root === root)) r.malformed(`${what} holds two CRLs of ${root.subject}`);
    out.push({ root, crl, number });
  }
  return out;
}

/** Why `cert` is not valid at `now` (notBefore may be up to `skew` ahead of the host's clock), or undefined. */
export function validityProblem(cert: Certificate, now: Date, skew: number): string | undefined {
  if (now.getTime() > cert.notAfter.getTime()) return `expired on ${cert.notAfter.toISOString()}`;
  if (now.getTime() + skew < cert.notBefore.getTime()) return `not valid until ${cert.notBefore.toISOString()}`;
  return undefined;
}

export interface Admission {
  /** The host state to write once the release is installed. */
  host: HostState;
  /** Loud, not fatal: e.g. a root CRL relied on within its grace period. */
  warnings: string[];
}

/**
 * Whether a host may install a release whose signature already verified under
 * `signerRoot`: every refusal here happens before any state changes, so a
 * refused release (above all one dated in the future) moves no high-water mark.
 */
export async function admitRelease(
  p: {
    created: unknown;
    rootCrl: unknown;
    signer: Certificate;
    signerRoot: Certificate;
    roots: Certificate[];
    host: HostState;
    now: Date;
    policy: HostPolicy;
    hostStateFile: string;
  },
  r: Refusals,
): Promise<Admission> {
  const { signer, signerRoot, now, policy } = p;
  const horizon = now.getTime() + policy.clockSkew;
  const allowance = `the ${formatDuration(policy.clockSkew)} clock-skew allowance (--clock-skew)`;
  if (!isReleaseInstant(p.created)) return r.malformed('its created date is not a millisecond RFC 3339 UTC timestamp');
  if (typeof p.rootCrl !== 'string')
    return r.refuse(
      'it carries no root CRL, so whether its signer is revoked cannot be checked (sealed by a trellis-ci ' +
        'older than this agent: upgrade it)',
    );

  // The newest CRL per root: what the host remembers, unless the release carries a newer one.
  const carried = await rootCrlsIn(p.rootCrl, p.roots, 'its root CRL', r);
  for (const c of carried) {
    if (c.crl.thisUpdate.getTime() > horizon)
      r.refuse(`its root CRL of ${c.root.subject} is dated ${c.crl.thisUpdate.toISOString()}, beyond ${allowance}`);
  }
  const newest = new Map<Certificate, RootCrl>();
  const remembered = new Map<Certificate, RootCrl>();
  for (const root of p.roots) {
    const pem = p.host.rootCrls[fingerprint(root)];
    if (pem === undefined) continue;
    // What the host wrote itself is re-verified; any fault in it is a damaged state file, not a refused release.
    const corrupt = (why: string): never => {
      throw new TrellisError('bad-host-state', why, {
        file: p.hostStateFile,
        field: `rootCrls.${fingerprint(root)}`,
        hint: 'restore it from a backup',
      });
    };
    const [seen] = await rootCrlsIn(pem, [root], 'the remembered CRL', { malformed: corrupt, refuse: corrupt });
    remembered.set(root, seen!);
    newest.set(root, seen!);
  }
  for (const c of carried) {
    const seen = newest.get(c.root);
    if (!seen || c.number > seen.number) newest.set(c.root, c);
  }

  // Revocation first: a burned signer is named as such even when it also brings an old CRL.
  const decisive = newest.get(signerRoot);
  if (!decisive)
    return r.refuse(
      `it carries no CRL of ${signerRoot.subject}, the root that issued its signer, and this host has seen none`,
    );
  const entry = decisive.crl.entries.find((e) => serialKey(e.serialNumber) === serialKey(signer.serialNumber));
  if (entry) {
    r.refuse(
      `its signer ${signer.subject} (serial ${displaySerial(signer.serialNumber)}) is revoked in root CRL ` +
        `number ${decisive.number} of ${signerRoot.subject}, since ${entry.revocationDate.toISOString()}`,
    );
  }
  for (const c of carried) {
    const seen = remembered.get(c.root);
    if (seen && c.number < seen.number)
      r.refuse(
        `its root CRL of ${c.root.subject} is number ${c.number}, older than number ${seen.number} this host ` +
          `has seen: a rollback of revocation`,
      );
  }
  const warnings: string[] = [];
  const lapsed = now.getTime() - decisive.crl.nextUpdate!.getTime();
  if (lapsed > policy.crlGrace) {
    r.refuse(
      `the newest root CRL of ${signerRoot.subject} (number ${decisive.number}) passed its nextUpdate ` +
        `${decisive.crl.nextUpdate!.toISOString()}, more than the ${formatDuration(policy.crlGrace)} grace ` +
        `(--crl-grace) ago; the custodian must run trellis-root crl, then deploy`,
    );
  } else if (lapsed > 0) {
    warnings.push(
      `WARNING: the root CRL of ${signerRoot.subject} (number ${decisive.number}) is past its nextUpdate ` +
        `${decisive.crl.nextUpdate!.toISOString()}; relied on for ${formatDuration(policy.crlGrace)} after it ` +
        `(--crl-grace), then this host refuses every release: the custodian must run trellis-root crl, then deploy`,
    );
  }

  const validity = validityProblem(signer, now, policy.clockSkew);
  if (validity) r.refuse(`its signer ${signer.subject} is ${validity}`);
  if (new Date(p.created).getTime() > horizon)
    r.refuse(`it is dated ${p.created}, beyond ${allowance} (this host's clock reads ${now.toISOString()})`);
  if (p.host.newestRelease && p.created < p.host.newestRelease)
    r.refuse(`it is older (${p.created}) than the release installed last (${p.host.newestRelease}): a replay`);

  const rootCrls = { ...p.host.rootCrls };
  for (const [root, c] of newest) rootCrls[fingerprint(root)] = pemEncode('X509 CRL', new Uint8Array(c.crl.rawData));
  const newestRelease = p.host.newestRelease && p.host.newestRelease > p.created ? p.host.newestRelease : p.created;
  return { host: { newestRelease, rootCrls }, warnings };
}
