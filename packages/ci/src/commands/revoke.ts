import path from 'node:path';
import type { CommandModule } from 'yargs';
import {
  TrellisError, actor, appendToLedger, ledgerSigner, provenLeafRecord, clock, iso, keyId, loadMesh, mergeWrites, paths, scopeDef, serializeIssuanceRecord, serializeScopeState, withStore,
  type Certificate, type FileWrite,
} from '@trellis/core';
import { leafCreated, mintScopeLeaves, openCrlSigners, scopeCrlWrite, writeLeafOutput } from '../issue.js';
import { ciIdentities, openIntermediate } from '../signer.js';

interface Args { store?: string; target: string; reason?: string; out?: string; now?: string }

export const revoke: CommandModule<object, Args> = {
  command: 'revoke <target>',
  describe: "Revoke a service's current leaf (into the scope's CRL) and mint its replacement",
  builder: (y) => y
    .positional('target', { type: 'string', demandOption: true, describe: 'SCOPE/SERVICE' })
    .option('reason', { type: 'string', default: 'unspecified', describe: 'why (an RFC 5280 reason name such as keyCompromise is also the CRL reason code)' })
    .option('out', { type: 'string', describe: 'where the replacement is written (default <store>/.trellis/out)' })
    .example('$0 revoke us-east-1/api --reason keyCompromise', 'then deploy: the CRL and the new leaf ship together') as never,
  handler: async (a) => {
    const [scope, service, ...rest] = a.target.split('/');
    if (!scope || !service || rest.length) throw new TrellisError('usage', `"${a.target}" is not SCOPE/SERVICE`);
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      const def = scopeDef(mesh, scope);
      if (!def.services.some((s) => s.name === service)) throw new TrellisError('unknown-service', `scope ${scope} declares no service "${service}"`, { file: paths.scopeFile(scope) });
      const m = mesh.material.get(scope)!;
      const rec = provenLeafRecord(mesh, scope, service);
      if (!rec) throw new TrellisError('not-yet-minted', `${scope}/${service} has no leaf to revoke`, { file: paths.leaves(scope), hint: 'trellis-ci renew mints it' });
      const ids = await ciIdentities(mesh);
      const signer = await openIntermediate(mesh, scope, ids);
      // The revocation names its issuer by key, so it lands in the right CRL whatever certificate carries that key now.
      const issuerCert = [m.intermediate, m.previous, m.next, m.oldRootIntermediate].find((c): c is Certificate => !!c && (rec.issuerKey ? keyId(c) === rec.issuerKey : false)) ?? m.intermediate!;
      const state = { ...m.state!, revoked: [...m.state!.revoked, { service, serial: rec.serial, issuer: rec.issuerKey ?? keyId(issuerCert), notAfter: iso(rec.notAfter), at: iso(now), reason: a.reason ?? 'unspecified' }] };
      const view = store.withPending([{ path: paths.state(scope), content: serializeScopeState(state) }]);
      const after = loadMesh(view);
      const crl = await scopeCrlWrite(after, scope, await openCrlSigners(mesh, scope, ids, signer), now);
      const [leaf] = await mintScopeLeaves(mesh, scope, [service], signer, now);
      const out = path.resolve(a.out ?? path.join(store.dir, '.trellis', 'out'));
      writeLeafOutput(mesh, scope, [leaf!], out, crl.content);
      const record = new Map(m.leaves).set(service, leaf!.record);
      const writes: FileWrite[] = [
        { path: paths.state(scope), content: serializeScopeState(state) },
        crl,
        { path: paths.leaves(scope), content: serializeIssuanceRecord(record) },
        { path: paths.ledger(scope), content: appendToLedger(m.ledger, { op: 'revoke', at: iso(now), actor: actor(), details: { service, serial: rec.serial, reason: a.reason }, created: [leafCreated(leaf!)] }, paths.ledger(scope), ledgerSigner(signer)).text },
      ];
      store.commit(mergeWrites(writes));
      process.stdout.write(`revoked ${scope}/${service} serial ${rec.serial} (${a.reason}); replacement ${leaf!.record.serial} in ${path.join(out, scope, service)}; deploy now\n`);
    });
  },
};
