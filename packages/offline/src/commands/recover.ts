import type { CommandModule } from 'yargs';
import { activeIntermediate, scopeDef } from '@trellis/core';
import { loadMesh } from '@trellis/core/store';
import { clock, withStore } from '@trellis/core/shell';
import { openRootKeys } from '../ceremony.js';
import { ceremony, rootIdentities, say } from '../ceremony-context.js';
import { requireOfflinePosture } from '../posture.js';
import { recoverScope } from '../root-procedures.js';

interface Args {
  store?: string;
  scope: string;
  reason?: string;
  now?: string;
  allowOnline?: boolean;
  confirmRecipients?: boolean;
}

export const recover: CommandModule<object, Args> = {
  command: 'recover <scope>',
  describe:
    'Recover a compromised intermediate now: fresh key, old revoked and out of every bundle, every leaf ' +
    're-minted on the next renew',
  builder: (y) =>
    y
      .positional('scope', { type: 'string', demandOption: true })
      .option('reason', {
        type: 'string',
        default: 'keyCompromise',
        describe: 'why (recorded in the CRL when it is an RFC 5280 reason name, and in the evidence)',
      })
      .example('$0 recover us-east-1 --reason keyCompromise', 'works in any phase, and during a root overlap') as never,
  handler: async (a) => {
    const posture = requireOfflinePosture(a);
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      scopeDef(mesh, a.scope);
      activeIntermediate(mesh, a.scope);
      const c = ceremony(mesh, now, posture, a.confirmRecipients);
      const result = await recoverScope(
        c,
        a.scope,
        a.reason ?? 'keyCompromise',
        await openRootKeys(mesh, rootIdentities(), now),
      );
      store.commit(result.writes);
      say(result.report);
    });
  },
};
