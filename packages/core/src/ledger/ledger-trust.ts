/**
 * Which ledger entries count. A ledger is read entry by entry: an entry counts
 * when its signature verifies under a key allowed to write that ledger, or
 * when it is in the legacy prefix (written before ledgers were signed, before
 * the ledger's first signed entry, whose signature covers it through `prev`).
 *
 * - Root ledger: signed by a root the root ledger itself recorded before the
 *   entry; the first entry is self-certifying (it creates the root whose key
 *   signs it), and that root must be one the store holds or one that
 *   introduced a successor in a later signed entry.
 * - Scope ledger: signed by a recorded root, or by an intermediate this
 *   scope's ledger recorded in an entry that counts and is not itself
 *   intermediate-signed, that chains to a recorded root, had not expired at
 *   the entry's time and was not revoked (root-ledger `recover`) before it.
 *
 * Pure and synchronous: ceremonies ask it before they touch a key.
 */
import { fingerprint, isSelfIssued, type Certificate } from '../x509/certificates.js';
import { TrellisError } from '../model/errors.js';
import { entrySignatureValid, issuedUnder, signerCertificate } from './ledger-signature.js';
import { parseLedger, type LedgerEntry } from './ledger.js';
import { materialOf } from '../trust/live.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';

export interface LedgerTrust {
  file: string;
  entries: LedgerEntry[];
  /** No entry is signed: a ledger written before ledgers were signed. */
  legacy: boolean;
  /** Entries that count, in order: the legacy prefix and every validly signed entry. */
  counted: LedgerEntry[];
  /** What is wrong with the entries that do not count, by seq. */
  problems: { seq: number; message: string }[];
  /** The certificate that signed each counted signed entry, and whether it is a root. */
  signers: Map<number, { cert: Certificate; root: boolean }>;
}

export interface RootLedgerTrust extends LedgerTrust {
  /** Roots the counted entries recorded, by fingerprint (the certificate when the store or ledger holds it). */
  roots: Map<string, Certificate | undefined>;
  /**
   * Intermediates revoked by counted `recover` and `retire` entries: fingerprint
   * → when, and the last scope-ledger seq their signatures count up to (absent
   * on entries written before it was recorded: then the time decides).
   */
  revoked: Map<string, { at: string; afterSeq?: number }>;
}

/** Every certificate the store holds, by fingerprint: where a signer named in an entry is looked up first. */
function storeCertificates(mesh: Mesh): Map<string, Certificate> {
  const certs = [
    mesh.root,
    ...mesh.roots,
    mesh.previousRoot,
    ...[...mesh.material.values()].flatMap((m) => [
      m.intermediate,
      m.next,
      m.previous,
      m.oldRootIntermediate,
      m.standby,
    ]),
  ];
  return new Map(certs.filter((c): c is Certificate => c !== undefined).map((c) => [fingerprint(c), c]));
}

const selfSigned = (c: Certificate) => isSelfIssued(c) && issuedUnder(c, c);

/** Walks a ledger: `authorize` says why a validly signed entry's signer may not write it (undefined when it may). */
function walk(
  text: string,
  file: string,
  known: Map<string, Certificate>,
  authorize: (e: LedgerEntry, cert: Certificate, counted: LedgerEntry[]) => { why?: string; root: boolean },
  onCounted: (e: LedgerEntry) => void,
): LedgerTrust {
  const { entries } = parseLedger(text);
  const firstSigned = entries.findIndex((e) => e.signer || e.signature);
  const out: LedgerTrust = { file, entries, legacy: firstSigned < 0, counted: [], problems: [], signers: new Map() };
  const pool = new Map(known);
  entries.forEach((e, i) => {
    const fail = (message: string) => out.problems.push({ seq: e.seq, message });
    if (firstSigned < 0 || i < firstSigned) {
      out.counted.push(e);
      onCounted(e);
      return;
    }
    if (!e.signer || !e.signature)
      return fail('unsigned, after signed entries: appended outside trellis (a pull request?); it counts for nothing');
    const cert = signerCertificate(e.signer, pool);
    if (!cert)
      return fail(`signed by an unknown key ${e.signer.keyId}: no certificate of it in the store or this ledger`);
    if (!entrySignatureValid(e.hash, e.signature, cert))
      return fail(
        `its signature does not verify under ${e.signer.fingerprint} (edited after signing, or signed by another key)`,
      );
    const { why, root } = authorize(e, cert, out.counted);
    if (why) return fail(why);
    pool.set(fingerprint(cert), cert);
    out.signers.set(e.seq, { cert, root });
    out.counted.push(e);
    onCounted(e);
  });
  return out;
}

const cache = new WeakMap<Mesh, { root?: RootLedgerTrust; scopes: Map<string, LedgerTrust> }>();
const cached = (mesh: Mesh) => {
  let c = cache.get(mesh);
  if (!c) cache.set(mesh, (c = { scopes: new Map() }));
  return c;
};

export function rootLedgerTrust(mesh: Mesh): RootLedgerTrust {
  const c = cached(mesh);
  if (c.root) return c.root;
  c.root = rootLedgerTrustOf(mesh.rootLedger, storeCertificates(mesh));
  return c.root;
}

/** The root ledger's trust from its text and the certificates the store holds (by fingerprint). */
export function rootLedgerTrustOf(text: string, known: Map<string, Certificate>): RootLedgerTrust {
  const roots = new Map<string, Certificate | undefined>();
  const revoked = new Map<string, { at: string; afterSeq?: number }>();
  const t = walk(
    text,
    paths.rootLedger,
    known,
    (e, cert, counted) => {
      const fp = fingerprint(cert);
      if (!selfSigned(cert)) return { why: `signed by ${fp}, which is not a root certificate`, root: false };
      if (roots.has(fp)) return { root: true };
      const selfCertifying =
        counted.length === 0 && e.seq === 1 && e.created.some((x) => x.kind === 'root' && x.fingerprint === fp);
      return selfCertifying
        ? { root: true }
        : { why: `signed by ${fp}, which the root ledger does not record as a root before this entry`, root: false };
    },
    (e) => {
      for (const x of e.created) if (x.kind === 'root') roots.set(x.fingerprint, known.get(x.fingerprint));
      const list = revokes(e);
      const afterSeq = Number.isSafeInteger(e.details.revokedAfterSeq)
        ? (e.details.revokedAfterSeq as number)
        : undefined;
      for (const fp of list)
        if (typeof fp === 'string' && !revoked.has(fp))
          revoked.set(fp, { at: e.at, ...(afterSeq !== undefined ? { afterSeq } : {}) });
    },
  );
  // A root that left the store (finalized) is still known by the certificate its first signed entry carried.
  for (const s of t.signers.values()) if (s.root) roots.set(fingerprint(s.cert), s.cert);
  // The self-certifying first entry: its root must be one the store holds, or one that vouched for a successor since.
  const first = t.entries[0];
  const firstSigner = first && t.signers.get(first.seq);
  if (first && firstSigner) {
    const fp = fingerprint(firstSigner.cert);
    const held = known.has(fp);
    const vouched = t.counted
      .slice(1)
      .some(
        (e) =>
          t.signers.get(e.seq) &&
          fingerprint(t.signers.get(e.seq)!.cert) === fp &&
          e.created.some((x) => x.kind === 'root'),
      );
    if (!held && !vouched)
      t.problems.push({
        seq: first.seq,
        message:
          `creates root ${fp}, which is neither in roots.pem/root.pem nor the issuer of a later root: this ` +
          `ledger belongs to another mesh`,
      });
  }
  return { ...t, roots, revoked };
}

/**
 * The newest time the workstation's clock must not be behind: of the entries
 * that count, only those signed by a root the store holds. An unsigned or
 * badly signed line, a CI-signed one, or a legacy (unsigned) entry bounds
 * nothing: otherwise anyone who can append a line could lock every
 * trellis-root command out with a date in 2099.
 */
export function rootClockBound(t: RootLedgerTrust, held: Map<string, Certificate>): LedgerEntry | undefined {
  let newest: LedgerEntry | undefined;
  for (const e of t.counted) {
    const s = t.signers.get(e.seq);
    if (!s?.root || !held.has(fingerprint(s.cert))) continue;
    const at = Date.parse(e.at);
    if (Number.isFinite(at) && (!newest || at > Date.parse(newest.at))) newest = e;
  }
  return newest;
}

/** The intermediates an entry revokes: a recovery's, a retirement's, or the key a standby activation burned. */
function revokes(e: LedgerEntry): string[] {
  return (e.op === 'recover' || e.op === 'retire' || e.op === 'activate-standby' || e.op === 'standby') &&
    Array.isArray(e.details.revoked)
    ? e.details.revoked.filter((x): x is string => typeof x === 'string')
    : [];
}

export function scopeLedgerTrust(mesh: Mesh, scope: string): LedgerTrust {
  const c = cached(mesh);
  const hit = c.scopes.get(scope);
  if (hit) return hit;
  const rt = rootLedgerTrust(mesh);
  const recordedRoots = [...rt.roots.values()].filter((r): r is Certificate => r !== undefined);
  const ledger = materialOf(mesh, scope)?.ledger ?? '';
  const t = walk(
    ledger,
    paths.ledger(scope),
    storeCertificates(mesh),
    (e, cert, counted) => {
      const fp = fingerprint(cert);
      if (rt.roots.has(fp) && selfSigned(cert)) return { root: true };
      const recordedBy = counted.find((x) => x.created.some((k) => k.kind === 'intermediate' && k.fingerprint === fp));
      if (!recordedBy)
        return {
          why: `signed by ${fp}, which is neither a recorded root nor an intermediate this scope's ledger recorded`,
          root: false,
        };
      if (!recordedRoots.some((r) => issuedUnder(cert, r)))
        return {
          why: `signed by intermediate ${fp}, which does not chain to a root the root ledger records`,
          root: false,
        };
      // Dated after expiry: an expired key vouches for nothing. (An entry dated before notBefore is the --now rule's to
      // refuse at write time.)
      if (new Date(e.at) > cert.notAfter)
        return { why: `signed by intermediate ${fp} after it expired (${e.at})`, root: false };
      // Revoked: the ledger's own order decides (an entry after the recovery in the chain), and the root's record of
      // when, for a ledger cut short.
      if (counted.some((x) => revokes(x).includes(fp)))
        return { why: `signed by intermediate ${fp} after the entry that revoked it`, root: false };
      // The root's record, for a ledger cut short: by sequence, so a workstation clock behind CI's jams nothing the key
      // signed before.
      const r = rt.revoked.get(fp);
      if (r && (r.afterSeq !== undefined ? e.seq > r.afterSeq : e.at > r.at))
        return {
          why:
            `signed by intermediate ${fp} after it was revoked ` +
            `(${r.at}${r.afterSeq !== undefined ? `, after entry ${r.afterSeq}` : ''})`,
          root: false,
        };
      if (e.created.some((k) => k.kind === 'intermediate' || k.kind === 'root'))
        return {
          why: 'records a CA certificate but is signed by an intermediate: only a root-signed entry can',
          root: false,
        };
      return { root: false };
    },
    () => {},
  );
  c.scopes.set(scope, t);
  return t;
}

/**
 * The signing gate's ledger check: a key that signs on top of an entry that
 * does not count makes the ledger unrepairable without a rewrite (removing the
 * entry breaks the chain of everything signed after it), so CI refuses before
 * opening an intermediate key and a ceremony before opening the root key.
 */
export function assertLedgerCounts(mesh: Mesh, ledger: 'root' | string): void {
  const t = ledger === 'root' ? rootLedgerTrust(mesh) : scopeLedgerTrust(mesh, ledger);
  const p = t.problems[0];
  if (p) {
    throw new TrellisError('verification-failed', `entry ${p.seq}: ${p.message}: refusing to sign on top of it`, {
      file: t.file,
      field: `seq ${p.seq}`,
      hint:
        'restore the ledger from git history to before that entry (entries a pull request appended do not belong ' +
        'in it), run trellis-ci verify, then rerun',
    });
  }
}

/**
 * The last confirmed custodian record holding `field` in its details: only
 * entries that count in the root ledger (root-signed, or the legacy prefix of
 * a ledger written before ledgers were signed). Recipients, and any other
 * custodian confirmation, read through here.
 */
export function lastConfirmedRecord(mesh: Mesh, field: string): Record<string, unknown> | undefined {
  return rootLedgerTrust(mesh)
    .counted.map((e) => e.details)
    .filter((d) => d && d[field] !== undefined)
    .at(-1);
}
