import type { CommandModule } from 'yargs';
import {
  allowListChanges,
  confirmedAllowList,
  confirmedPolicy,
  meshHostKeys,
  paths,
  policyRecord,
  unconfirmedCiRecipients,
  unconfirmedPolicyChanges,
  recipientsToRecord,
} from '@trellis/core';
import { loadMesh } from '@trellis/core/store';
import { clock, withStore } from '@trellis/core/shell';
import { openRootKeys } from '../ceremony.js';
import { rootIdentities } from '../ceremony-context.js';
import { requireOfflinePosture } from '../posture.js';
import { allowListToRecord, offlineEntry } from '../records.js';

interface Args {
  store?: string;
  now?: string;
  allowOnline?: boolean;
  confirmRecipients?: boolean;
  dryRun?: boolean;
}

export const confirm: CommandModule<object, Args> = {
  command: 'confirm',
  describe:
    "Confirm trellis.yaml's deploy allow-list and signing policy (defaults, mesh, trust domain) and each " +
    "host-held key's CSR: opens the root key to prove custody, then records them in the root ledger",
  builder: (y) =>
    y
      .option('dry-run', { type: 'boolean', describe: 'print what would be confirmed and stop' })
      .example(
        '$0 confirm --dry-run',
        'review each change to the allow-list and the signing policy since the last confirmation',
      )
      .example('$0 confirm', 'after reviewing: deploy, renew and the ceremonies accept them from now on') as never,
  handler: async (a) => {
    const posture = requireOfflinePosture(a);
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      // A store made before policies were recorded confirms its current one the first time.
      const policy = confirmedPolicy(mesh)
        ? unconfirmedPolicyChanges(mesh)
        : ['the signing policy (defaults, mesh, trust domain) recorded for the first time'];
      // Every key a pull request introduces is a custody event: the custodian reviews each here.
      const hostKeys = await meshHostKeys(mesh);
      const keyChanges = hostKeys.flatMap((k) =>
        k.standing.counts
          ? []
          : [`host key ${k.name}: ${k.key} (${k.standing.current ? `replaces ${k.standing.current}` : 'first key'})`],
      );
      const changes = [
        ...allowListChanges(confirmedAllowList(mesh).allowList, mesh.config.deploy),
        ...policy,
        ...keyChanges,
      ];
      if (!changes.length) {
        // A recipients change alone (a new CI recipient before trellis-ci rekey) is confirmed here too, with
        // --confirm-recipients.
        if (a.confirmRecipients && !a.dryRun && Object.keys(recipientsToRecord(mesh, true)).length) {
          const [root] = await openRootKeys(mesh, rootIdentities(), now);
          store.commit([
            {
              path: paths.rootLedger,
              content: offlineEntry(
                mesh.rootLedger,
                'confirm-recipients',
                now,
                posture,
                recipientsToRecord(mesh, true),
                [],
                root!,
              ),
            },
          ]);
          const own = Object.entries(mesh.config.recipients.ciScopes ?? {})
            .map(([s, r]) => `; ${s}: ${r}`)
            .join('');
          process.stdout.write(
            `confirmed the recipients in trellis.yaml (recorded in ${paths.rootLedger}): CI ` +
              `${mesh.config.recipients.ci}${own}\n`,
          );
          return;
        }
        // What --confirm-recipients would record, for the custodian to review first.
        const pending = unconfirmedCiRecipients(mesh);
        if (a.dryRun && pending.length)
          process.stdout.write(
            `would confirm (with --confirm-recipients) ${pending.length} CI recipient ` +
              `change(s):\n${pending.map((u) => `  ${u.text}\n`).join('')}`,
          );
        process.stdout.write(
          'the deploy allow-list and signing policy in trellis.yaml are the ones last confirmed: nothing to record\n',
        );
        return;
      }
      const list = changes.map((c) => `  ${c}\n`).join('');
      if (a.dryRun) {
        process.stdout.write(
          `would confirm ${changes.length} change(s) to the deploy allow-list and signing policy:\n${list}`,
        );
        return;
      }
      // Only the holder of the root identity confirms: opening the root key is the proof.
      const [root] = await openRootKeys(mesh, rootIdentities(), now);
      const recipients = recipientsToRecord(mesh, Boolean(a.confirmRecipients));
      store.commit([
        {
          path: paths.rootLedger,
          content: offlineEntry(
            mesh.rootLedger,
            'confirm-allow-list',
            now,
            posture,
            {
              ...allowListToRecord(mesh),
              ...policyRecord(mesh.config),
              ...recipients,
              hostKeys: Object.fromEntries(hostKeys.map((k) => [k.name, k.key])),
            },
            [],
            root!,
          ),
        },
      ]);
      process.stdout.write(
        `confirmed ${changes.length} change(s) to the deploy allow-list and signing policy (recorded in ` +
          `${paths.rootLedger}):\n${list}`,
      );
    });
  },
};
