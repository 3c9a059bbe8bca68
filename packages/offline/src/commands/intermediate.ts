import type { CommandModule } from 'yargs';
import { TrellisError, clock, loadMesh, withStore, paths, scopeDef } from '@trellis/core';
import { openRootKey } from '../ceremony.js';
import { ceremony, rootIdentities, say } from '../ceremony-context.js';
import { requireOfflinePosture } from '../posture.js';
import { ceremonyIntermediates } from '../procedures.js';

interface Args {
  store?: string;
  scope?: string;
  pending?: boolean;
  confirmRecipients?: boolean;
  allowOnline?: boolean;
  now?: string;
}

export const intermediate: CommandModule<object, Args> = {
  command: 'intermediate [scope]',
  describe: "Mint a scope's intermediate under the root (needs the offline root identity)",
  builder: (y) => y
    .positional('scope', { type: 'string', describe: 'the scope, as named by scopes/<scope>.yaml' })
    .option('pending', { type: 'boolean', describe: 'mint every declared scope that has no intermediate yet' })
    .example('$0 intermediate us-east-1', 'after merging the PR that adds scopes/us-east-1.yaml')
    .example('$0 intermediate --pending', 'every scope awaiting its ceremony') as never,
  handler: (a) => runIntermediate(a),
};

async function runIntermediate(a: Args): Promise<void> {
  const posture = requireOfflinePosture(a);
  if (Boolean(a.scope) === Boolean(a.pending)) throw new TrellisError('usage', 'give a SCOPE or --pending, not both or neither');
  await withStore(a.store, async (store) => {
    const mesh = loadMesh(store);
    const now = clock(a.now);
    // A scope that ever had an intermediate is not pending even if intermediate.pem went missing: minting over it would orphan its key and leaves.
    const unminted = (s: string) => {
      const m = mesh.material.get(s)!;
      if (m.intermediate) return false;
      if (m.keyAge !== undefined || m.ledger.includes('"kind":"intermediate"')) {
        throw new TrellisError('corrupt-store', `scope ${s} had an intermediate but intermediate.pem is missing`, { file: paths.intermediate(s), hint: 'restore it from git; if it is lost for good, the scope needs trellis-root recover' });
      }
      return true;
    };
    let targets: string[];
    if (a.pending) targets = mesh.scopes.map((s) => s.name).filter(unminted);
    else {
      targets = [scopeDef(mesh, a.scope!).name];
      if (!unminted(a.scope!)) {
        throw new TrellisError('already-minted', `scope ${a.scope} already has an intermediate`, {
          file: paths.intermediate(a.scope!), hint: `to replace it: trellis-root rotate intermediate ${a.scope} (planned) or trellis-root recover ${a.scope} (compromise)`,
        });
      }
    }
    if (!targets.length) {
      process.stdout.write('no scope is pending its intermediate\n');
      return;
    }
    const c = ceremony(mesh, now, posture, a.confirmRecipients);
    const root = await openRootKey(mesh, rootIdentities(), now);
    const result = await ceremonyIntermediates(c, targets, root);
    store.commit(result.writes);
    say(result.report);
  });
}
