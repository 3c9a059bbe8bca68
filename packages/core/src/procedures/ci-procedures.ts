/**
 * The CI procedures as plain functions beside the reducers: from the loaded
 * mesh, `now` and the opened intermediate keys to the writes, the leaves to
 * hand out, and what to tell the operator. trellis-ci only loads, opens keys,
 * calls these, writes the output directory, commits and prints.
 */
import { fingerprint, keyId, type Certificate } from '../x509/certificates.js';
import { pemEncode } from '../crypto/crypto.js';
import { signingKeyObject, type CryptoSeam } from '../x509/seam.js';
import { evidenceFiles, parseEvidence, recordRemint } from '../ledger/evidence.js';
import { serializeIssuanceRecord, type LeafRecord } from '../ledger/issuance.js';
import { appendToLedger } from '../ledger/ledger.js';
import { ledgerSigner } from '../ledger/ledger-signature.js';
import { assertIssuanceProven, issuanceBinding, leafCreated, provenLeafRecord } from '../ledger/record-proofs.js';
import { renewRecord } from '../ledger/renew-record.js';
import { leafBatch, mintedFromBatch, signHostLeaf, type MintedLeaf, type SigningIntermediate } from '../x509/leaf.js';
import { crlSetOf, liveIntermediates, materialOf } from '../trust/live.js';
import { effectWrites } from '../rotation/effects.js';
import { paths } from '../model/paths.js';
import { scopeDef, trustBundleFiles } from '../trust/scope-trust.js';
import type { Mesh } from '../model/mesh.js';
import type { RenewPlan } from './plan.js';
import { BACKDATE_MS, assertSignsAt } from '../x509/profiles.js';
import { crlEntriesFor, crlSignedBy, crlStaleness, parseCrls, signAnchorCrl, type Crl } from '../x509/revocation.js';
import { advanceScope, type LeafLifetimes } from '../rotation/rotation.js';
import { fleetGate, probeEvidence } from '../rotation/fleet-gate.js';
import { serializeScopeState } from '../ledger/state-files.js';
import { mergeWrites, type FileWrite } from '../model/file-write.js';
import { iso } from '../model/time.js';
import { TrellisError } from '../model/errors.js';
import type { HostKeyRequest } from '../x509/csr.js';
import { hostKeyHistory } from '../custody/host-keys.js';
import { requireScopeKey } from '../custody/scope-custody.js';

/** A live intermediate's opened key, and which CRLs of the scope's crl.pem it signs (crlSetOf decides). */
export interface CrlSigner extends SigningIntermediate {
  leafCrl: boolean;
  anchorCrl: boolean;
}

/** The keys a CI procedure holds for one scope: the active signer, and every live key crl.pem needs. */
export interface ScopeKeys {
  signer: SigningIntermediate;
  crl: CrlSigner[];
}

export interface PhaseStep {
  scope: string;
  step: string;
  /** A fleet-gated step: the probe runs its gate decision rests on (the ledger entry cites them). */
  fleet?: string[];
}

/** What a scope's retire gate waits for: its longest declared leaf TTL and its latest recorded leaf expiry. */
export function leafLifetimes(mesh: Mesh, scope: string): LeafLifetimes {
  const def = scopeDef(mesh, scope);
  const m = mesh.material.get(scope)!;
  return {
    longestLeafTtl: Math.max(0, ...def.services.map((s) => s.ttl ?? mesh.config.ttl.leaf)),
    latestLeafExpiry: new Date(Math.max(0, ...[...m.leaves.values()].map((l) => l.notAfter.getTime()))),
  };
}

/** Advances every scope whose rotation gate is met (the tick of advanceScope); pure. */
export function advancePhases(
  mesh: Mesh,
  scopes: string[],
  now: Date,
  actor: string,
): { writes: FileWrite[]; steps: PhaseStep[] } {
  const writes: FileWrite[] = [];
  const steps: PhaseStep[] = [];
  const probes = probeEvidence(mesh, now).runs;
  for (const scope of scopes) {
    const m = mesh.material.get(scope)!;
    if (!m.state || !m.intermediate) continue;
    const gate = m.state.phase === 'steady' ? undefined : fleetGate(mesh, scope, m.state, probes);
    // Rollback on evidence: an endpoint refusing clients of the new intermediate holds every gate, whatever the mode.
    if (gate?.refusing.length) continue;
    const fleet = m.state.rotation?.gate === 'fleet' ? gate : undefined;
    const t = advanceScope(
      m.state,
      { type: 'tick', ...leafLifetimes(mesh, scope), fleetReady: fleet?.ready },
      now,
      scope,
    );
    if (!t.step) continue;
    steps.push({ scope, step: t.step, ...(fleet && !m.state.rotation?.aborted ? { fleet: fleet.cites } : {}) });
    let state = t.state;
    if (m.openEvidence) {
      const prior = parseEvidence(m.openEvidence);
      const done = t.step === 'retire';
      const proof =
        fleet && !m.state.rotation?.aborted ? `; the fleet ready by probe runs ${fleet.cites.join(', ')}` : '';
      const note =
        (t.step === 'switch'
          ? 'signing moved to the new intermediate; every leaf re-minted by this renew'
          : 'every old-key leaf has expired: the old intermediate and its key are removed') + proof;
      writes.push(
        ...evidenceFiles({
          ...prior,
          steps: [...prior.steps, { step: t.step, at: iso(now), actor, tool: 'trellis-ci renew', note }],
          ...(done ? { status: 'completed' as const, ended: iso(now) } : {}),
        }).writes,
      );
      if (done) state = { ...state, evidence: undefined };
    }
    writes.push(...effectWrites(mesh, scope, t.effects), {
      path: paths.state(scope),
      content: serializeScopeState(state),
    });
  }
  return { writes, steps };
}

/** Why the scope's crl.pem must be re-signed now, or undefined. */
export function scopeCrlStaleness(mesh: Mesh, scope: string, now: Date): Promise<string | undefined> {
  const set = crlSetOf(liveIntermediates(mesh, scope));
  const m = materialOf(mesh, scope)!;
  return crlStaleness(
    m.crlPem,
    set.leaf.map((l) => l.cert),
    set.anchor.map((l) => l.cert),
    m.state!.revoked,
    now,
  );
}

/** The scope's crl.pem, as crlSetOf says: each signer's leaf CRL and anchor CRL. */
export async function scopeCrlWrite(
  mesh: Mesh,
  scope: string,
  signers: CrlSigner[],
  now: Date,
  seam: CryptoSeam,
): Promise<FileWrite> {
  const revoked = materialOf(mesh, scope)?.state?.revoked ?? []; // a scope its first ceremony mints has revoked nothing
  // --now must lie inside the validity of every key that signs.
  for (const s of signers)
    assertSignsAt(
      {
        label: `${scope} intermediate ${fingerprint(s.cert)}`,
        notBefore: s.cert.notBefore,
        notAfter: s.cert.notAfter,
        file: paths.intermediate(scope),
        tier: 'intermediate',
      },
      now,
    );
  const window = {
    thisUpdate: new Date(now.getTime() - BACKDATE_MS),
    nextUpdate: new Date(now.getTime() + mesh.config.crl.leaf),
  };
  const crls = [
    ...(await Promise.all(
      signers
        .filter((s) => s.leafCrl)
        .map((s) =>
          seam.signCrl({
            issuer: s.cert,
            key: s.key,
            algorithm: s.algorithm,
            ...window,
            entries: crlEntriesFor(s.cert, revoked, now),
          }),
        ),
    )),
    ...(await Promise.all(
      signers
        .filter((s) => s.anchorCrl)
        .map((s) => signAnchorCrl({ issuer: s.cert, key: s.key, algorithm: s.algorithm, ...window }, seam)),
    )),
  ];
  return { path: paths.scopeCrl(scope), content: crls.join('') };
}

/**
 * The scope's crl.pem after a ceremony that mints `fresh` (`pending`: the
 * ceremony's writes): the fresh intermediate's leaf and anchor CRLs, signed now
 * by the one key the ceremony holds, beside the CRLs already there that a
 * still-live intermediate signed. So the first release that anchors it already
 * carries what full-chain CRL checking needs, whatever deploys before the next
 * renew (which re-signs the whole file).
 */
export async function ceremonyCrlWrite(
  mesh: Mesh,
  scope: string,
  pending: readonly FileWrite[],
  fresh: SigningIntermediate,
  now: Date,
  seam: CryptoSeam,
): Promise<FileWrite> {
  const set = crlSetOf(liveIntermediates(mesh, scope, pending));
  const isFresh = (c: Certificate) => fingerprint(c) === fingerprint(fresh.cert);
  const others = [...new Set([...set.leaf, ...set.anchor])].map((l) => l.cert).filter((c) => !isFresh(c));
  const existing = mesh.material.get(scope)?.crlPem;
  const kept: string[] = [];
  for (const crl of existing ? safeParseCrls(existing) : []) {
    if (await someSigned(crl, others)) kept.push(pemEncode('X509 CRL', new Uint8Array(crl.rawData)));
  }
  const signer: CrlSigner = {
    ...fresh,
    leafCrl: set.leaf.some((l) => isFresh(l.cert)),
    anchorCrl: set.anchor.some((l) => isFresh(l.cert)),
  };
  const signed = await scopeCrlWrite(mesh, scope, [signer], now, seam);
  return { path: paths.scopeCrl(scope), content: kept.join('') + signed.content };
}

function safeParseCrls(pem: string): Crl[] {
  try {
    return parseCrls(pem);
  } catch {
    return []; // an unreadable file is replaced: renew re-signs every CRL it is missing
  }
}

async function someSigned(crl: Crl, issuers: Certificate[]): Promise<boolean> {
  for (const c of issuers) if (await crlSignedBy(crl, c)) return true;
  return false;
}

/**
 * Mints the scope's leaves from its template: checks and randomness here, signing by `sign` (worker threads in
 * trellis-ci).
 */
async function mintScopeLeaves(
  mesh: Mesh,
  scope: string,
  services: string[],
  signer: SigningIntermediate,
  now: Date,
  seam: CryptoSeam,
  hostKeys: ReadonlyMap<string, HostKeyRequest> = new Map(),
): Promise<MintedLeaf[]> {
  const def = scopeDef(mesh, scope);
  const byName = new Map(def.services.map((s) => [s.name, s]));
  const reqs = services.map((name) => {
    const service = byName.get(name)!;
    return {
      scope,
      service,
      trustDomain: mesh.config.trustDomain,
      ttl: service.ttl ?? mesh.config.ttl.leaf,
      algorithm: mesh.config.algorithms.leaf,
      now,
    };
  });
  // A host-held key is signed from its checked request, one by one: CI has no key to make for it.
  const hosted = reqs.filter((r) => r.service.key === 'host');
  const minted = await Promise.all(
    hosted.map((r) => {
      const request = hostKeys.get(`${scope}/${r.service.name}`);
      if (!request)
        throw new TrellisError('bad-scope', `${scope}/${r.service.name} has key: host but no checked request`, {
          file: paths.csr(scope, r.service.name),
        });
      return signHostLeaf(r, request.spki, signer, seam);
    }),
  );
  const ours = reqs.filter((r) => r.service.key !== 'host');
  if (!ours.length) return minted;
  const batch = await leafBatch(scope, ours, signer, seam);
  return [...mintedFromBatch(batch, await seam.signLeafBatch(batch, signingKeyObject(signer))), ...minted];
}

/**
 * Leaves re-minted under an open rotation or recovery are recorded in its evidence; the recovery completes when all
 * are.
 */
function remintEvidence(mesh: Mesh, scope: string, leaves: MintedLeaf[], now: Date, actor: string): FileWrite[] {
  const m = mesh.material.get(scope)!;
  if (!m.openEvidence) return [];
  const prior = parseEvidence(m.openEvidence);
  const e = recordRemint(
    prior,
    leaves.map((l) => ({ service: l.service, serial: l.record.serial })),
    { at: iso(now), actor, tool: 'trellis-ci renew' },
    prior.kind === 'compromise-recovery',
  );
  const writes = evidenceFiles(e).writes;
  if (e.status === 'completed')
    writes.push({ path: paths.state(scope), content: serializeScopeState({ ...m.state!, evidence: undefined }) });
  return writes;
}

export interface RenewInput {
  /** The mesh as the phase steps leave it. */
  mesh: Mesh;
  plan: RenewPlan;
  phases: { writes: FileWrite[]; steps: PhaseStep[] };
  /** Scopes whose crl.pem is stale, with why. */
  staleCrls: Map<string, string>;
  /** Bundle files whose content changed. */
  staleBundles: FileWrite[];
  /** Opened keys of every scope that mints or re-signs its CRL. */
  keys: Map<string, ScopeKeys>;
  now: Date;
  actor: string;
  /** Every signature's: trellis-ci brings worker threads as its signLeafBatch. */
  seam: CryptoSeam;
  /** The checked request of each `key: host` service to mint, by `<scope>/<service>` (hostKeyRequests). */
  hostKeys?: ReadonlyMap<string, HostKeyRequest>;
}

export interface RenewResult {
  writes: FileWrite[];
  /** Minted leaves by scope, with the crl.pem each scope's output carries. */
  minted: { scope: string; leaves: MintedLeaf[]; crlPem?: string }[];
  count: number;
}

/** The host-held keys this entry's leaves certify: the memory a later key rotation is judged against. */
function hostKeysSigned(
  scope: string,
  leaves: MintedLeaf[],
  requests: ReadonlyMap<string, HostKeyRequest> = new Map(),
): { hostKeys?: Record<string, string> } {
  const signed = leaves.flatMap((l) => {
    const r = l.keyPem === undefined ? requests.get(`${scope}/${l.service}`) : undefined;
    return r ? [[l.service, r.keyId] as const] : [];
  });
  return signed.length ? { hostKeys: Object.fromEntries(signed) } : {};
}

/** The scopes a renew touches: they mint, re-sign a CRL, refresh a bundle, or took a phase step. */
export function renewTouched(i: Pick<RenewInput, 'plan' | 'phases' | 'staleCrls' | 'staleBundles'>): string[] {
  return [
    ...new Set([
      ...i.plan.mint.map((x) => x.scope),
      ...i.staleCrls.keys(),
      ...i.staleBundles.map((f) => f.path.split('/')[1]!),
      ...i.phases.steps.map((p) => p.scope),
    ]),
  ];
}

/** `trellis-ci renew`, after its plan: mint, re-sign CRLs, record, and append each touched scope's ledger. */
export async function renewScopes(i: RenewInput): Promise<RenewResult> {
  const { mesh, plan, phases, now } = i;
  const writes: FileWrite[] = [...phases.writes, ...i.staleBundles];
  const minted: RenewResult['minted'] = [];
  let count = 0;
  const touched = renewTouched(i);
  for (const scope of touched) {
    // Every scope-ledger entry is signed by the scope's intermediate, so every touched scope needs its keys.
    requireScopeKey(i.keys, scope);
    // The records carried forward must be proven before a signed entry binds them (else it would launder an edited
    // record).
    if (plan.mint.some((x) => x.scope === scope)) assertIssuanceProven(mesh, scope);
  }
  // Every scope's leaves are handed to the signer before any is awaited: workers sign one scope while this thread
  // records another.
  const signing = new Map(
    touched.map((scope) => {
      const services = plan.mint.filter((x) => x.scope === scope).map((x) => x.service);
      return [
        scope,
        services.length
          ? mintScopeLeaves(mesh, scope, services, i.keys.get(scope)!.signer, now, i.seam, i.hostKeys)
          : Promise.resolve([]),
      ];
    }),
  );
  // A refusal in one scope must not leave the others' promises unhandled.
  for (const p of signing.values()) p.catch(() => {});
  for (const scope of touched) {
    const m = materialOf(mesh, scope)!;
    const keys = i.keys.get(scope)!;
    let crl: FileWrite | undefined;
    if (i.staleCrls.has(scope)) {
      crl = await scopeCrlWrite(mesh, scope, keys.crl, now, i.seam);
      writes.push(crl);
    }
    const leaves = await signing.get(scope)!;
    minted.push({ scope, leaves, crlPem: crl?.content ?? m.crlPem });
    count += leaves.length;
    let binding: { sha256: string; count: number } | undefined;
    if (leaves.length) {
      const record = new Map(m.leaves);
      for (const l of leaves) record.set(l.service, l.record);
      const text = serializeIssuanceRecord(record);
      binding = issuanceBinding(text, record.size);
      writes.push({ path: paths.leaves(scope), content: text });
      // Only the re-mints the procedure caused belong in its evidence, not routine renewals.
      const caused = new Set(
        plan.mint.filter((x) => x.scope === scope && x.reason === 'issuer-changed').map((x) => x.service),
      );
      const remints = leaves.filter((l) => caused.has(l.service));
      if (remints.length) writes.push(...remintEvidence(mesh, scope, remints, now, i.actor));
    }
    const step = phases.steps.find((p) => p.scope === scope);
    writes.push({
      path: paths.ledger(scope),
      content: appendToLedger(
        m.ledger,
        {
          op: 'renew',
          at: iso(now),
          actor: i.actor,
          details: {
            ...(step ? { phase: step.step, ...(step.fleet ? { fleet: step.fleet } : {}) } : {}),
            ...renewRecord(
              plan.mint.filter((x) => x.scope === scope),
              binding,
            ),
            ...(crl ? { crl: i.staleCrls.get(scope) } : {}),
            ...hostKeysSigned(scope, leaves, i.hostKeys),
            ...(i.staleBundles.some((f) => f.path.startsWith(`bundles/${scope}/`)) ? { bundles: 'recomposed' } : {}),
          },
        },
        paths.ledger(scope),
        ledgerSigner(keys.signer),
      ).text,
    });
  }
  return { writes: mergeWrites(writes), minted, count };
}

/** The bundle files of `scopes` whose composed content differs from what the store holds. */
export function staleBundleFiles(
  mesh: Mesh,
  scopes: string[],
  current: (path: string) => string | undefined,
): FileWrite[] {
  return trustBundleFiles(mesh).filter(
    (f) => scopes.some((s) => f.path.startsWith(`bundles/${s}/`)) && current(f.path) !== f.content,
  );
}

/** The record of the leaf `revoke` would revoke, or the refusal; checked before any key is opened. */
export function revocableLeaf(mesh: Mesh, scope: string, service: string): LeafRecord {
  const def = scopeDef(mesh, scope);
  if (!def.services.some((s) => s.name === service))
    throw new TrellisError('unknown-service', `scope ${scope} declares no service "${service}"`, {
      file: paths.scopeFile(scope),
    });
  // The record as the signed ledger proves it: an edited serial must not make revoke revoke the wrong certificate.
  const rec = provenLeafRecord(mesh, scope, service);
  if (!rec)
    throw new TrellisError('not-yet-minted', `${scope}/${service} has no leaf to revoke`, {
      file: paths.leaves(scope),
      hint: 'trellis-ci renew mints it',
    });
  return rec;
}

/**
 * `trellis-ci revoke SCOPE/SERVICE`: the current leaf into the scope's CRL, and its replacement minted; for a
 * host-held key, the key recorded as revoked instead (no replacement: the host needs a new, confirmed key).
 */
export async function revokeLeaf(
  mesh: Mesh,
  scope: string,
  service: string,
  reason: string,
  keys: ScopeKeys,
  now: Date,
  actor: string,
  seam: CryptoSeam,
): Promise<{ writes: FileWrite[]; leaf: MintedLeaf | undefined; crlPem: string; serial: string }> {
  const m = mesh.material.get(scope)!;
  const rec = revocableLeaf(mesh, scope, service);
  // The revocation names its issuer by key, so it lands in the right CRL whatever certificate carries that key now.
  const issuer: Certificate =
    liveIntermediates(mesh, scope)
      .map((l) => l.cert)
      .find((c) => (rec.issuerKey ? keyId(c) === rec.issuerKey : false)) ?? m.intermediate!;
  const state = {
    ...m.state!,
    revoked: [
      ...m.state!.revoked,
      {
        service,
        serial: rec.serial,
        issuer: rec.issuerKey ?? keyId(issuer),
        notAfter: iso(rec.notAfter),
        at: iso(now),
        reason,
      },
    ],
  };
  const after: Mesh = { ...mesh, material: new Map(mesh.material).set(scope, { ...m, state }) };
  const crl = await scopeCrlWrite(after, scope, keys.crl, now, seam);
  // A host-held key is revoked with its leaf: no replacement for it; the host makes a new key, confirmed.
  const hostKey = scopeDef(mesh, scope).services.some((s) => s.name === service && s.key === 'host')
    ? hostKeyHistory(mesh, scope).get(service)?.at(-1)
    : undefined;
  const [leaf] = hostKey ? [] : await mintScopeLeaves(mesh, scope, [service], keys.signer, now, seam);
  const record = new Map(m.leaves);
  if (leaf) record.set(service, leaf.record);
  else record.delete(service);
  const leavesText = serializeIssuanceRecord(record);
  const details = {
    service,
    serial: rec.serial,
    notAfter: iso(rec.notAfter),
    reason,
    leaves: issuanceBinding(leavesText, record.size),
    ...(hostKey ? { revokedHostKey: hostKey } : {}),
  };
  const writes: FileWrite[] = [
    { path: paths.state(scope), content: serializeScopeState(state) },
    crl,
    { path: paths.leaves(scope), content: leavesText },
    {
      path: paths.ledger(scope),
      content: appendToLedger(
        m.ledger,
        { op: 'revoke', at: iso(now), actor, details, created: leaf ? [leafCreated(leaf)] : [] },
        paths.ledger(scope),
        ledgerSigner(keys.signer),
      ).text,
    },
  ];
  return { writes: mergeWrites(writes), leaf, crlPem: crl.content!, serial: rec.serial };
}
