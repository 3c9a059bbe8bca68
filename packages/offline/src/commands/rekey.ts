import fs from 'node:fs';
import type { CommandModule } from 'yargs';
import {
  TrellisError,
  ciScopesRecord,
  parseMeshConfig,
  parseSharesSpec,
  isPq,
  newIdentity,
  paths,
  reencrypt,
  recipientOf,
  validateRecipients,
  withRecipients,
  type FileWrite,
  recipientsToRecord,
} from '@trellis/core';
import { STORE_FILE, loadMesh, checkOutFile, writeOutFile } from '@trellis/core/store';
import { clock, withStore, openStore } from '@trellis/core/shell';
import { openRootKeys } from '../ceremony.js';
import { rootIdentities, say } from '../ceremony-context.js';
import { printShares } from '../identity-out.js';
import { requireOfflinePosture } from '../posture.js';
import { offlineEntry } from '../records.js';

interface Args {
  store?: string;
  now?: string;
  allowOnline?: boolean;
  confirmRecipients?: boolean;
  offlineRecipient?: string[];
  identityOut?: string;
  shares?: string;
  pq?: boolean;
}

export const rekey: CommandModule<object, Args> = {
  command: 'rekey',
  describe:
    'Re-encrypt the root key(s) to new offline recipients (retires the current offline identity; the root key ' +
    'itself is unchanged)',
  builder: (y) =>
    y
      .option('offline-recipient', {
        type: 'string',
        array: true,
        describe: 'the new offline recipient(s) (age1… or age1pq1…)',
      })
      .option('identity-out', {
        type: 'string',
        describe: 'generate the new offline identity into this file (0600) instead',
      })
      .option('shares', {
        type: 'string',
        describe:
          'generate the new offline identity and print it as N Shamir shares on stdout, never whole (K-of-N, ' +
          'e.g. 3-of-5): new share holders',
      })
      .option('pq', {
        type: 'boolean',
        describe: 'with --identity-out or --shares: generate an ML-KEM-768 hybrid identity (classic → post-quantum)',
      })
      .example(
        '$0 rekey --identity-out /media/offline/root-2.identity --pq',
        'move the root key to a new, post-quantum offline identity',
      )
      .example(
        '$0 rekey --shares-from /media/a/share /media/b/share --shares 2-of-3',
        'hand the root key to new share holders: the shares print on the terminal, each copied to its own ' +
          "custodian's medium",
      ) as never,
  handler: async (a) => {
    const posture = requireOfflinePosture(a);
    if (
      [Boolean(a.offlineRecipient?.length), Boolean(a.identityOut), a.shares !== undefined].filter(Boolean).length !== 1
    ) {
      throw new TrellisError(
        'usage',
        'give exactly one of --offline-recipient AGE1…, --identity-out FILE or --shares K-of-N',
      );
    }
    const split = a.shares === undefined ? undefined : parseSharesSpec(a.shares);
    if (a.pq && !a.identityOut && !split)
      throw new TrellisError(
        'usage',
        '--pq generates the new identity: give --identity-out FILE or --shares K-of-N (or pass age1pq1… recipients)',
        { field: '--pq' },
      );
    // A plaintext identity: outside the store's tracked tree, never through a link, never onto a device (out-path.ts).
    const identityOut = { flag: '--identity-out', secret: true, store: openStore(a.store).dir };
    if (a.identityOut && fs.existsSync(checkOutFile(a.identityOut, identityOut)))
      throw new TrellisError('usage', `${a.identityOut} exists; refusing to overwrite an identity`, {
        field: '--identity-out',
        hint: 'choose a new path',
      });
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      const held = rootIdentities();
      // Opening the root key(s) proves custody and gives the signer of the ledger entry.
      const [root] = await openRootKeys(mesh, held, now);
      // trellis.yaml must be the confirmed one: a pull request must not choose who the root key is handed to.
      const confirmed = recipientsToRecord(mesh, Boolean(a.confirmRecipients));
      const generated = a.identityOut || split ? await newIdentity(a.pq) : undefined;
      const next = generated ? [generated.recipient] : a.offlineRecipient!;
      validateRecipients(next, { field: '--offline-recipient' });
      const old = mesh.config.recipients.offline;
      const heldRecipients = await Promise.all(held.map(recipientOf));
      if (next.some((r) => heldRecipients.includes(r) || old.includes(r))) {
        throw new TrellisError(
          'usage',
          'a new offline recipient is a current one: rekey retires the current identity',
          { field: '--offline-recipient', hint: 'give the recipient(s) of new identities only' },
        );
      }
      const writes: FileWrite[] = [];
      for (const [ct, file] of [
        [mesh.rootKeyAge, paths.rootKey],
        [mesh.previousRootKeyAge, paths.rootPreviousKey],
      ] as const) {
        if (ct !== undefined) writes.push({ path: file, content: await reencrypt(ct, file, held, 'root', next) });
      }
      const configText = withRecipients(store.read(STORE_FILE)!, { offline: next });
      // The config's own rules (a CI recipient never also offline) hold for the new one.
      parseMeshConfig(configText, STORE_FILE);
      writes.push({ path: STORE_FILE, content: configText });
      // Root-signed, with the new recipients: this entry is the custodian's confirmation of them.
      writes.push({
        path: paths.rootLedger,
        content: offlineEntry(
          mesh.rootLedger,
          'rekey-root',
          now,
          posture,
          {
            ...confirmed,
            oldOfflineRecipients: old,
            offlineRecipients: next,
            ciRecipient: mesh.config.recipients.ci,
            ...ciScopesRecord(mesh.config),
            postQuantum: next.every(isPq),
            keys: writes.map((w) => w.path).filter((p) => p.endsWith('.age')),
          },
          [],
          root!,
        ),
      });
      // The new identity is written before the commit: a crash after it leaves a file nobody needs, never a key nobody
      // can open.
      if (generated && split)
        await printShares(generated.identity, mesh.config.mesh, split.k, split.n, {
          outcome: 'the root key was not rekeyed',
          hint: "rerun with stdout going to the terminal, and copy each share to its own custodian's medium",
        });
      else if (generated)
        writeOutFile(
          a.identityOut!,
          `# trellis offline root identity for mesh ${mesh.config.mesh}\n# recipient: ` +
            `${generated.recipient}\n${generated.identity}\n`,
          identityOut,
        );
      store.commit(writes);
      // With --shares, stdout holds the shares alone (as init prints them), so the summary goes to stderr.
      (split ? (lines: string[]) => process.stderr.write(lines.map((l) => `${l}\n`).join('')) : say)([
        `rekeyed ${writes.length - 2} root key file(s) to ${next.length} new offline ` +
          `recipient(s)${next.every(isPq) ? ' (post-quantum)' : ''}; recorded in ${paths.rootLedger}`,
        ...(split
          ? [
              `the ${split.n} shares written to stdout (the terminal, or the file it was redirected to) are ` +
                `now the only way into the root key: give each to its own custodian; the old identity and its ` +
                `shares are retired (they still open the old ciphertext in git history)`,
            ]
          : generated
            ? [
                `the new offline identity is in ${a.identityOut}: move it to offline media; the old identity ` +
                  `is retired (it still opens the old ciphertext in git history)`,
              ]
            : []),
      ]);
    });
  },
};
