import path from 'node:path';
import type { CommandModule } from 'yargs';
import {
  actor, appendToLedger, certificatePem, clock, composeTrust, iso, loadMesh, mintLeaf, nodeCryptoSeam, withStore, paths, planRenew, scopeDef,
  serializeIssuanceRecord, trustBundleFiles, trustOpensslPem, trustPem, trustedIntermediatesOf, writeFileAtomic,
  type FileWrite, type MintedLeaf, type RenewPlan,
} from '@trellis/core';
import { ciIdentities, openIntermediate } from '../signer.js';
import { requireCiPosture } from '../posture.js';

interface Args { store?: string; scope?: string; force?: boolean; dryRun?: boolean; out?: string; now?: string }

export const renew: CommandModule<object, Args> = {
  command: 'renew',
  describe: 'Mint the leaves that are due, new, or from a retired intermediate; refresh trust bundles',
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

async function runRenew(a: Args): Promise<void> {
  requireCiPosture();
  await withStore(a.store, async (store) => {
    const mesh = loadMesh(store);
    const now = clock(a.now);
    const plan = planRenew(mesh, now, { scope: a.scope, force: a.force });
    process.stdout.write(renderPlan(plan));
    const staleBundles: FileWrite[] = trustBundleFiles(mesh).filter((f) => store.read(f.path) !== f.content);
    if (a.dryRun || (!plan.mint.length && !staleBundles.length)) return;

    const ids = plan.mint.length ? ciIdentities() : [];
    const byScope = new Map<string, MintedLeaf[]>();
    for (const scope of new Set(plan.mint.map((i) => i.scope))) {
      const signer = await openIntermediate(mesh, scope, ids);
      const def = scopeDef(mesh, scope);
      const leaves: MintedLeaf[] = [];
      for (const item of plan.mint.filter((i) => i.scope === scope)) {
        const service = def.services.find((s) => s.name === item.service)!;
        leaves.push(await mintLeaf({
          scope, service, trustDomain: mesh.config.trustDomain, ttl: service.ttl ?? mesh.config.ttl.leaf, algorithm: mesh.config.algorithms.leaf, now,
        }, signer, nodeCryptoSeam));
      }
      byScope.set(scope, leaves);
    }

    // Keys reach the output before the record says they exist: a crash in between re-mints, never strands a service.
    const out = path.resolve(a.out ?? path.join(store.dir, '.trellis', 'out'));
    const all = mesh.scopes.map((s) => s.name);
    for (const [scope, leaves] of byScope) {
      const trust = composeTrust(scopeDef(mesh, scope), all, trustedIntermediatesOf(mesh));
      const inter = certificatePem(mesh.material.get(scope)!.intermediate!);
      for (const l of leaves) {
        const dir = path.join(out, scope, l.service);
        writeFileAtomic(path.join(dir, 'key.pem'), l.keyPem, 0o600);
        writeFileAtomic(path.join(dir, 'cert.pem'), l.certPem);
        writeFileAtomic(path.join(dir, 'chain.pem'), l.certPem + inter);
        writeFileAtomic(path.join(dir, 'trust.pem'), trustPem(trust));
        writeFileAtomic(path.join(dir, 'trust.openssl.pem'), trustOpensslPem(trust));
      }
    }

    const writes: FileWrite[] = [...staleBundles];
    for (const [scope, leaves] of byScope) {
      const m = mesh.material.get(scope)!;
      const record = new Map(m.leaves);
      for (const l of leaves) record.set(l.service, l.record);
      writes.push({ path: paths.leaves(scope), content: serializeIssuanceRecord(record) });
      writes.push({
        path: paths.ledger(scope),
        content: appendToLedger(m.ledger, {
          op: 'renew', at: iso(now), actor: actor(),
          details: { reasons: Object.fromEntries(plan.mint.filter((i) => i.scope === scope).map((i) => [i.service, i.reason])) },
          created: leaves.map((l) => ({ kind: 'leaf' as const, fingerprint: l.record.fingerprint, serial: l.record.serial, subject: l.cert.subject, notAfter: iso(l.record.notAfter) })),
        }).text,
      });
    }
    store.commit(writes);
    const n = plan.mint.length;
    process.stdout.write(`minted ${n} ${n === 1 ? 'leaf' : 'leaves'}${n ? ` into ${out}` : ''}${staleBundles.length ? `; refreshed ${staleBundles.length} bundle file(s)` : ''}\n`);
  });
}
