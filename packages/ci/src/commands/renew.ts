import path from 'node:path';
import type { CommandModule } from 'yargs';
import {
  actor, advanceScope, appendToLedger, ledgerSigner, clock, effectWrites, evidenceFiles, evidencePaths, iso, loadMesh, mergeWrites, parseEvidence, paths, planRenew,
  recordRemint, scopeDef, serializeIssuanceRecord, serializeScopeState, trustBundleFiles, withStore,
  type FileWrite, type Mesh, type MintedLeaf, type RenewPlan, type Store,
} from '@trellis/core';
import { leafCreated, mintScopeLeaves, openCrlSigners, scopeCrlStaleness, scopeCrlWrite, writeLeafOutput } from '../issue.js';
import { ciIdentities, openIntermediate } from '../signer.js';

interface Args { store?: string; scope?: string; force?: boolean; dryRun?: boolean; out?: string; now?: string }

export const renew: CommandModule<object, Args> = {
  command: 'renew',
  describe: 'Advance rotation phases whose gates are met; mint the leaves that are due, new, or from a retired intermediate; refresh leaf CRLs and bundles',
  builder: (y) => y
    .option('scope', { type: 'string', describe: 'only this scope' })
    .option('force', { type: 'boolean', describe: 'mint every leaf whether due or not' })
    .option('dry-run', { type: 'boolean', describe: 'print the plan and stop' })
    .option('out', { type: 'string', describe: 'where leaves are written (default <store>/.trellis/out)' })
    .example('$0 renew', 'the scheduled CI job')
    .example('$0 renew --scope us-east-1 --force', 're-mint one scope') as never,
  handler: (a) => runRenew(a),
};

export function renderPlan(plan: RenewPlan): string {
  const lines = plan.mint.map((i) => `mint ${i.scope}/${i.service} (${i.reason})`);
  for (const s of plan.pending) lines.push(`skip ${s}: pending its offline intermediate ceremony`);
  if (!plan.mint.length) lines.push('no leaf is due');
  return `${lines.join('\n')}\n`;
}

interface PhaseStep {
  scope: string;
  step: string;
}

/** Advances every scope whose rotation gate is met; returns the writes and the steps taken. */
function advancePhases(store: Store, mesh: Mesh, scopes: string[], now: Date): { writes: FileWrite[]; steps: PhaseStep[] } {
  const writes: FileWrite[] = [];
  const steps: PhaseStep[] = [];
  for (const scope of scopes) {
    const m = mesh.material.get(scope)!;
    if (!m.state || !m.intermediate) continue;
    const def = scopeDef(mesh, scope);
    const longestLeafTtl = Math.max(0, ...def.services.map((s) => s.ttl ?? mesh.config.ttl.leaf));
    const latestLeafExpiry = new Date(Math.max(0, ...[...m.leaves.values()].map((l) => l.notAfter.getTime())));
    const t = advanceScope(m.state, { type: 'tick', longestLeafTtl, latestLeafExpiry }, now, scope);
    if (!t.step) continue;
    steps.push({ scope, step: t.step });
    let state = t.state;
    const text = state.evidence ? store.read(evidencePaths(scope, state.evidence).json) : undefined;
    if (text) {
      const prior = parseEvidence(text);
      const done = t.step === 'retire';
      const note = t.step === 'switch' ? 'signing moved to the new intermediate; every leaf re-minted by this renew' : 'every old-key leaf has expired: the old intermediate and its key are removed';
      writes.push(...evidenceFiles({
        ...prior, steps: [...prior.steps, { step: t.step, at: iso(now), actor: actor(), tool: 'trellis-ci renew', note }],
        ...(done ? { status: 'completed' as const, ended: iso(now) } : {}),
      }).writes);
      if (done) state = { ...state, evidence: undefined };
    }
    writes.push(...effectWrites(mesh, scope, t.effects), { path: paths.state(scope), content: serializeScopeState(state) });
  }
  return { writes, steps };
}

async function runRenew(a: Args): Promise<void> {
  await withStore(a.store, async (store) => {
    const now = clock(a.now);
    const before = loadMesh(store);
    const scopes = a.scope ? [scopeDef(before, a.scope).name] : before.scopes.map((s) => s.name);
    const phases = advancePhases(store, before, scopes, now);
    // Everything after this is planned on the store as the phase steps leave it.
    const view = store.withPending(phases.writes);
    const mesh = loadMesh(view);

    const plan = planRenew(mesh, now, { scope: a.scope, force: a.force });
    for (const p of phases.steps) process.stdout.write(`phase ${p.scope}: ${p.step}\n`);
    process.stdout.write(renderPlan(plan));
    const minted = mesh.scopes.filter((s) => mesh.material.get(s.name)!.intermediate && scopes.includes(s.name)).map((s) => s.name);
    const staleCrls = new Map<string, string>();
    for (const s of minted) {
      const why = await scopeCrlStaleness(mesh, s, now);
      if (why) staleCrls.set(s, why);
    }
    // Only this run's scopes: a CI job sharded by scope touches its own files.
    const staleBundles = trustBundleFiles(mesh).filter((f) => scopes.some((s) => f.path.startsWith(`bundles/${s}/`)) && store.read(f.path) !== f.content);
    for (const [s, why] of staleCrls) process.stdout.write(`crl ${s}: re-sign (${why})\n`);
    if (a.dryRun) return;
    const touched = new Set([...plan.mint.map((i) => i.scope), ...staleCrls.keys(), ...staleBundles.map((f) => f.path.split('/')[1]!), ...phases.steps.map((p) => p.scope)]);
    if (!touched.size) return;

    // Every write signs a scope-ledger entry with the scope's intermediate, so the CI identity is needed whenever anything is written.
    const ids = await ciIdentities(mesh);
    const out = path.resolve(a.out ?? path.join(store.dir, '.trellis', 'out'));
    const writes: FileWrite[] = [...phases.writes, ...staleBundles];
    let count = 0;
    for (const scope of touched) {
      const m = mesh.material.get(scope)!;
      const services = plan.mint.filter((i) => i.scope === scope).map((i) => i.service);
      const signer = await openIntermediate(mesh, scope, ids);
      let crl: FileWrite | undefined;
      if (staleCrls.has(scope)) {
        crl = await scopeCrlWrite(mesh, scope, await openCrlSigners(mesh, scope, ids, signer!), now);
        writes.push(crl);
      }
      const leaves: MintedLeaf[] = services.length ? await mintScopeLeaves(mesh, scope, services, signer!, now) : [];
      writeLeafOutput(mesh, scope, leaves, out, crl?.content ?? m.crlPem);
      count += leaves.length;
      if (leaves.length) {
        const record = new Map(m.leaves);
        for (const l of leaves) record.set(l.service, l.record);
        writes.push({ path: paths.leaves(scope), content: serializeIssuanceRecord(record) });
        // Only the re-mints the procedure caused belong in its evidence, not routine renewals.
        const caused = new Set(plan.mint.filter((i) => i.scope === scope && i.reason === 'issuer-changed').map((i) => i.service));
        const remints = leaves.filter((l) => caused.has(l.service));
        if (remints.length) writes.push(...remintEvidence(view, mesh, scope, remints, now));
      }
      writes.push({
        path: paths.ledger(scope),
        content: appendToLedger(m.ledger, {
          op: 'renew', at: iso(now), actor: actor(),
          details: {
            ...(phases.steps.some((p) => p.scope === scope) ? { phase: phases.steps.find((p) => p.scope === scope)!.step } : {}),
            reasons: Object.fromEntries(plan.mint.filter((i) => i.scope === scope).map((i) => [i.service, i.reason])),
            ...(crl ? { crl: staleCrls.get(scope) } : {}),
            ...(staleBundles.some((f) => f.path.startsWith(`bundles/${scope}/`)) ? { bundles: 'recomposed' } : {}),
          },
          created: leaves.map(leafCreated),
        }, paths.ledger(scope), ledgerSigner(signer)).text,
      });
    }
    store.commit(mergeWrites(writes));
    process.stdout.write(`minted ${count} ${count === 1 ? 'leaf' : 'leaves'}${count ? ` into ${out}` : ''}${staleCrls.size ? `; re-signed ${staleCrls.size} scope CRL file(s)` : ''}${staleBundles.length ? `; refreshed ${staleBundles.length} bundle file(s)` : ''}\n`);
  });
}

/** Leaves re-minted under an open rotation or recovery are recorded in its evidence. */
function remintEvidence(view: Store, mesh: Mesh, scope: string, leaves: MintedLeaf[], now: Date): FileWrite[] {
  const state = mesh.material.get(scope)!.state!;
  const text = state.evidence ? view.read(evidencePaths(scope, state.evidence).json) : undefined;
  if (!text) return [];
  const prior = parseEvidence(text);
  const e = recordRemint(prior, leaves.map((l) => ({ service: l.service, serial: l.record.serial })), { at: iso(now), actor: actor(), tool: 'trellis-ci renew' }, prior.kind === 'compromise-recovery');
  const writes = evidenceFiles(e).writes;
  if (e.status === 'completed') writes.push({ path: paths.state(scope), content: serializeScopeState({ ...state, evidence: undefined }) });
  return writes;
}
