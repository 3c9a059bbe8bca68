import type { CommandModule } from 'yargs';
import { loadMesh } from '@trellis/core/store';
import { clock, withStore } from '@trellis/core/shell';
import { openRootKeys } from '../ceremony.js';
import { ceremony, rootIdentities, say } from '../ceremony-context.js';
import { requireOfflinePosture } from '../posture.js';
import { retireScope } from '../root-procedures.js';

interface Args {
  store?: string;
  scope: string;
  reason?: string;
  now?: string;
  allowOnline?: boolean;
  confirmRecipients?: boolean;
}

export const retire: CommandModule<object, Args> = {
  command: 'retire <scope>',
  describe:
    'Retire a region whose scope file a pull request deleted: revoke its intermediates, drop them from every ' +
    'bundle, remove its material',
  builder: (y) =>
    y
      .positional('scope', { type: 'string', demandOption: true })
      .option('reason', {
        type: 'string',
        default: 'cessationOfOperation',
        describe: 'why (recorded in the root CRL when it is an RFC 5280 reason name)',
      })
      .example('$0 retire eu-west-2', 'after merging the pull request that deletes scopes/eu-west-2.yaml') as never,
  handler: async (a) => {
    const posture = requireOfflinePosture(a);
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      const c = ceremony(mesh, now, posture, a.confirmRecipients);
      const result = await retireScope(
        c,
        a.scope,
        a.reason ?? 'cessationOfOperation',
        await openRootKeys(mesh, rootIdentities(), now),
      );
      store.commit(result.writes);
      say(result.report);
    });
  },
};
