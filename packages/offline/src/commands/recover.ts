import fs from 'node:fs';
import type { CommandModule } from 'yargs';
import {
  activeIntermediate, actor, describeTarget, advanceScope, certRef, certificatePem, clock, effectWrites, encryptTo, evidenceFiles, evidencePaths, fingerprint, iso, keyId,
  loadMesh, nodeCryptoSeam, parseEvidence, paths, procedureId, requireIdentities, scopeDef, serializeScopeState, signedBy, trustBundleFiles, trustedIntermediatesAfter,
  withStore, type Certificate, type Evidence, type RevokedIntermediate,
} from '@trellis/core';
import { mintIntermediate, openRootKeys } from '../ceremony.js';
import { requireOfflinePosture } from '../posture.js';
import { offlineEntry, recipientsToRecord, rootRecordWrites } from '../records.js';

interface Args { store?: string; scope: string; reason?: string; now?: string; allowOnline?: boolean; confirmRecipients?: boolean }

export const recover: CommandModule<object, Args> = {
  command: 'recover <scope>',
  describe: "Recover a compromised intermediate now: fresh key, old revoked and out of every bundle, every leaf re-minted on the next renew",
  builder: (y) => y
    .positional('scope', { type: 'string', demandOption: true })
    .option('reason', { type: 'string', default: 'keyCompromise', describe: 'why (recorded in the CRL when it is an RFC 5280 reason name, and in the evidence)' })
    .example('$0 recover us-east-1 --reason keyCompromise', 'works in any phase, and during a root overlap') as never,
  handler: async (a) => {
    const posture = requireOfflinePosture(a);
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      const def = scopeDef(mesh, a.scope);
      activeIntermediate(mesh, a.scope);
      const m = mesh.material.get(a.scope)!;
      const recipients = recipientsToRecord(mesh, Boolean(a.confirmRecipients));
      const signers = await openRootKeys(mesh, requireIdentities('root', process.env, (p) => fs.readFileSync(p, 'utf8')), now);
      const fresh = await mintIntermediate(a.scope, mesh.config, signers[0]!, now, nodeCryptoSeam);
      const reason = a.reason ?? 'keyCompromise';

      // Every certificate of the scope's CA keys is out: the active one, any mid-rotation one, and its old-root twin.
      const compromised = [m.intermediate, m.next, m.previous, m.oldRootIntermediate].filter((c): c is Certificate => c !== undefined);
      const revoked: RevokedIntermediate[] = [];
      for (const c of compromised) {
        const issuer = (await Promise.all(signers.map(async (s) => ((await signedBy(c, s.cert)) ? s.cert : undefined)))).find(Boolean);
        revoked.push({ scope: a.scope, serial: c.serialNumber, fingerprint: fingerprint(c), issuer: issuer ? keyId(issuer) : 'unknown', notAfter: iso(c.notAfter), at: iso(now), reason });
      }
      const rootState = { ...mesh.rootState!, revoked: [...mesh.rootState!.revoked, ...revoked] };
      const id = procedureId(now, 'recovery');
      const t = advanceScope(m.state!, { type: 'recover', fresh: fingerprint(fresh.cert) }, now, a.scope);
      const hosts = (service: string) => def.services.find((s) => s.name === service)?.deploy.map(describeTarget) ?? [];
      const evidence: Evidence = {
        id, kind: 'compromise-recovery', scope: a.scope, status: 'in-progress', reason, started: iso(now), old: compromised.map(certRef), new: [certRef(fresh.cert)],
        steps: [{ step: 'recover', at: iso(now), actor: actor(), tool: 'trellis-root recover', note: `${compromised.length} certificate(s) revoked in the root CRL and removed from every bundle` }],
        affected: [...m.leaves].map(([service, r]) => ({ service, oldSerial: r.serial, hosts: hosts(service) })),
      };
      const ev = evidenceFiles(evidence);
      // A rotation under way is over: record it as aborted by this recovery.
      const open = m.state!.evidence ? store.read(evidencePaths(a.scope, m.state!.evidence).json) : undefined;
      const superseded = open ? evidenceFiles({
        ...parseEvidence(open), status: 'aborted', ended: iso(now),
        steps: [...parseEvidence(open).steps, { step: 'abort', at: iso(now), actor: actor(), tool: 'trellis-root recover', note: `superseded by compromise recovery ${id}` }],
      }).writes : [];
      const created = [{ kind: 'intermediate' as const, ...certRef(fresh.cert) }];
      const writes = [
        ...effectWrites(mesh, a.scope, t.effects, { pem: certificatePem(fresh.cert), keyAge: await encryptTo([mesh.config.recipients.ci], fresh.keyPem) }),
        { path: paths.state(a.scope), content: serializeScopeState({ ...t.state, evidence: id }) },
        ...(await rootRecordWrites(mesh, rootState, signers, now)),
        ...ev.writes,
        ...superseded,
        { path: paths.ledger(a.scope), content: offlineEntry(m.ledger, 'recover', now, posture, { scope: a.scope, reason, revoked: revoked.map((r) => r.fingerprint), ...ev.link }, created, signers[0]!) },
        { path: paths.rootLedger, content: offlineEntry(mesh.rootLedger, 'recover', now, posture, { scope: a.scope, reason, revoked: revoked.map((r) => r.fingerprint), ...recipients, ...ev.link }, created, signers[0]!) },
      ];
      writes.push(...trustBundleFiles(mesh, trustedIntermediatesAfter(mesh, writes)));
      store.commit(writes);

      const out = [
        `RECOVERY of ${a.scope} (${reason}) at ${iso(now)}`,
        `revoked (root CRL) and removed from every bundle:`,
        ...revoked.map((r) => `  ${r.fingerprint}  serial ${r.serial}`),
        `new intermediate: ${fingerprint(fresh.cert)}`,
        `blast radius: ${evidence.affected.length} leaf(s) of ${a.scope}, all re-minted by the next trellis-ci renew whatever their age:`,
        ...evidence.affected.map((x) => `  ${x.service.padEnd(20)} serial ${x.oldSerial}${x.hosts?.length ? `  hosts: ${x.hosts.join(', ')}` : ''}`),
        `evidence: ${evidencePaths(a.scope, id).md}`,
        'next: commit and push now; run trellis-ci renew and deploy at once.',
      ];
      process.stdout.write(`${out.join('\n')}\n`);
    });
  },
};
