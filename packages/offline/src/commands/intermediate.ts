import type { CommandModule } from 'yargs';
import readline from 'node:readline';
import {
  TrellisError,
  ceremonyState,
  intermediateLost,
  paths,
  planOrRefusal,
  renderCeremonySummary,
  scopeDef,
  type Mesh,
  breakglassToRecord,
  assertTypedBack,
} from '@trellis/core';
import { loadMesh } from '@trellis/core/store';
import { clock, withStore } from '@trellis/core/shell';
import { openRootKey } from '../ceremony.js';
import { ceremony, rootIdentities, say } from '../ceremony-context.js';
import { requireOfflinePosture } from '../posture.js';
import { ceremonyIntermediates } from '../root-procedures.js';
import { mintStandbys } from '../standby.js';

interface Args {
  store?: string;
  scope?: string;
  pending?: boolean;
  standby?: boolean;
  yes?: boolean;
  confirmRecipients?: boolean;
  allowOnline?: boolean;
  now?: string;
}

export const intermediate: CommandModule<object, Args> = {
  command: 'intermediate [scope]',
  describe: "Mint a scope's intermediate under the root (needs the offline root identity)",
  builder: (y) =>
    y
      .positional('scope', { type: 'string', describe: 'the scope, as named by scopes/<scope>.yaml' })
      .option('pending', { type: 'boolean', describe: 'mint every declared scope that has no intermediate yet' })
      .option('standby', {
        type: 'boolean',
        describe:
          'mint a standby beside the active intermediate, its key to the break-glass recipient only (docs/standby.md)',
      })
      .option('yes', {
        type: 'boolean',
        describe: 'sign without typing the scope names back (on a terminal, the ceremony asks for them)',
      })
      .example('$0 intermediate us-east-1', 'after merging the PR that adds scopes/us-east-1.yaml')
      .example('$0 intermediate us-east-1 --standby --confirm-recipients', 'a break-glass standby for a minted scope')
      .example('$0 intermediate --pending', 'every scope awaiting its ceremony') as never,
  handler: (a) => runIntermediate(a),
};

async function runIntermediate(a: Args): Promise<void> {
  const posture = requireOfflinePosture(a);
  if (Boolean(a.scope) === Boolean(a.pending))
    throw new TrellisError('usage', 'give a SCOPE or --pending, not both or neither');
  if (a.standby) return runStandby(a, posture);
  await withStore(a.store, async (store) => {
    const mesh = loadMesh(store);
    const now = clock(a.now);
    const unminted = (s: string) => {
      const state = ceremonyState(mesh, s);
      if (state === 'minted') return false;
      if (state === 'lost') throw intermediateLost(mesh, s)!;
      return true;
    };
    let targets: string[];
    if (a.pending) targets = mesh.scopes.map((s) => s.name).filter(unminted);
    else {
      targets = [scopeDef(mesh, a.scope!).name];
      if (!unminted(a.scope!)) {
        throw new TrellisError('already-minted', `scope ${a.scope} already has an intermediate`, {
          file: paths.intermediate(a.scope!),
          hint:
            `to replace it: trellis-root rotate intermediate ${a.scope} (planned) or trellis-root recover ` +
            `${a.scope} (compromise)`,
        });
      }
    }
    if (!targets.length) {
      process.stdout.write('no scope is pending its intermediate\n');
      return;
    }
    const c = ceremony(mesh, now, posture, a.confirmRecipients);
    await confirmSummary(
      mesh,
      targets,
      now,
      Boolean(a.yes),
      a.scope ? `trellis-root intermediate ${a.scope}` : undefined,
    );
    const root = await openRootKey(mesh, rootIdentities(), now);
    const result = await ceremonyIntermediates(c, targets, root);
    store.commit(result.writes);
    say(result.report);
  });
}

/** `--standby`: the named scope, or with --pending every minted scope without a standby. */
async function runStandby(a: Args, posture: ReturnType<typeof requireOfflinePosture>): Promise<void> {
  await withStore(a.store, async (store) => {
    const mesh = loadMesh(store);
    const now = clock(a.now);
    const targets = a.pending
      ? mesh.scopes
          .map((s) => s.name)
          .filter((s) => ceremonyState(mesh, s) === 'minted' && !mesh.material.get(s)?.standby)
      : [scopeDef(mesh, a.scope!).name];
    if (!targets.length) {
      process.stdout.write('every minted scope has its standby\n');
      return;
    }
    const c = ceremony(mesh, now, posture, a.confirmRecipients);
    breakglassToRecord(c.mesh, Boolean(a.confirmRecipients)); // refused before the root key is opened
    const root = await openRootKey(mesh, rootIdentities(), now);
    const result = await mintStandbys(c, targets, root, Boolean(a.confirmRecipients));
    store.commit(result.writes);
    say(result.report);
  });
}

/**
 * Shows exactly what will be signed (the summary verify --format markdown put
 * on the pull request) and, at a terminal, has the custodian type the scope
 * names back before the root key is opened. Without a terminal (scripted
 * ceremonies, tests) the summary is printed and the ceremony proceeds, as
 * with --yes: the root identity is the gate there.
 */
async function confirmSummary(mesh: Mesh, targets: string[], now: Date, yes: boolean, command?: string): Promise<void> {
  // The command as the custodian ran it: a named scope is not --pending.
  process.stdout.write(renderCeremonySummary(mesh, targets, now, command));
  // A plan that would be refused fails at minting with its own error; there is nothing to confirm.
  if (yes || !process.stdin.isTTY || targets.some((t) => 'refused' in planOrRefusal(mesh, t, now))) return;
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string>((resolve) => {
    rl.on('close', () => resolve(''));
    rl.question(
      `type the scope name${targets.length === 1 ? '' : 's'} to sign (${targets.length}), separated by spaces: `,
      resolve,
    );
  });
  rl.close();
  assertTypedBack(answer, targets);
}
