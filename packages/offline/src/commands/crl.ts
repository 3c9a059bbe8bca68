import type { CommandModule } from 'yargs';
import { loadMesh } from '@trellis/core/store';
import { clock, withStore } from '@trellis/core/shell';
import { openRootKeys } from '../ceremony.js';
import { ceremony, rootIdentities, say } from '../ceremony-context.js';
import { requireOfflinePosture } from '../posture.js';
import { resignRootCrl } from '../root-procedures.js';

interface Args {
  store?: string;
  now?: string;
  allowOnline?: boolean;
  confirmRecipients?: boolean;
}

export const crl: CommandModule<object, Args> = {
  command: 'crl',
  describe: 'Re-sign the root CRL (needed before its nextUpdate; verify warns 30 days ahead)',
  builder: (y) => y.example('$0 crl', 'at the ceremony that keeps the root CRL fresh') as never,
  handler: async (a) => {
    const posture = requireOfflinePosture(a);
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      const result = await resignRootCrl(
        { ...ceremony(mesh, now, posture, true), recipients: {} },
        await openRootKeys(mesh, rootIdentities(), now),
      );
      store.commit(result.writes);
      say(result.report);
    });
  },
};
