import type { CommandModule } from 'yargs';
import {
  appendToLedger,
  ciRecipientOf,
  confirmedCiCustody,
  iso,
  isPq,
  ledgerSigner,
  mergeWrites,
  paths,
  recipientOf,
  short,
  tryDecrypt,
  requireConfirmedCiRecipients,
  encryptTo,
  type FileWrite,
} from '@trellis/core';
import { loadMesh } from '@trellis/core/store';
import { actor, ageFilesIn, clock, withStore } from '@trellis/core/shell';
import { ciIdentities, openIntermediate } from '../signer.js';

interface Args {
  store?: string;
  now?: string;
}

export const rekey: CommandModule<object, Args> = {
  command: 'rekey',
  describe:
    "Re-encrypt every intermediate key the CI identity opens to its scope's confirmed CI recipient " +
    '(recipients.ciScopes, else recipients.ci), once a custodian confirmed it (retires the identity for those ' +
    'scopes)',
  builder: (y) =>
    y
      .example(
        '$0 rekey',
        'with the current TRELLIS_CI_IDENTITY, after trellis-root confirm --confirm-recipients recorded the ' +
          'new recipients.ci',
      )
      .example(
        '$0 rekey',
        'with the shared identity, after a custodian confirmed recipients.ciScopes: moves each listed scope to ' +
          'its own identity',
      ) as never,
  handler: async (a) => {
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      requireConfirmedCiRecipients(mesh);
      const custody = confirmedCiCustody(mesh);
      const held = await ciIdentities(mesh);
      const heldRecipients = await Promise.all(held.map(recipientOf));
      const writes: FileWrite[] = [];
      const moved = new Map<string, string>();
      let files = 0;
      for (const scope of [...mesh.material.keys()].sort()) {
        const next = ciRecipientOf(custody, scope);
        // The identities being retired for this scope: a key that opens with one of them moves; one already on `next`
        // stays.
        const retiring = held.filter((_, i) => heldRecipients[i] !== next);
        const old = heldRecipients.filter((r) => r !== next);
        if (!retiring.length) continue;
        // Every key file of the scope the CI identity opens; others (another party's) are not CI's to move.
        const mine: FileWrite[] = [];
        for (const file of ageFilesIn(store.dir).filter((f) => f.startsWith(`bundles/${scope}/`))) {
          const r = await tryDecrypt(retiring, store.read(file)!);
          if (r.ok) mine.push({ path: file, content: await encryptTo([next], r.text) });
        }
        if (!mine.length) continue;
        const signer = await openIntermediate(mesh, scope, held);
        writes.push(...mine, {
          path: paths.ledger(scope),
          content: appendToLedger(
            mesh.material.get(scope)!.ledger,
            {
              op: 'rekey',
              at: iso(now),
              actor: actor(),
              details: {
                oldCiRecipients: old,
                ciRecipient: next,
                postQuantum: isPq(next),
                keys: mine.map((w) => w.path),
                ...(scope in custody.scopes ? { scopeRecipient: true } : {}),
              },
            },
            paths.ledger(scope),
            ledgerSigner(signer),
          ).text,
        });
        moved.set(scope, next);
        files += mine.length;
      }
      if (!writes.length) {
        process.stdout.write(
          'every intermediate key the CI identity given opens is already on its confirmed recipient: nothing ' +
            'to rekey (run rekey with the identity being retired)\n',
        );
        return;
      }
      // One commit for every scope: a crash leaves all keys on the old recipient or all on the new.
      store.commit(mergeWrites(writes));
      const targets = [...new Set(moved.values())];
      const to =
        targets.length === 1
          ? `to ${short(targets[0]!)}${isPq(targets[0]!) ? ' (post-quantum)' : ''}`
          : `(${[...moved].map(([s, r]) => `${s} → ${short(r)}`).join(', ')})`;
      process.stdout.write(
        `rekeyed ${files} intermediate key file(s) ${to}; recorded in each scope's ledger. The identity that ` +
          `opened them is retired for those scopes: remove it from CI's secrets where it is no longer any ` +
          `scope's\n`,
      );
    });
  },
};
