/**
 * The offline procedures as plain functions: from the loaded mesh, `now` and
 * the opened root key(s) to the list of writes and what to tell the operator.
 * The commands only load, open keys, call one of these, commit and print; the
 * model-based test calls them directly. They live here, not in @trellis/core,
 * because they sign with the root and trellis-ci must not reach them.
 */
import {
  TrellisError,
  advanceRoot,
  confirmedEndpoints,
  displaySerial,
  scopeLedgerTrust,
  targetHosts,
  advanceScope,
  assertNoRootOverlap,
  certRef,
  certificatePem,
  ciRecipientIn,
  effectWrites,
  encryptTo,
  evidenceFiles,
  evidencePaths,
  fingerprint,
  formatDuration,
  caKeyFromPem,
  parseLedger,
  inRole,
  intermediateFiles,
  iso,
  keyId,
  liveIntermediates,
  paths,
  parseEvidence,
  procedureId,
  scopeDef,
  ceremonyCrlWrite,
  intermediateLost,
  leafLifetimes,
  serializeRootState,
  serializeScopeState,
  signedBy,
  trustBundleFiles,
  anchorsBy,
  type Certificate,
  type Created,
  type CryptoSeam,
  type Evidence,
  type FileWrite,
  type Mesh,
  type RevokedIntermediate,
  type RootState,
} from '@trellis/core';
import {
  linkCertificate,
  mintIntermediate,
  mintRoot,
  resignIntermediate,
  rootCrlPem,
  type RootSigner,
} from './ceremony.js';
import { offlineEntry, type Posture } from './records.js';

/** What every offline procedure is given besides the mesh and its keys. */
export interface Ceremony {
  mesh: Mesh;
  now: Date;
  posture: Posture;
  actor: string;
  /** Recipients to record in the root ledger (empty when unchanged): recipientsToRecord's answer. */
  recipients: Record<string, unknown>;
  seam: CryptoSeam;
}

export interface ProcedureResult {
  writes: FileWrite[];
  /** Lines for the operator, in order. */
  report: string[];
}

/** Recomposes every bundle as the store will be once `writes` are applied, and appends them. */
function withBundles(mesh: Mesh, writes: FileWrite[]): FileWrite[] {
  return [...writes, ...trustBundleFiles(mesh, anchorsBy(mesh, writes))];
}

/** The root state file and a freshly signed root CRL for it. */
export async function rootRecords(c: Ceremony, state: RootState, signers: RootSigner[]): Promise<FileWrite[]> {
  return [
    { path: paths.rootState, content: serializeRootState(state) },
    { path: paths.rootCrl, content: await rootCrlPem(signers, state.revoked, c.now, c.mesh.config.crl.root, c.seam) },
  ];
}

const intermediateCreated = (cert: Certificate): Created => ({ kind: 'intermediate', ...certRef(cert) });

/** Both ledgers and the evidence of one step on a scope, then every bundle recomposed. */
function scopeStep(
  c: Ceremony,
  scope: string,
  root: RootSigner,
  writes: FileWrite[],
  evidence: Evidence[],
  op: string,
  details: Record<string, unknown>,
  created: Created[] = [],
): FileWrite[] {
  const files = evidence.map(evidenceFiles);
  const link = files[0]?.link ?? {};
  const out = [...writes, ...files.flatMap((f) => f.writes)];
  const ledger = (c.mesh.material.get(scope) ?? c.mesh.retired.get(scope))!.ledger;
  out.push({
    path: paths.ledger(scope),
    content: offlineEntry(ledger, op, c.now, c.posture, { scope, ...details, ...link }, created, root),
  });
  out.push({
    path: paths.rootLedger,
    content: offlineEntry(
      c.mesh.rootLedger,
      op,
      c.now,
      c.posture,
      { scope, ...details, ...c.recipients, ...link },
      created,
      root,
    ),
  });
  return withBundles(c.mesh, out);
}

/**
 * A procedure id no evidence of this scope has used: two procedures at one
 * instant (two recoveries in a row, an abort and a new rotation) must not
 * overwrite each other's record. The ledger links every evidence file by path.
 */
function freshId(ledger: string, scope: string, now: Date, kind: string): string {
  const base = procedureId(now, kind);
  for (let n = 1; ; n++) {
    const id = n === 1 ? base : `${base}-${n}`;
    if (!ledger.includes(JSON.stringify(evidencePaths(scope, id).json))) return id;
  }
}

/** The evidence of the procedure under way on a scope, if any. */
function openEvidence(mesh: Mesh, scope: string): Evidence | undefined {
  const text = mesh.material.get(scope)?.openEvidence;
  return text ? parseEvidence(text) : undefined;
}

/** `trellis-root intermediate`: the first intermediate of each target scope. */
export async function ceremonyIntermediates(
  c: Ceremony,
  targets: string[],
  root: RootSigner,
): Promise<ProcedureResult & { minted: Map<string, Certificate> }> {
  const { mesh, now } = c;
  const minted = new Map<string, Certificate>();
  const writes: FileWrite[] = [];
  for (const scope of targets) {
    const ca = await mintIntermediate(scope, mesh.config, root, now, c.seam);
    minted.set(scope, ca.cert);
    writes.push(
      { path: paths.intermediate(scope), content: certificatePem(ca.cert) },
      // The scope's CI recipient only (its own, else the shared one): the root identity must not open what CI signs
      // with.
      { path: paths.intermediateKey(scope), content: await encryptTo([ciRecipientIn(mesh.config, scope)], ca.keyPem) },
      {
        path: paths.state(scope),
        content: serializeScopeState({ phase: 'steady', active: fingerprint(ca.cert), since: iso(now), revoked: [] }),
      },
      { path: paths.leaves(scope), content: '{}\n' },
      {
        path: paths.ledger(scope),
        content: offlineEntry(
          mesh.material.get(scope)!.ledger,
          'intermediate',
          now,
          c.posture,
          { scope, root: fingerprint(root.cert) },
          [intermediateCreated(ca.cert)],
          root,
        ),
      },
    );
    writes.push(
      await ceremonyCrlWrite(
        mesh,
        scope,
        writes,
        { scope, ...(await caKeyFromPem('intermediate', ca.cert, ca.keyPem)) },
        now,
        c.seam,
      ),
    );
  }
  writes.push({
    path: paths.rootLedger,
    content: offlineEntry(
      mesh.rootLedger,
      'intermediate',
      now,
      c.posture,
      { scopes: targets, ...c.recipients },
      [...minted.values()].map(intermediateCreated),
      root,
    ),
  });
  const report = [...minted].map(
    ([scope, cert]) => `minted ${scope} intermediate ${fingerprint(cert)} (expires ${iso(cert.notAfter)})`,
  );
  report.push(
    'commit and push the store (the ceremony is already reviewed: the pull request that declared the scope); ' +
      'CI mints the leaves on its next renew',
  );
  // A new scope changes what others trust (global trusts every scope), so every bundle is recomposed.
  return { writes: withBundles(mesh, writes), report, minted };
}

/** `trellis-root rotate intermediate SCOPE`: publish a next intermediate beside the active one. */
export async function beginIntermediateRotation(
  c: Ceremony,
  scope: string,
  propagation: number,
  root: RootSigner,
  gate?: 'fleet',
): Promise<ProcedureResult> {
  const { mesh, now } = c;
  scopeDef(mesh, scope);
  const m = mesh.material.get(scope)!;
  const current = inRole(liveIntermediates(mesh, scope), 'active')!.cert;
  assertNoRootOverlap(mesh.rootState!, scope);
  const id = freshId(m.ledger, scope, now, 'rotation');
  const ca = await mintIntermediate(scope, mesh.config, root, now, c.seam);
  const t = advanceScope(m.state!, { type: 'begin', next: fingerprint(ca.cert), propagation, id, gate }, now, scope);
  const evidence: Evidence = {
    id,
    kind: 'intermediate-rotation',
    scope,
    status: 'in-progress',
    started: iso(now),
    old: [certRef(current)],
    new: [certRef(ca.cert)],
    steps: [
      {
        step: 'publish',
        at: iso(now),
        actor: c.actor,
        tool: 'trellis-root rotate intermediate',
        note:
          `bundles trust {old, new}; propagation ${formatDuration(propagation)}` +
          (gate ? '; each gate also waits for probe evidence from the fleet' : ''),
      },
    ],
    affected: [...m.leaves].map(([service, r]) => ({ service, oldSerial: r.serial })),
  };
  const writes = [
    ...effectWrites(mesh, scope, t.effects, {
      pem: certificatePem(ca.cert),
      keyAge: await encryptTo([ciRecipientIn(mesh.config, scope)], ca.keyPem),
    }),
    { path: paths.state(scope), content: serializeScopeState({ ...t.state, evidence: id }) },
  ];
  // The publish release must already carry the next intermediate's CRLs: hosts still on it meet its leaves at the
  // switch.
  writes.push(
    await ceremonyCrlWrite(
      mesh,
      scope,
      writes,
      { scope, ...(await caKeyFromPem('intermediate', ca.cert, ca.keyPem)) },
      now,
      c.seam,
    ),
  );
  return {
    writes: scopeStep(
      c,
      scope,
      root,
      writes,
      [evidence],
      'rotate-intermediate',
      { phase: 'publish', propagation: formatDuration(propagation), ...(gate ? { gate } : {}) },
      [intermediateCreated(ca.cert)],
    ),
    report: [
      `${scope}: publish. Next intermediate ${fingerprint(ca.cert)} is in the bundles beside ` +
        `${fingerprint(current)}; signing stays on the old one.`,
      `the switch gate opens ${t.state.rotation!.switchAt}` +
        (gate ? ' once probes show every endpoint trusting the scope accepts its clients (trellis-ci probe)' : '') +
        `; commit and push, then CI's renew advances the phases (evidence: ${evidencePaths(scope, id).md})`,
    ],
  };
}

/**
 * `trellis-root rotate intermediate SCOPE --abort`: back to the old intermediate, until retire. The root signs its
 * ledger entries.
 */
export function abortIntermediateRotation(c: Ceremony, scope: string, root: RootSigner): ProcedureResult {
  const { mesh, now } = c;
  scopeDef(mesh, scope);
  const m = mesh.material.get(scope)!;
  const from = m.state!.phase;
  const t = advanceScope(m.state!, { type: 'abort', ...leafLifetimes(mesh, scope) }, now, scope);
  const prior = openEvidence(mesh, scope);
  const evidence: Evidence = {
    ...(prior ?? {
      id: freshId(m.ledger, scope, now, 'rotation'),
      kind: 'intermediate-rotation',
      scope,
      started: iso(now),
      old: [],
      new: [],
      affected: [],
    }),
    status: 'aborted',
    ended: iso(now),
    steps: [
      ...(prior?.steps ?? []),
      {
        step: 'abort',
        at: iso(now),
        actor: c.actor,
        tool: 'trellis-root rotate intermediate --abort',
        note: `aborted in ${from}: the new intermediate leaves every bundle`,
      },
    ],
  };
  const writes = [
    ...effectWrites(mesh, scope, t.effects),
    { path: paths.state(scope), content: serializeScopeState({ ...t.state, evidence: undefined }) },
  ];
  const report = [`${scope}: rotation aborted in ${from}; signing is back on ${t.state.active}.`];
  if (from === 'switch') {
    report.push(
      `the aborted intermediate stays in the bundles until the leaves it signed have expired (retire gate ` +
        `${t.state.rotation!.retireAt}); the next trellis-ci renew re-mints them from the old key`,
    );
  }
  return { writes: scopeStep(c, scope, root, writes, [evidence], 'rotate-intermediate-abort', { from }), report };
}

/**
 * `trellis-root rotate intermediate S --waive E --reason R`: the fleet gate of S's rotation stops waiting for endpoint
 * E, on the custodian's signed word (a host being decommissioned, one that cannot be reached from any runner).
 */
export function waiveFleetEndpoint(
  c: Ceremony,
  scope: string,
  endpoint: string,
  reason: string,
  root: RootSigner,
): ProcedureResult {
  assertWaivable(c.mesh, scope, endpoint);
  return {
    writes: scopeStep(c, scope, root, [], [], 'fleet-waiver', { endpoint, reason }),
    report: [`${scope}: the fleet gate no longer waits for ${endpoint} (${reason}); commit and push`],
  };
}

/** A waiver needs a fleet-gated rotation under way and an endpoint the custodian confirmed; checked before the key. */
export function assertWaivable(mesh: Mesh, scope: string, endpoint: string): void {
  const st = mesh.material.get(scope)?.state;
  if (st?.rotation?.gate !== 'fleet' || st.phase === 'steady')
    throw new TrellisError('wrong-phase', `${scope} has no fleet-gated rotation under way`, {
      hint: 'a waiver belongs to a rotation begun with --gate fleet, before it retires',
    });
  const names = confirmedEndpoints(mesh).map((e) => e.name);
  if (!names.includes(endpoint))
    throw new TrellisError('usage', `--waive ${JSON.stringify(endpoint)} is not a confirmed probe endpoint`, {
      hint: `name one of: ${names.join(', ') || '(none)'}`,
    });
}

/** Every live intermediate of a scope as a root-CRL revocation, named by the root (of `signers`) that issued it. */
async function revocationsOf(
  c: Ceremony,
  scope: string,
  signers: RootSigner[],
  reason: string,
): Promise<RevokedIntermediate[]> {
  const out: RevokedIntermediate[] = [];
  for (const l of liveIntermediates(c.mesh, scope).filter((x) => x.role !== 'standby')) {
    const issuer = (
      await Promise.all(signers.map(async (s) => ((await signedBy(l.cert, s.cert)) ? s.cert : undefined)))
    ).find(Boolean);
    out.push({
      scope,
      serial: l.cert.serialNumber,
      fingerprint: fingerprint(l.cert),
      issuer: issuer ? keyId(issuer) : 'unknown',
      notAfter: iso(l.cert.notAfter),
      at: iso(c.now),
      reason,
    });
  }
  return out;
}

/**
 * The seq of a ledger's last entry (0 when empty): a recovery's line between what the burned key signed and what it may
 * not.
 */
function lastSeq(ledger: string): number {
  return parseLedger(ledger).entries.at(-1)?.seq ?? 0;
}

/**
 * `trellis-root recover SCOPE`: a fresh key now; every live intermediate of the scope revoked and out of every bundle.
 */
export async function recoverScope(
  c: Ceremony,
  scope: string,
  reason: string,
  signers: RootSigner[],
): Promise<ProcedureResult> {
  const { mesh, now } = c;
  const def = scopeDef(mesh, scope);
  const m = mesh.material.get(scope)!;
  if (!inRole(liveIntermediates(mesh, scope), 'active')) {
    const lost = intermediateLost(mesh, scope);
    if (lost) throw lost;
    throw new TrellisError('not-yet-minted', `scope ${scope} has no intermediate to recover`, {
      file: paths.intermediate(scope),
      hint: `trellis-root intermediate ${scope}`,
    });
  }
  const fresh = await mintIntermediate(scope, mesh.config, signers[0]!, now, c.seam);
  const revoked = await revocationsOf(c, scope, signers, reason);
  const rootState = { ...mesh.rootState!, revoked: [...mesh.rootState!.revoked, ...revoked] };
  const id = freshId(m.ledger, scope, now, 'recovery');
  const t = advanceScope(m.state!, { type: 'recover', fresh: fingerprint(fresh.cert) }, now, scope);
  const counted = scopeLedgerTrust(mesh, scope).counted;
  const hosts = (service: string) =>
    targetHosts(counted, service, def.services.find((s) => s.name === service)?.deploy ?? []);
  const evidence: Evidence = {
    id,
    kind: 'compromise-recovery',
    scope,
    status: 'in-progress',
    reason,
    started: iso(now),
    old: liveIntermediates(mesh, scope).map((l) => certRef(l.cert)),
    new: [certRef(fresh.cert)],
    steps: [
      {
        step: 'recover',
        at: iso(now),
        actor: c.actor,
        tool: 'trellis-root recover',
        note: `${revoked.length} certificate(s) revoked in the root CRL and removed from every bundle`,
      },
    ],
    affected: [...m.leaves].map(([service, r]) => ({ service, oldSerial: r.serial, hosts: hosts(service) })),
  };
  // A rotation under way is over: record it as aborted by this recovery.
  const open = openEvidence(mesh, scope);
  const superseded: Evidence[] = open
    ? [
        {
          ...open,
          status: 'aborted',
          ended: iso(now),
          steps: [
            ...open.steps,
            {
              step: 'abort',
              at: iso(now),
              actor: c.actor,
              tool: 'trellis-root recover',
              note: `superseded by compromise recovery ${id}`,
            },
          ],
        },
      ]
    : [];
  const writes = [
    ...effectWrites(mesh, scope, t.effects, {
      pem: certificatePem(fresh.cert),
      keyAge: await encryptTo([ciRecipientIn(mesh.config, scope)], fresh.keyPem),
    }),
    { path: paths.state(scope), content: serializeScopeState({ ...t.state, evidence: id }) },
    ...(await rootRecords(c, rootState, signers)),
  ];
  writes.push(
    await ceremonyCrlWrite(
      mesh,
      scope,
      writes,
      { scope, ...(await caKeyFromPem('intermediate', fresh.cert, fresh.keyPem)) },
      now,
      c.seam,
    ),
  );
  const report = [
    `RECOVERY of ${scope} (${reason}) at ${iso(now)}`,
    `revoked (root CRL) and removed from every bundle:`,
    ...revoked.map((r) => `  ${r.fingerprint}  serial ${displaySerial(r.serial)}`),
    `new intermediate: ${fingerprint(fresh.cert)}`,
    `blast radius: ${evidence.affected.length} leaf(s) of ${scope}, all re-minted by the next trellis-ci renew ` +
      `whatever their age:`,
    ...evidence.affected.map(
      (x) =>
        `  ${x.service.padEnd(20)} serial ` +
        `${displaySerial(x.oldSerial)}${x.hosts?.length ? `  hosts: ${x.hosts.join(', ')}` : ''}`,
    ),
    `evidence: ${evidencePaths(scope, id).md}`,
    'next: commit and push now; run trellis-ci renew and deploy at once.',
  ];
  // By sequence, not by time: what the burned key signed up to this entry counts, whatever the CI runner's clock said.
  const revokedAfterSeq = lastSeq(m.ledger);
  return {
    writes: scopeStep(
      c,
      scope,
      signers[0]!,
      writes,
      [evidence, ...superseded],
      'recover',
      { reason, revoked: revoked.map((r) => r.fingerprint), revokedAfterSeq },
      [intermediateCreated(fresh.cert)],
    ),
    report,
  };
}

/**
 * `trellis-root retire SCOPE`, after a pull request deleted scopes/SCOPE.yaml:
 * every live intermediate of the scope is revoked in the root CRL, leaves
 * every bundle, and the scope's material leaves the store (git keeps its history).
 */
export async function retireScope(
  c: Ceremony,
  scope: string,
  reason: string,
  signers: RootSigner[],
): Promise<ProcedureResult> {
  const { mesh, now } = c;
  if (mesh.scopes.some((s) => s.name === scope)) {
    throw new TrellisError('wrong-phase', `scope ${scope} is still declared`, {
      file: paths.scopeFile(scope),
      hint: `retiring a region starts with a pull request that deletes ${paths.scopeFile(scope)}; merge it, then rerun`,
    });
  }
  const m = mesh.retired.get(scope);
  if (!m)
    throw new TrellisError('unknown-scope', `no retired scope "${scope}": bundles/${scope}/ does not exist`, {
      file: `bundles/${scope}`,
      hint: `orphaned scopes: ${[...mesh.retired.keys()].join(', ') || 'none'}`,
    });
  if (!liveIntermediates(mesh, scope).length) {
    throw new TrellisError('wrong-phase', `scope ${scope} is already retired: it has no intermediate left`, {
      file: `bundles/${scope}`,
      hint: 'nothing to do; its ledger and evidence stay as its record',
    });
  }
  const revoked = await revocationsOf(c, scope, signers, reason);
  const rootState = { ...mesh.rootState!, revoked: [...mesh.rootState!.revoked, ...revoked] };
  const removed = [
    ...intermediateFiles(scope),
    paths.state(scope),
    paths.leaves(scope),
    paths.scopeCrl(scope),
    paths.trust(scope),
    paths.trustOpenssl(scope),
    ...m.anchorFiles.keys(),
  ].map((p) => ({ path: p, content: null }));
  const open = m.state?.evidence ? evidencePaths(scope, m.state.evidence).json : undefined;
  const writes: FileWrite[] = [...removed, ...(await rootRecords(c, rootState, signers))];
  // The scope ledger is kept as the scope's last record, closed by a root-signed entry; the root ledger holds the
  // decision.
  const revokedAfterSeq = lastSeq(m.ledger);
  writes.push({
    path: paths.ledger(scope),
    content: offlineEntry(
      m.ledger,
      'retire',
      now,
      c.posture,
      { scope, reason, revoked: revoked.map((r) => r.fingerprint), revokedAfterSeq },
      [],
      signers[0]!,
    ),
  });
  writes.push({
    path: paths.rootLedger,
    content: offlineEntry(
      mesh.rootLedger,
      'retire',
      now,
      c.posture,
      { scope, reason, revoked: revoked.map((r) => r.fingerprint), revokedAfterSeq, ...c.recipients },
      [],
      signers[0]!,
    ),
  });
  return {
    writes: withBundles(mesh, writes),
    report: [
      `RETIRED ${scope} (${reason}) at ${iso(now)}`,
      ...revoked.map((r) => `  revoked ${r.fingerprint}  serial ${displaySerial(r.serial)}`),
      `removed from every bundle; its leaves are refused by every peer after the next ` +
        `deploy${open ? `; the open procedure ${open} ends with it` : ''}`,
      'next: commit and push; CI deploys the recomposed bundles.',
    ],
  };
}

/**
 * `trellis-root rotate root`: a new root, every intermediate re-signed with its key kept, a link certificate, roots.pem
 * = {old, new}.
 */
export async function beginRootRotation(c: Ceremony, old: RootSigner, freshKeyUri?: string): Promise<ProcedureResult> {
  const { mesh, now } = c;
  const id = freshId(mesh.rootLedger, 'root', now, 'root-rotation');
  advanceRoot(mesh.rootState!, { type: 'begin', fresh: '', retiringKey: '', id }, now);
  const rotating = mesh.scopes
    .filter((s) => mesh.material.get(s.name)!.state && mesh.material.get(s.name)!.state!.phase !== 'steady')
    .map((s) => s.name);
  if (rotating.length) {
    throw new TrellisError('wrong-phase', `scope(s) ${rotating.join(', ')} are mid-rotation`, {
      hint:
        'let CI retire the rotation, or abort it (trellis-root rotate intermediate SCOPE --abort), before ' +
        'rotating the root',
    });
  }
  // The new root's key on a token (freshKeyUri) or in a file: either way the old key's custody stays where it was, as
  // root.previous.key.*.
  const onToken = freshKeyUri ? await mintRoot(mesh.config, now, c.seam, freshKeyUri) : undefined;
  const fresh = onToken ?? (await mintRoot(mesh.config, now, c.seam));
  const freshSigner: RootSigner = onToken?.signer ?? (await caKeyFromPem('root', fresh.cert, fresh.keyPem));
  const link = await linkCertificate(fresh.cert, old, now, c.seam);
  const t = advanceRoot(
    mesh.rootState!,
    { type: 'begin', fresh: fingerprint(fresh.cert), retiringKey: keyId(old.cert), id },
    now,
  );
  const writes: FileWrite[] = [
    { path: paths.rootCert, content: certificatePem(fresh.cert) },
    { path: paths.roots, content: certificatePem(old.cert) + certificatePem(fresh.cert) },
    {
      path: paths.rootKey,
      content: freshKeyUri ? null : await encryptTo(mesh.config.recipients.offline, fresh.keyPem),
    },
    { path: paths.rootKeyUri, content: freshKeyUri ? `${freshKeyUri}\n` : null },
    { path: paths.rootPrevious, content: certificatePem(old.cert) },
    { path: paths.rootPreviousKey, content: mesh.rootKeyAge ?? null },
    { path: paths.rootPreviousKeyUri, content: mesh.rootKeyUri ? `${mesh.rootKeyUri}\n` : null },
    { path: paths.link, content: certificatePem(link) },
    ...(await rootRecords(c, t.state, [freshSigner, old])),
  ];
  const resigned: Certificate[] = [];
  for (const s of mesh.scopes) {
    const m = mesh.material.get(s.name)!;
    const active = inRole(liveIntermediates(mesh, s.name), 'active');
    if (!active) continue;
    const cert = await resignIntermediate(active.cert, s.name, mesh.config, freshSigner, now, c.seam);
    resigned.push(cert);
    writes.push(
      { path: paths.intermediate(s.name), content: certificatePem(cert) },
      { path: paths.oldRootIntermediate(s.name), content: certificatePem(active.cert) },
      { path: paths.state(s.name), content: serializeScopeState({ ...m.state!, active: fingerprint(cert) }) },
      {
        path: paths.ledger(s.name),
        content: offlineEntry(
          m.ledger,
          'resign-intermediate',
          now,
          c.posture,
          { scope: s.name, root: fingerprint(fresh.cert), rotation: id },
          [intermediateCreated(cert)],
          old,
        ),
      },
    );
    // The standby too (its key kept, still the break-glass party's): activated after finalize, it must chain to the new
    // root.
    const standby = inRole(liveIntermediates(mesh, s.name), 'standby');
    if (standby) {
      const sb = await resignIntermediate(standby.cert, s.name, mesh.config, freshSigner, now, c.seam);
      resigned.push(sb);
      const ledger = [...writes].reverse().find((w) => w.path === paths.ledger(s.name))!;
      ledger.content = offlineEntry(
        ledger.content!,
        'resign-standby',
        now,
        c.posture,
        { scope: s.name, root: fingerprint(fresh.cert), rotation: id, standby: fingerprint(sb) },
        [intermediateCreated(sb)],
        old,
      );
      writes.push({ path: paths.standbyIntermediate(s.name), content: certificatePem(sb) });
    }
  }
  const evidence: Evidence = {
    id,
    kind: 'root-rotation',
    scope: 'root',
    status: 'in-progress',
    started: iso(now),
    old: [certRef(old.cert)],
    new: [certRef(fresh.cert), certRef(link), ...resigned.map(certRef)],
    steps: [
      {
        step: 'overlap',
        at: iso(now),
        actor: c.actor,
        tool: 'trellis-root rotate root',
        note:
          `custody of the old root proven; ${resigned.length} intermediate(s) re-signed with their keys ` +
          `preserved; link certificate issued`,
      },
    ],
    affected: [],
  };
  const ev = evidenceFiles(evidence);
  writes.push(...ev.writes);
  writes.push({
    path: paths.rootLedger,
    content: offlineEntry(
      mesh.rootLedger,
      'rotate-root',
      now,
      c.posture,
      { phase: 'overlap', ...(freshKeyUri ? { rootKeyUri: freshKeyUri } : {}), ...c.recipients, ...ev.link },
      [
        { kind: 'root', ...certRef(fresh.cert) },
        { kind: 'root', ...certRef(link) },
        ...resigned.map(intermediateCreated),
      ],
      old,
    ),
  });
  return {
    writes: withBundles(mesh, writes),
    report: [
      `root overlap: new root ${fingerprint(fresh.cert)}; roots.pem holds {old, new}; link certificate in ` +
        `${paths.link}.`,
      `${resigned.length} intermediate(s) re-signed with their keys preserved: live leaves keep verifying. ` +
        `Finalize once every root-anchoring consumer has the new root: trellis-root rotate root --finalize`,
    ],
  };
}

/** `trellis-root rotate root --finalize`: drop the old root, the link and the old-root intermediate certificates. */
export async function finalizeRootRotation(c: Ceremony, active: RootSigner): Promise<ProcedureResult> {
  const { mesh, now } = c;
  const t = advanceRoot(mesh.rootState!, { type: 'finalize' }, now);
  const writes: FileWrite[] = [
    { path: paths.roots, content: certificatePem(active.cert) },
    { path: paths.rootPrevious, content: null },
    { path: paths.rootPreviousKey, content: null },
    { path: paths.rootPreviousKeyUri, content: null },
    { path: paths.link, content: null },
    ...mesh.scopes.map((s) => ({ path: paths.oldRootIntermediate(s.name), content: null })),
    ...(await rootRecords(c, t.state, [active])),
  ];
  const text = mesh.rootOpenEvidence;
  const prior = text ? parseEvidence(text) : undefined;
  const evidence: Evidence = {
    ...(prior ?? {
      id: freshId(mesh.rootLedger, 'root', now, 'root-rotation'),
      kind: 'root-rotation',
      scope: 'root',
      started: iso(now),
      old: [],
      new: [certRef(active.cert)],
      affected: [],
    }),
    status: 'completed',
    ended: iso(now),
    steps: [
      ...(prior?.steps ?? []),
      {
        step: 'finalize',
        at: iso(now),
        actor: c.actor,
        tool: 'trellis-root rotate root --finalize',
        note: 'custody of the new root proven; old root, link and old-root intermediate certificates dropped',
      },
    ],
  };
  const ev = evidenceFiles(evidence);
  writes.push(...ev.writes, {
    path: paths.rootLedger,
    content: offlineEntry(
      mesh.rootLedger,
      'rotate-root-finalize',
      now,
      c.posture,
      { dropped: mesh.rootState!.previous, ...ev.link },
      [],
      active,
    ),
  });
  return {
    writes: withBundles(mesh, writes),
    report: [`root rotation finalized: ${fingerprint(active.cert)} is the only root.`],
  };
}

/** `trellis-root crl`: re-sign the root CRL(s). */
export async function resignRootCrl(c: Ceremony, signers: RootSigner[]): Promise<ProcedureResult> {
  const { mesh, now } = c;
  const nextUpdate = iso(new Date(now.getTime() + mesh.config.crl.root));
  const writes = await rootRecords(c, mesh.rootState!, signers);
  writes.push({
    path: paths.rootLedger,
    content: offlineEntry(
      mesh.rootLedger,
      'crl',
      now,
      c.posture,
      { revoked: mesh.rootState!.revoked.map((r) => r.serial), nextUpdate },
      [],
      signers[0]!,
    ),
  });
  return {
    writes,
    report: [
      `root CRL re-signed by ${signers.length} root(s), ${mesh.rootState!.revoked.length} revoked ` +
        `intermediate(s), next update ${nextUpdate}`,
    ],
  };
}
