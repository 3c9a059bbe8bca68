import path from 'node:path';
import type { CommandModule } from 'yargs';
import { TrellisError, displaySerial, nodeCryptoSeam, revocableLeaf, revokeLeaf } from '@trellis/core';
import { loadMesh } from '@trellis/core/store';
import { actor, clock, withStore } from '@trellis/core/shell';
import { openScopeKeys, scopeOutput, scopesInOutput, writeLeafOutput } from '../issue.js';
import { outputBarrier } from '../out-write.js';
import { ciIdentities } from '../signer.js';
import { prepareOutDir } from '../out-dir.js';

interface Args {
  store?: string;
  target: string;
  reason?: string;
  out?: string;
  now?: string;
}

export const revoke: CommandModule<object, Args> = {
  command: 'revoke <target>',
  describe: "Revoke a service's current leaf (into the scope's CRL) and mint its replacement",
  builder: (y) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'SCOPE/SERVICE' })
      .option('reason', {
        type: 'string',
        default: 'unspecified',
        describe: 'why (an RFC 5280 reason name such as keyCompromise is also the CRL reason code)',
      })
      .option('out', { type: 'string', describe: 'where the replacement is written (default <store>/.trellis/out)' })
      .example(
        '$0 revoke us-east-1/api --reason keyCompromise',
        'then deploy: the CRL and the new leaf ship together',
      ) as never,
  handler: async (a) => {
    const [scope, service, ...rest] = a.target.split('/');
    if (!scope || !service || rest.length)
      throw new TrellisError('usage', `"${a.target}" is not SCOPE/SERVICE`, {
        hint: 'name one service as its scope and service, such as us-east-1/api',
      });
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      revocableLeaf(mesh, scope, service);
      const keys = await openScopeKeys(mesh, scope, await ciIdentities(mesh, [scope]));
      const r = await revokeLeaf(mesh, scope, service, a.reason ?? 'unspecified', keys, now, actor(), nodeCryptoSeam);
      const out = path.resolve(a.out ?? path.join(store.dir, '.trellis', 'out'));
      process.stdout.write(prepareOutDir(out, { store: a.out ? undefined : store.dir, storeDir: store.dir }) ?? '');
      const after = loadMesh(store.withPending(r.writes));
      outputBarrier(
        out,
        r.leaf
          ? writeLeafOutput(mesh, after, scope, [r.leaf], out)
          : scopesInOutput(out, [scope]).flatMap((s) => scopeOutput(after, s, out)),
      );
      store.commit(r.writes);
      process.stdout.write(
        r.leaf
          ? `revoked ${scope}/${service} serial ${displaySerial(r.serial)} (${a.reason}); replacement ` +
              `${displaySerial(r.leaf.record.serial)} in ${path.join(out, scope, service)}; deploy now\n`
          : `revoked ${scope}/${service} serial ${displaySerial(r.serial)} (${a.reason}) and its host-held key; ` +
              `no replacement: the host makes a new key and a custodian confirms its CSR (docs/host-keys.md); ` +
              `deploy now\n`,
      );
    });
  },
};
