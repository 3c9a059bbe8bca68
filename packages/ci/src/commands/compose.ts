import type { CommandModule } from 'yargs';
import { composePlan, composeScopes, composeTouched, scopeDef, type SigningIntermediate } from '@trellis/core';
import { loadMesh } from '@trellis/core/store';
import { actor, clock, withStore } from '@trellis/core/shell';
import { ciIdentities, openIntermediate } from '../signer.js';

interface Args {
  store?: string;
  scope?: string;
  dryRun?: boolean;
  now?: string;
}

export const compose: CommandModule<object, Args> = {
  command: 'compose',
  describe:
    "After sharded renews merged: write what spans scopes (each scope's trust bundles, composed from every " +
    "scope's intermediates) and record it in each changed scope's ledger",
  builder: (y) =>
    y
      .option('scope', {
        type: 'string',
        describe:
          "only this scope's bundles and ledger entry (bundles/SCOPE/), signed with its key alone: one job of " +
          "a compose matrix, each with its scope's CI identity",
      })
      .option('dry-run', { type: 'boolean', describe: 'print what would be recomposed and stop' })
      .example(
        '$0 compose',
        'the job after a matrix of `renew --scope S --shard` jobs, before deploy (docs/sharding.md)',
      )
      .example(
        '$0 compose --scope us-east-1',
        "one job of a compose matrix over scopes, with that scope's CI identity only (docs/sharding.md)",
      ) as never,
  handler: (a) => runCompose(a),
};

async function runCompose(a: Args): Promise<void> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  await withStore(a.store, async (store) => {
    const now = clock(a.now);
    const mesh = loadMesh(store);
    const scopes = a.scope === undefined ? undefined : [scopeDef(mesh, a.scope).name];
    const stale = composePlan(mesh, (p) => store.read(p), scopes);
    for (const f of stale) say(`compose ${f.path}`);
    if (!stale.length) {
      say(`nothing to compose: every bundle${a.scope ? ` of ${a.scope}` : ''} holds what its scope trusts`);
      return;
    }
    if (a.dryRun) return;
    // The ledger entry recording each recomposition is signed by the scope's intermediate: the CI identity is needed.
    // With --scope, an identity that also opens another separated scope is refused (exit 3) before anything is written.
    const ids = await ciIdentities(mesh, scopes);
    const signers = new Map<string, SigningIntermediate>();
    for (const s of composeTouched(stale)) signers.set(s, await openIntermediate(mesh, s, ids, 'active'));
    store.commit(composeScopes({ mesh, stale, signers, now, actor: actor() }));
    say(`recomposed ${stale.length} bundle file(s) of ${signers.size} scope(s)`);
  });
}
