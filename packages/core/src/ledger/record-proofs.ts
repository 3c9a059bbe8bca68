/**
 * Records are claims. `leaves.yaml`, `state.yaml` and evidence files are
 * machine-managed but sit in a repository anyone can send a pull request to,
 * so each is proven from the ledger entries that count (ledger-trust.ts):
 * what cannot be proven is a problem naming the file and field.
 */
import { fingerprint } from '../x509/certificates.js';
import { sha256Hex } from '../crypto/crypto.js';
import { TrellisError } from '../model/errors.js';
import type { Created, LedgerEntry } from './ledger.js';
import { rootLedgerTrust, scopeLedgerTrust, type LedgerTrust } from './ledger-trust.js';
import type { LeafRecord } from './issuance.js';
import type { MintedLeaf } from '../x509/leaf.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import { advanceRoot, advanceScope, type RootState, type ScopeState } from '../rotation/rotation.js';
import { parseDuration, iso } from '../model/time.js';
import { displaySerial } from '../x509/revocation.js';

export interface RecordProblem {
  file: string;
  field: string;
  message: string;
}

/** What a ledger records about a minted leaf: every field leaves.yaml will claim. */
export function leafCreated(l: Pick<MintedLeaf, 'service' | 'record' | 'subject'>): Created {
  const r = l.record;
  return {
    kind: 'leaf',
    fingerprint: r.fingerprint,
    serial: r.serial,
    subject: l.subject,
    notAfter: iso(r.notAfter),
    service: l.service,
    notBefore: iso(r.notBefore),
    issuer: r.issuer,
    ...(r.issuerKey ? { issuerKey: r.issuerKey } : {}),
    uris: r.uris,
    dns: r.dns,
  };
}

const LEAF_FIELDS: [keyof LeafRecord | 'subject' | 'service', (svc: string, r: LeafRecord) => string][] = [
  ['serial', (_, r) => r.serial],
  ['notBefore', (_, r) => iso(r.notBefore)],
  ['notAfter', (_, r) => iso(r.notAfter)],
  ['issuer', (_, r) => r.issuer],
  ['issuerKey', (_, r) => r.issuerKey ?? ''],
  ['uris', (_, r) => r.uris.join(',')],
  ['dns', (_, r) => r.dns.join(',')],
  ['service', (svc) => svc],
  ['subject', (_, r) => `CN=${r.dns[0] ?? ''}`],
];

const recorded = (c: Created, field: string): string | undefined => {
  const v = (c as unknown as Record<string, unknown>)[field];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : String(v);
};

const isSigned = (t: LedgerTrust, e: LedgerEntry) => t.signers.has(e.seq);

/**
 * What a renew or revoke entry records about the issuance record it writes:
 * the SHA-256 of leaves.yaml as written and how many records it holds. One
 * hash in the signed entry proves every record, so an entry stays a few
 * hundred bytes however many leaves it mints (entries before this recorded
 * each leaf in `created`; they are still read, see issuanceProof).
 */
export function issuanceBinding(leavesText: string, count: number): { sha256: string; count: number } {
  return { sha256: sha256Hex(leavesText), count };
}

/**
 * How many leaves an entry minted for a reason: the summary renew records, or the per-service reasons older entries
 * carried.
 */
function mintedFor(e: LedgerEntry, reason: string): number {
  const minted = e.details.minted as Record<string, unknown> | undefined;
  if (minted && typeof minted[reason] === 'number') return minted[reason];
  return Object.values((e.details.reasons ?? {}) as Record<string, unknown>).filter((r) => r === reason).length;
}

type LeafHit = { e: LedgerEntry; c: Created };

/** What the scope ledger proves about leaves.yaml, built once per ledger read (a linear pass, however many leaves). */
interface IssuanceProof {
  /**
   * The newest counting entry binding leaves.yaml by hash, when no entry listing leaves came after it: that hash proves
   * the whole file.
   */
  binding?: { e: LedgerEntry; sha256: string };
  /**
   * Entries listing leaves (older format): the last entry creating each fingerprint, and each service's newest leaf.
   */
  byFingerprint: Map<string, LeafHit>;
  newestByService: Map<string, LeafHit>;
}

const proofs = new WeakMap<LedgerTrust, IssuanceProof>();

function issuanceProof(t: LedgerTrust): IssuanceProof {
  let p = proofs.get(t);
  if (p) return p;
  p = { byFingerprint: new Map(), newestByService: new Map() };
  for (const e of t.counted) {
    // A scope's first intermediate starts an empty issuance record (a scope re-created under a retired one's name
    // starts over).
    if (e.op === 'intermediate') p.binding = undefined;
    const leaves = e.created.filter((c) => c.kind === 'leaf');
    for (const c of leaves) {
      const hit = { e, c };
      p.byFingerprint.set(c.fingerprint, hit);
      if (c.service !== undefined) p.newestByService.set(c.service, hit);
    }
    const b = e.details.leaves as { sha256?: unknown } | undefined;
    if (b && typeof b.sha256 === 'string') p.binding = { e, sha256: b.sha256 };
    else if (leaves.length) p.binding = undefined;
  }
  proofs.set(t, p);
  return p;
}

/** The file-level problem when a hash binds leaves.yaml: it must hash to what the newest binding entry recorded. */
function bindingProblem(
  mesh: Mesh,
  scope: string,
  b: NonNullable<IssuanceProof['binding']>,
): RecordProblem | undefined {
  const file = paths.leaves(scope);
  const have = mesh.material.get(scope)?.leavesSha256;
  if (have === b.sha256) return undefined;
  if (have === undefined)
    return {
      file,
      field: 'sha256',
      message: `missing, but scope-ledger entry ${b.e.seq} recorded it (sha256 ${b.sha256}): restore it from git`,
    };
  return {
    file,
    field: 'sha256',
    message: `does not hash to what scope-ledger entry ${b.e.seq} recorded (${b.sha256}): edited or rolled back?`,
  };
}

/**
 * Why a leaves.yaml record of `service` is not what the scope ledger
 * recorded. Since renew binds the file by hash (issuanceBinding), the whole
 * file must hash to the newest binding entry. Before that, the entry that
 * created the record's fingerprint must count, and agree on every field it
 * holds (entries written before signed ledgers hold fewer: serial, notAfter,
 * subject); a signed ledger must not name a newer leaf for the service (a
 * rolled-back record).
 */
function leafRecordProblems(mesh: Mesh, scope: string, service: string, rec: LeafRecord): RecordProblem[] {
  const t = scopeLedgerTrust(mesh, scope);
  const proof = issuanceProof(t);
  if (proof.binding) {
    const p = bindingProblem(mesh, scope, proof.binding);
    return p ? [p] : [];
  }
  const file = paths.leaves(scope);
  const hit = proof.byFingerprint.get(rec.fingerprint);
  if (!hit) {
    const serial = displaySerial(rec.serial);
    return [
      {
        file,
        field: service,
        message: `leaf ${serial} is not recorded in the scope ledger (fingerprint ${rec.fingerprint})`,
      },
    ];
  }
  const out: RecordProblem[] = [];
  for (const [field, claim] of LEAF_FIELDS) {
    const want = recorded(hit.c, field);
    if (want === undefined) {
      if (isSigned(t, hit.e) && field !== 'issuerKey')
        out.push({
          file,
          field: `${service}.${field}`,
          message: `the signed entry ${hit.e.seq} that created this leaf does not record its ${field}`,
        });
      continue;
    }
    if (want !== claim(service, rec))
      out.push({
        file,
        field: `${service}.${field}`,
        message:
          `${claim(service, rec) || '(none)'} is not what scope-ledger entry ${hit.e.seq} recorded (${want}): ` +
          `edited?`,
      });
  }
  const newest = proof.newestByService.get(service);
  if (newest && newest.c.fingerprint !== rec.fingerprint) {
    out.push({
      file,
      field: `${service}.fingerprint`,
      message:
        `the scope ledger's newest leaf for ${service} is ${displaySerial(newest.c.serial!)} (entry ` +
        `${newest.e.seq}), not ${displaySerial(rec.serial)}: rolled back?`,
    });
  }
  return out;
}

/** Every problem of a scope's leaves.yaml: one file-level problem under a hash binding, else each record's. */
export function issuanceRecordProblems(mesh: Mesh, scope: string): RecordProblem[] {
  const proof = issuanceProof(scopeLedgerTrust(mesh, scope));
  if (proof.binding) {
    const p = bindingProblem(mesh, scope, proof.binding);
    return p ? [p] : [];
  }
  const leaves = mesh.material.get(scope)?.leaves ?? new Map<string, LeafRecord>();
  return [...leaves].flatMap(([service, rec]) => leafRecordProblems(mesh, scope, service, rec));
}

/**
 * The refusal before a renew or revoke signs a new binding of leaves.yaml:
 * the records it carries forward must be proven, or the signature would
 * launder a record a pull request edited.
 */
export function assertIssuanceProven(mesh: Mesh, scope: string): void {
  const p = issuanceRecordProblems(mesh, scope)[0];
  if (p) {
    throw new TrellisError(
      'verification-failed',
      `${p.message}; refusing to sign a new issuance record on top of one the ledger does not prove`,
      {
        file: p.file,
        field: p.field,
        hint: `restore ${p.file} from git (it is machine-managed), run trellis-ci verify, then rerun`,
      },
    );
  }
}

/**
 * The current leaf of a service as proven by the scope ledger, or the refusal: revoke must never act on an edited
 * record.
 */
export function provenLeafRecord(mesh: Mesh, scope: string, service: string): LeafRecord | undefined {
  const rec = mesh.material.get(scope)?.leaves.get(service);
  if (!rec) return undefined;
  const p = leafRecordProblems(mesh, scope, service, rec)[0];
  if (p) {
    throw new TrellisError(
      'verification-failed',
      `${p.message}; refusing to act on a record the ledger does not prove`,
      {
        file: p.file,
        field: p.field,
        hint: `restore ${p.file} from git (it is machine-managed), run trellis-ci verify, then rerun`,
      },
    );
  }
  return rec;
}

/**
 * The scope's phase as its ledger's phase steps replay through the rotation reducer (the one place the transitions
 * live).
 */
function replayScope(t: LedgerTrust): { state?: ScopeState; problem?: { seq: number; message: string } } {
  let s: ScopeState | undefined;
  for (const e of t.counted) {
    const ca = e.created.find((c) => c.kind === 'intermediate')?.fingerprint;
    const at = new Date(e.at);
    try {
      if (e.op === 'intermediate' && ca) s = { phase: 'steady', active: ca, since: e.at, revoked: [] };
      else if (!s) continue;
      else if (e.op === 'rotate-intermediate' && ca && typeof e.details.propagation === 'string') {
        s = advanceScope(
          s,
          {
            type: 'begin',
            next: ca,
            propagation: parseDuration(e.details.propagation, {}, 'corrupt-store'),
            id: s.rotation?.id ?? '',
            ...(e.details.gate === 'fleet' ? { gate: 'fleet' as const } : {}),
          },
          at,
        ).state;
      } else if (e.op === 'renew' && (e.details.phase === 'switch' || e.details.phase === 'retire')) {
        // A fleet-gated step counts only when it cites probe runs (scopeStateProblems checks what they prove).
        const step = advanceScope(
          s,
          { type: 'tick', longestLeafTtl: 0, fleetReady: Array.isArray(e.details.fleet) },
          at,
        );
        if (step.step !== e.details.phase)
          return {
            problem: {
              seq: e.seq,
              message: `records a ${String(e.details.phase)} step its gate had not opened for (phase ${s.phase})`,
            },
          };
        s = step.state;
      } else if (e.op === 'rotate-intermediate-abort')
        s = advanceScope(s, { type: 'abort', longestLeafTtl: 0 }, at).state;
      else if (e.op === 'recover' && ca) s = advanceScope(s, { type: 'recover', fresh: ca }, at).state;
      else if (e.op === 'resign-intermediate' && ca) s = { ...s, active: ca };
      // Break-glass: only an entry the activated standby signed itself swaps it in (a recorded intermediate, or the
      // signature would not count).
      else if (
        e.op === 'activate-standby' &&
        typeof e.details.activated === 'string' &&
        t.signers.get(e.seq) &&
        fingerprint(t.signers.get(e.seq)!.cert) === e.details.activated
      ) {
        s = advanceScope(s, { type: 'recover', fresh: e.details.activated }, at).state;
      }
    } catch (err) {
      if (!(err instanceof TrellisError)) throw err;
      return {
        problem: {
          seq: e.seq,
          message: `its phase step does not follow from the entries before it (${err.message.split('\n')[0]})`,
        },
      };
    }
  }
  return { state: s };
}

/**
 * Why a scope's state.yaml is not what its ledger proves: the phase and the
 * active/next/previous intermediates its phase steps lead to, the switch gate
 * the rotation recorded, and the revoked leaves (each one a revoke entry; none
 * the ledger revoked dropped while the leaf lives).
 */
export function scopeStateProblems(mesh: Mesh, scope: string, now: Date): RecordProblem[] {
  const m = mesh.material.get(scope);
  const st = m?.state;
  if (!m?.intermediate || !st) return [];
  const t = scopeLedgerTrust(mesh, scope);
  const file = paths.state(scope);
  const { state: want, problem } = replayScope(t);
  if (problem) return [{ file: paths.ledger(scope), field: `seq ${problem.seq}`, message: problem.message }];
  if (!want)
    return [{ file, field: 'phase', message: "no entry of the scope ledger establishes this scope's intermediate" }];
  const out: RecordProblem[] = [];
  const diff = stateDiffer(file, "the scope ledger's phase steps", out);
  diff('phase', st.phase, want.phase);
  diff('active', st.active, want.active);
  diff('next', st.next, want.next);
  diff('previous', st.previous, want.previous);
  if (want.phase !== 'steady') diff('rotation.switchAt', st.rotation?.switchAt, want.rotation?.switchAt);
  if (want.phase !== 'steady') diff('rotation.gate', st.rotation?.gate, want.rotation?.gate);
  const revokes = t.counted.filter((e) => e.op === 'revoke' && typeof e.details.serial === 'string');
  st.revoked.forEach((r, i) => {
    if (!revokes.some((e) => e.details.serial === r.serial && e.details.service === r.service))
      out.push({
        file,
        field: `revoked[${i}].serial`,
        message: `revocation of ${r.service} ${displaySerial(r.serial)} is in no revoke entry of the scope ledger`,
      });
  });
  const leafExpiry = new Map(
    t.counted.flatMap((e) =>
      e.created.filter((c) => c.kind === 'leaf' && c.serial && c.notAfter).map((c) => [c.serial!, c.notAfter!]),
    ),
  );
  for (const e of revokes) {
    const serial = e.details.serial as string;
    // A revoke entry records the revoked leaf's notAfter: since renew binds leaves.yaml by hash, no entry lists that
    // leaf.
    const expires = typeof e.details.notAfter === 'string' ? e.details.notAfter : leafExpiry.get(serial);
    if (!st.revoked.some((r) => r.serial === serial) && (!expires || new Date(expires) > now)) {
      out.push({
        file,
        field: 'revoked',
        message:
          `the scope ledger revoked ${String(e.details.service)} ${displaySerial(serial)} (entry ${e.seq}) but ` +
          `state.yaml no longer lists it: un-revoked?`,
      });
    }
  }
  return out;
}

/**
 * The same for bundles/root/state.yaml: phase, active and previous root from the root ledger's steps; each revoked
 * intermediate a recover entry.
 */
export function rootStateProblems(mesh: Mesh): RecordProblem[] {
  const rs = mesh.rootState;
  if (!rs) return [];
  const t = rootLedgerTrust(mesh);
  const file = paths.rootState;
  let s: RootState | undefined;
  const dropped = new Set<string>();
  for (const e of t.counted) {
    const root = e.created.find((c) => c.kind === 'root')?.fingerprint;
    try {
      if (e.op === 'init' && root) s = { phase: 'steady', active: root, since: e.at, revoked: [] };
      else if (s && e.op === 'rotate-root' && root)
        s = advanceRoot(s, { type: 'begin', fresh: root, retiringKey: '', id: '' }, new Date(e.at)).state;
      else if (s && e.op === 'rotate-root-finalize') {
        for (const fp of t.revoked.keys()) dropped.add(fp);
        s = advanceRoot(s, { type: 'finalize' }, new Date(e.at)).state;
      }
    } catch (err) {
      if (!(err instanceof TrellisError)) throw err;
      return [
        {
          file: paths.rootLedger,
          field: `seq ${e.seq}`,
          message: 'its phase step does not follow from the entries before it',
        },
      ];
    }
  }
  if (!s)
    return t.entries.length
      ? [{ file, field: 'active', message: 'no init entry of the root ledger establishes the root' }]
      : [];
  const out: RecordProblem[] = [];
  const diff = stateDiffer(file, "the root ledger's steps", out);
  diff('phase', rs.phase, s.phase);
  diff('active', rs.active, s.active);
  diff('previous', rs.previous, s.previous);
  rs.revoked.forEach((r, i) => {
    if (!t.revoked.has(r.fingerprint))
      out.push({
        file,
        field: `revoked[${i}].fingerprint`,
        message: `revocation of ${r.fingerprint} is in no recover or retire entry of the root ledger`,
      });
  });
  return out;
}

/**
 * Where a procedure's evidence may live: `bundles/<scope>/evidence/<id>.json`
 * (a scope ledger links its own; the root ledger links any scope's and its
 * own), nothing that climbs out of the store.
 */
export function evidencePathProblem(rel: unknown, scope: string): string | undefined {
  if (typeof rel !== 'string') return 'is not a path';
  const m = /^bundles\/([a-z0-9-]{1,63})\/evidence\/[0-9A-Za-z][0-9A-Za-z_-]*(\.[0-9A-Za-z_-]+)*\.json$/.exec(rel);
  if (!m || (scope !== 'root' && m[1] !== scope)) {
    const dir = `bundles/${scope === 'root' ? '<scope>' : scope}/evidence/`;
    return `${JSON.stringify(rel)} is not a file under ${dir}: not read`;
  }
  return undefined;
}

/**
 * Every evidence link in a ledger: its path stays in the scope's evidence
 * directory (else it is never read), the file exists, and its SHA-256 is the
 * linked one, unless a later entry of a step that updates evidence without
 * relinking it (renew's phase steps and re-mints, recover closing a rotation)
 * follows.
 */
export function evidenceProblems(
  t: LedgerTrust,
  scope: string,
  read: (rel: string) => string | undefined,
  sha256: (s: string) => string,
): RecordProblem[] {
  const out: RecordProblem[] = [];
  t.entries.forEach((e, i) => {
    if (e.details.evidence === undefined) return;
    const field = `seq ${e.seq} details.evidence`;
    const why = evidencePathProblem(e.details.evidence, scope);
    if (why) return out.push({ file: t.file, field, message: `evidence path ${why}` });
    const rel = e.details.evidence as string;
    // The root ledger also links scope evidence; the scope's own ledger, which sees the renews that update it, checks
    // its hash.
    if (!t.counted.includes(e) || (scope === 'root' && !rel.startsWith('bundles/root/'))) return;
    const text = read(rel);
    if (text === undefined)
      return out.push({
        file: rel,
        field,
        message: `linked from ${t.file} entry ${e.seq} but missing: restore it from git`,
      });
    const later = t.entries.slice(i + 1);
    const relinked = later.some((x) => x.details.evidence === rel);
    const updatedSince = later.some(
      (x) =>
        x.op === 'recover' ||
        (x.op === 'renew' && (x.details.phase !== undefined || mintedFor(x, 'issuer-changed') > 0)),
    );
    if (!relinked && !updatedSince && sha256(text) !== e.details.sha256)
      out.push({
        file: rel,
        field: 'sha256',
        message: `does not hash to what ${t.file} entry ${e.seq} linked: edited?`,
      });
  });
  return out;
}

/** A recorded state field against what its ledger's replay leads to: a difference is an edit nobody signed. */
function stateDiffer(file: string, steps: string, out: RecordProblem[]) {
  return (field: string, have: string | undefined, should: string | undefined): void => {
    if (have !== should)
      out.push({ file, field, message: `${have ?? '(none)'}, but ${steps} lead to ${should ?? '(none)'}: edited?` });
  };
}
