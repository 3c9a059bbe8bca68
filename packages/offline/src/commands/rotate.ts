import fs from 'node:fs';
import type { CommandModule } from 'yargs';
import {
  TrellisError, activeIntermediate, actor, advanceRoot, advanceScope, assertNoRootOverlap, certRef, certificatePem, clock, effectWrites, encryptTo,
  evidenceFiles, evidencePaths, fingerprint, formatDuration, importSigningKey, iso, keyId, loadMesh, nodeCryptoSeam, parseDuration, parseEvidence,
  paths, procedureId, requireIdentities, scopeDef, serializeScopeState, trustBundleFiles, trustedIntermediatesAfter, withStore,
  type Evidence, type FileWrite, type Mesh, type Store,
} from '@trellis/core';
import { linkCertificate, mintIntermediate, mintRoot, openRootKey, resignIntermediate, type RootSigner } from '../ceremony.js';
import { requireOfflinePosture } from '../posture.js';
import { offlineEntry, recipientsToRecord, rootRecordWrites, type Posture } from '../records.js';

interface Args {
  store?: string;
  what: 'intermediate' | 'root';
  scope?: string;
  propagation?: string;
  abort?: boolean;
  finalize?: boolean;
  confirmRecipients?: boolean;
  now?: string;
  allowOnline?: boolean;
}

export const rotate: CommandModule<object, Args> = {
  command: 'rotate <what> [scope]',
  describe: 'Begin (or abort) a planned intermediate rotation; begin or finalize a root rotation',
  builder: (y) => y
    .positional('what', { choices: ['intermediate', 'root'] as const, demandOption: true })
    .positional('scope', { type: 'string', describe: 'the scope (rotate intermediate)' })
    .option('propagation', { type: 'string', describe: 'how long bundles trusting {old, new} propagate before CI switches signing (default defaults.overlap.propagation, 24h)' })
    .option('abort', { type: 'boolean', describe: 'intermediate: return the scope to its old intermediate (until retire)' })
    .option('finalize', { type: 'boolean', describe: 'root: drop the old root, the link and the old intermediate certificates' })
    .example('$0 rotate intermediate us-east-1', 'planned rotation; CI runs the phases')
    .example('$0 rotate intermediate us-east-1 --propagation 1h', 'a key holder left: do not wait a day')
    .example('$0 rotate intermediate us-east-1 --abort', 'the new key is defective')
    .example('$0 rotate root', 'then, once consumers have the new root: $0 rotate root --finalize') as never,
  handler: async (a) => {
    const posture = requireOfflinePosture(a);
    if (a.what === 'intermediate') {
      if (!a.scope) throw new TrellisError('usage', 'rotate intermediate needs a SCOPE');
      if (a.finalize) throw new TrellisError('usage', '--finalize belongs to rotate root');
      if (a.abort && a.propagation) throw new TrellisError('usage', '--abort takes no --propagation');
      const propagation = a.propagation === undefined ? undefined : parseDuration(a.propagation, { field: '--propagation' }, 'usage');
      await withStore(a.store, (store) => (a.abort ? abortIntermediate(store, a.scope!, a, posture) : beginIntermediate(store, a.scope!, propagation, a, posture)));
    } else {
      if (a.scope || a.abort || a.propagation) throw new TrellisError('usage', 'rotate root takes only --finalize');
      await withStore(a.store, (store) => (a.finalize ? finalizeRoot(store, a, posture) : beginRoot(store, a, posture)));
    }
  },
};

const rootIds = () => requireIdentities('root', process.env, (p) => fs.readFileSync(p, 'utf8'));
const say = (text: string) => process.stdout.write(`${text}\n`);

function readEvidence(store: Store, scope: string, id: string | undefined): Evidence | undefined {
  const text = id ? store.read(evidencePaths(scope, id).json) : undefined;
  return text ? parseEvidence(text) : undefined;
}

/** Every write of a scope-changing step: its effects, state, evidence, both ledgers, and the recomposed bundles. */
function scopeStepWrites(mesh: Mesh, scope: string, writes: FileWrite[], evidence: Evidence, op: string, details: Record<string, unknown>, now: Date, posture: Posture, root: RootSigner, created: { kind: 'intermediate'; fingerprint: string; serial: string; subject: string; notAfter: string }[] = []): FileWrite[] {
  const ev = evidenceFiles(evidence);
  const out = [...writes, ...ev.writes];
  out.push({ path: paths.ledger(scope), content: offlineEntry(mesh.material.get(scope)!.ledger, op, now, posture, { scope, ...details, ...ev.link }, created, root) });
  out.push({ path: paths.rootLedger, content: offlineEntry(mesh.rootLedger, op, now, posture, { scope, ...details, ...ev.link }, created, root) });
  out.push(...trustBundleFiles(mesh, trustedIntermediatesAfter(mesh, out)));
  return out;
}

async function beginIntermediate(store: Store, scope: string, propagationFlag: number | undefined, a: Args, posture: Posture): Promise<void> {
  const mesh = loadMesh(store);
  const now = clock(a.now);
  scopeDef(mesh, scope);
  const current = activeIntermediate(mesh, scope);
  const m = mesh.material.get(scope)!;
  assertNoRootOverlap(mesh.rootState!, scope);
  const propagation = propagationFlag ?? mesh.config.overlap.propagation;
  const id = procedureId(now, 'rotation');
  advanceScope(m.state!, { type: 'begin', next: '', propagation, id }, now, scope); // refuses a wrong phase before the root key is touched
  const recipients = recipientsToRecord(mesh, Boolean(a.confirmRecipients));
  const root = await openRootKey(mesh, rootIds(), now);
  const ca = await mintIntermediate(scope, mesh.config, root, now, nodeCryptoSeam);
  const t = advanceScope(m.state!, { type: 'begin', next: fingerprint(ca.cert), propagation, id }, now, scope);
  const evidence: Evidence = {
    id, kind: 'intermediate-rotation', scope, status: 'in-progress', started: iso(now), old: [certRef(current)], new: [certRef(ca.cert)],
    steps: [{ step: 'publish', at: iso(now), actor: actor(), tool: 'trellis-root rotate intermediate', note: `bundles trust {old, new}; propagation ${formatDuration(propagation)}` }],
    affected: [...m.leaves].map(([service, r]) => ({ service, oldSerial: r.serial })),
  };
  const writes = [
    ...effectWrites(mesh, scope, t.effects, { pem: certificatePem(ca.cert), keyAge: await encryptTo([mesh.config.recipients.ci], ca.keyPem) }),
    { path: paths.state(scope), content: serializeScopeState({ ...t.state, evidence: id }) },
  ];
  const created = [{ kind: 'intermediate' as const, ...certRef(ca.cert) }];
  store.commit(scopeStepWrites(mesh, scope, writes, evidence, 'rotate-intermediate', { phase: 'publish', propagation: formatDuration(propagation), ...recipients }, now, posture, root, created));
  say(`${scope}: publish. Next intermediate ${fingerprint(ca.cert)} is in the bundles beside ${fingerprint(current)}; signing stays on the old one.`);
  say(`the switch gate opens ${t.state.rotation!.switchAt}; commit and push, then CI's renew advances the phases (evidence: ${evidencePaths(scope, id).md})`);
}

async function abortIntermediate(store: Store, scope: string, a: Args, posture: Posture): Promise<void> {
  const mesh = loadMesh(store);
  const now = clock(a.now);
  scopeDef(mesh, scope);
  const m = mesh.material.get(scope)!;
  activeIntermediate(mesh, scope);
  const from = m.state!.phase;
  const t = advanceScope(m.state!, { type: 'abort' }, now, scope);
  const prior = readEvidence(store, scope, m.state!.evidence);
  const evidence: Evidence = {
    ...(prior ?? { id: procedureId(now, 'rotation'), kind: 'intermediate-rotation', scope, started: iso(now), old: [], new: [], affected: [] }),
    status: 'aborted', ended: iso(now),
    steps: [...(prior?.steps ?? []), { step: 'abort', at: iso(now), actor: actor(), tool: 'trellis-root rotate intermediate --abort', note: `aborted in ${from}: the new intermediate leaves every bundle` }],
  };
  const writes = [...effectWrites(mesh, scope, t.effects), { path: paths.state(scope), content: serializeScopeState({ ...t.state, evidence: undefined }) }];
  // Both ledgers' entries are root-signed, so an abort opens the root key too.
  const root = await openRootKey(mesh, rootIds(), now);
  store.commit(scopeStepWrites(mesh, scope, writes, evidence, 'rotate-intermediate-abort', { from }, now, posture, root));
  say(`${scope}: rotation aborted in ${from}; signing is back on ${t.state.active}.`);
  if (from === 'switch') say('leaves minted by the aborted intermediate are re-minted by the next trellis-ci renew');
}

async function beginRoot(store: Store, a: Args, posture: Posture): Promise<void> {
  const mesh = loadMesh(store);
  const now = clock(a.now);
  const id = procedureId(now, 'root-rotation');
  advanceRoot(mesh.rootState!, { type: 'begin', fresh: '', retiringKey: '', id }, now);
  const rotating = mesh.scopes.filter((s) => mesh.material.get(s.name)!.state && mesh.material.get(s.name)!.state!.phase !== 'steady').map((s) => s.name);
  if (rotating.length) {
    throw new TrellisError('wrong-phase', `scope(s) ${rotating.join(', ')} are mid-rotation`, { hint: 'let CI retire the rotation, or abort it (trellis-root rotate intermediate SCOPE --abort), before rotating the root' });
  }
  const recipients = recipientsToRecord(mesh, Boolean(a.confirmRecipients));
  const old = await openRootKey(mesh, rootIds(), now);
  const fresh = await mintRoot(mesh.config, now, nodeCryptoSeam);
  const freshSigner = { cert: fresh.cert, ...(await importSigningKey(fresh.keyPem)) };
  const link = await linkCertificate(fresh.cert, old, now, nodeCryptoSeam);
  const t = advanceRoot(mesh.rootState!, { type: 'begin', fresh: fingerprint(fresh.cert), retiringKey: keyId(old.cert), id }, now);

  const writes: FileWrite[] = [
    { path: paths.rootCert, content: certificatePem(fresh.cert) },
    { path: paths.roots, content: certificatePem(old.cert) + certificatePem(fresh.cert) },
    { path: paths.rootKey, content: await encryptTo(mesh.config.recipients.offline, fresh.keyPem) },
    { path: paths.rootPrevious, content: certificatePem(old.cert) },
    { path: paths.rootPreviousKey, content: mesh.rootKeyAge! },
    { path: paths.link, content: certificatePem(link) },
    ...(await rootRecordWrites(mesh, t.state, [freshSigner, old], now)),
  ];
  const resigned = [];
  for (const s of mesh.scopes) {
    const m = mesh.material.get(s.name)!;
    if (!m.intermediate) continue;
    const cert = await resignIntermediate(m.intermediate, s.name, mesh.config, freshSigner, now, nodeCryptoSeam);
    resigned.push(cert);
    writes.push(
      { path: paths.intermediate(s.name), content: certificatePem(cert) },
      { path: paths.oldRootIntermediate(s.name), content: certificatePem(m.intermediate) },
      { path: paths.state(s.name), content: serializeScopeState({ ...m.state!, active: fingerprint(cert) }) },
      { path: paths.ledger(s.name), content: offlineEntry(m.ledger, 'resign-intermediate', now, posture, { scope: s.name, root: fingerprint(fresh.cert), rotation: id }, [{ kind: 'intermediate', ...certRef(cert) }], old) },
    );
  }
  const evidence: Evidence = {
    id, kind: 'root-rotation', scope: 'root', status: 'in-progress', started: iso(now), old: [certRef(old.cert)], new: [certRef(fresh.cert), certRef(link), ...resigned.map(certRef)],
    steps: [{ step: 'overlap', at: iso(now), actor: actor(), tool: 'trellis-root rotate root', note: `custody of the old root proven; ${resigned.length} intermediate(s) re-signed with their keys preserved; link certificate issued` }],
    affected: [],
  };
  const ev = evidenceFiles(evidence);
  writes.push(...ev.writes);
  writes.push({
    path: paths.rootLedger,
    content: offlineEntry(mesh.rootLedger, 'rotate-root', now, posture, { phase: 'overlap', ...recipients, ...ev.link }, [
      { kind: 'root', ...certRef(fresh.cert) }, { kind: 'root', ...certRef(link) }, ...resigned.map((c) => ({ kind: 'intermediate' as const, ...certRef(c) })),
    ], old),
  });
  writes.push(...trustBundleFiles(mesh, trustedIntermediatesAfter(mesh, writes)));
  store.commit(writes);
  say(`root overlap: new root ${fingerprint(fresh.cert)}; roots.pem holds {old, new}; link certificate in ${paths.link}.`);
  say(`${resigned.length} intermediate(s) re-signed with their keys preserved: live leaves keep verifying. Finalize once every root-anchoring consumer has the new root: trellis-root rotate root --finalize`);
}

async function finalizeRoot(store: Store, a: Args, posture: Posture): Promise<void> {
  const mesh = loadMesh(store);
  const now = clock(a.now);
  const t = advanceRoot(mesh.rootState!, { type: 'finalize' }, now);
  // Custody gate: the offline identity must open the new root key before the old root is dropped.
  const active = await openRootKey(mesh, rootIds(), now);
  const writes: FileWrite[] = [
    { path: paths.roots, content: certificatePem(active.cert) },
    { path: paths.rootPrevious, content: null },
    { path: paths.rootPreviousKey, content: null },
    { path: paths.link, content: null },
    ...mesh.scopes.map((s) => ({ path: paths.oldRootIntermediate(s.name), content: null })),
    ...(await rootRecordWrites(mesh, t.state, [active], now)),
  ];
  const prior = readEvidence(store, 'root', mesh.rootState!.rotation?.id);
  const evidence: Evidence = {
    ...(prior ?? { id: procedureId(now, 'root-rotation'), kind: 'root-rotation', scope: 'root', started: iso(now), old: [], new: [certRef(active.cert)], affected: [] }),
    status: 'completed', ended: iso(now),
    steps: [...(prior?.steps ?? []), { step: 'finalize', at: iso(now), actor: actor(), tool: 'trellis-root rotate root --finalize', note: 'custody of the new root proven; old root, link and old-root intermediate certificates dropped' }],
  };
  const ev = evidenceFiles(evidence);
  writes.push(...ev.writes, { path: paths.rootLedger, content: offlineEntry(mesh.rootLedger, 'rotate-root-finalize', now, posture, { dropped: mesh.rootState!.previous, ...ev.link }, [], active) });
  store.commit(writes);
  say(`root rotation finalized: ${fingerprint(active.cert)} is the only root.`);
}
