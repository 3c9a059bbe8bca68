import type { CommandModule } from 'yargs';
import {
  TrellisError, actor, ageFilesIn, appendToLedger, clock, iso, isPq, lastConfirmedRecord, ledgerSigner, loadMesh, mergeWrites, paths, recipientOf, tryDecrypt, encryptTo, withStore, type FileWrite,
} from '@trellis/core';
import { ciIdentities, openIntermediate } from '../signer.js';

interface Args { store?: string; now?: string }

/** A recipient as a message names it: post-quantum ones are ~2,000 characters. */
const short = (r: unknown) => (typeof r === 'string' && r.length > 40 ? `${r.slice(0, 24)}…${r.slice(-8)}` : String(r));

export const rekey: CommandModule<object, Args> = {
  command: 'rekey',
  describe: "Re-encrypt every intermediate key the CI identity opens to trellis.yaml's new CI recipient, once a custodian confirmed it (retires the current CI identity)",
  builder: (y) => y
    .example('$0 rekey', 'with the current TRELLIS_CI_IDENTITY, after trellis-root confirm --confirm-recipients recorded the new recipients.ci') as never,
  handler: async (a) => {
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      const next = mesh.config.recipients.ci;
      // Only a root-signed confirmation counts: a pull request that edits recipients.ci must not get the keys.
      const confirmed = lastConfirmedRecord(mesh, 'ciRecipient')?.ciRecipient;
      if (confirmed !== next) {
        throw new TrellisError('custody-not-confirmed', `recipients.ci ${short(next)} is not the CI recipient a custodian last confirmed${confirmed ? ` (${short(confirmed)})` : ''}`, {
          file: 'trellis.yaml', field: 'recipients.ci', hint: 'the custodian runs trellis-root confirm --confirm-recipients on the offline workstation first; if nobody asked for this change, restore trellis.yaml',
        });
      }
      const held = await ciIdentities(mesh);
      const old = await Promise.all(held.map(recipientOf));
      if (old.includes(next)) {
        process.stdout.write(`the CI identity given is already the one for ${short(next)}: nothing to rekey (run rekey with the identity being retired)\n`);
        return;
      }
      const writes: FileWrite[] = [];
      let files = 0;
      for (const scope of [...mesh.material.keys()].sort()) {
        // Every key file of the scope the CI identity opens; others (another party's) are not CI's to move.
        const mine: FileWrite[] = [];
        for (const file of ageFilesIn(store.dir).filter((f) => f.startsWith(`bundles/${scope}/`))) {
          const r = await tryDecrypt(held, store.read(file)!);
          if (r.ok) mine.push({ path: file, content: await encryptTo([next], r.text) });
        }
        if (!mine.length) continue;
        const signer = await openIntermediate(mesh, scope, held);
        writes.push(...mine, {
          path: paths.ledger(scope),
          content: appendToLedger(mesh.material.get(scope)!.ledger, {
            op: 'rekey', at: iso(now), actor: actor(),
            details: { oldCiRecipients: old, ciRecipient: next, postQuantum: isPq(next), keys: mine.map((w) => w.path) },
          }, paths.ledger(scope), ledgerSigner(signer)).text,
        });
        files += mine.length;
      }
      // One commit for every scope: a crash leaves all keys on the old recipient or all on the new.
      if (writes.length) store.commit(mergeWrites(writes));
      process.stdout.write(`rekeyed ${files} intermediate key file(s) to ${short(next)}${isPq(next) ? ' (post-quantum)' : ''}; recorded in each scope's ledger. The old CI identity is retired: remove it from CI's secrets\n`);
    });
  },
};
