import fs from 'node:fs';
import type { CommandModule } from 'yargs';
import { clock, iso, loadMesh, paths, requireIdentities, withStore } from '@trellis/core';
import { openRootKeys } from '../ceremony.js';
import { requireOfflinePosture } from '../posture.js';
import { offlineEntry, rootRecordWrites } from '../records.js';

interface Args { store?: string; now?: string; allowOnline?: boolean }

export const crl: CommandModule<object, Args> = {
  command: 'crl',
  describe: 'Re-sign the root CRL (needed before its nextUpdate; verify warns 30 days ahead)',
  builder: (y) => y.example('$0 crl', 'at the ceremony that keeps the root CRL fresh') as never,
  handler: async (a) => {
    const posture = requireOfflinePosture(a);
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      const signers = await openRootKeys(mesh, requireIdentities('root', process.env, (p) => fs.readFileSync(p, 'utf8')), now);
      const writes = await rootRecordWrites(mesh, mesh.rootState!, signers, now);
      writes.push({ path: paths.rootLedger, content: offlineEntry(mesh.rootLedger, 'crl', now, posture, { revoked: mesh.rootState!.revoked.map((r) => r.serial), nextUpdate: iso(new Date(now.getTime() + mesh.config.crl.root)) }, [], signers[0]!) });
      store.commit(writes);
      process.stdout.write(`root CRL re-signed by ${signers.length} root(s), ${mesh.rootState!.revoked.length} revoked intermediate(s), next update ${iso(new Date(now.getTime() + mesh.config.crl.root))}\n`);
    });
  },
};
