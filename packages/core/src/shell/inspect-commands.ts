/**
 * `status` and `verify`: the two read-only commands both CLIs offer, defined
 * once. Each CLI registers them; only which identity verify may use to prove
 * custody differs (the CLI's own: CI's in trellis-ci, the offline one in trellis-root).
 */
import { readIdentities, type IdentityKind } from '../custody/custody.js';
import { loadMesh } from '../store/load-mesh.js';
import type { Mesh } from '../model/mesh.js';
import { meshStatus } from '../procedures/plan.js';
import { renderFindings, renderStatus } from '../report/report.js';
import { clock, withStore } from './shell.js';
import { custodyFindings, verifyMesh, worstLevel, type Finding } from '../verify/verify.js';
import { renderVerifyMarkdown } from '../verify/markdown.js';
import { TrellisError } from '../model/errors.js';
import { retiredIdentityFindings } from './retired-identity.js';
import { secretFindings } from './secret-scan.js';
import { READ_LIMITS, readBounded, storeReader } from '../store/store.js';

interface InspectArgs {
  store?: string;
  json?: boolean;
  now?: string;
  format?: string;
  retiredIdentity?: string;
}
/** The part of yargs' builder these commands use: core does not depend on yargs. */
interface OptionBuilder {
  option(name: string, opts: { type: 'boolean' | 'string'; describe: string; choices?: string[] }): OptionBuilder;
}

const jsonFlag = (y: OptionBuilder) => y.option('json', { type: 'boolean', describe: 'machine-readable output' });
const formatFlag = (y: OptionBuilder) =>
  jsonFlag(y).option('format', {
    type: 'string',
    choices: ['text', 'json', 'markdown'],
    describe: 'text (default), json (= --json), or markdown: a pull-request comment with what the ceremony will sign',
  });

export const statusCommand = {
  command: 'status',
  describe: 'Show the root, each scope and its leaves',
  builder: jsonFlag,
  handler: async (a: InspectArgs): Promise<void> => {
    const s = await withStore(a.store, async (store) => meshStatus(loadMesh(store), clock(a.now)));
    process.stdout.write(a.json ? `${JSON.stringify(s, null, 2)}\n` : renderStatus(s));
  },
};

/** What verify judges with besides the store: its instant, and identities as the shell read them (none read here). */
export interface VerifyInputs {
  now: Date;
  custody: { ci?: string[]; root?: string[]; breakglass?: string[] };
  /** Identities retired by rekey: each must open no key file in the working tree. */
  retired?: string[];
  extraCustody?: (mesh: Mesh, now: Date) => Promise<Finding[]>;
}

/**
 * Everything verify judges in one store, in the order it reports it: the one composition behind both CLIs' verify.
 * It takes the lock first, so it completes or discards a write a crash interrupted (the crash sweep settles with it).
 * `inputs` is asked for once the store is loaded: a store that cannot be read is reported before a bad identity.
 */
export async function verifyStore(
  storeFlag: string | undefined,
  inputs: () => VerifyInputs,
): Promise<{ mesh: Mesh; now: Date; findings: Finding[] }> {
  const { mesh, dir, secrets } = await withStore(storeFlag, async (store) => ({
    mesh: loadMesh(store),
    dir: store.dir,
    secrets: secretFindings(store),
  }));
  const { now, custody, retired, extraCustody } = inputs();
  const findings = [
    ...secrets,
    ...(await verifyMesh(mesh, now, storeReader(mesh.dir))),
    ...(await custodyFindings(mesh, custody)),
    ...(retired ? await retiredIdentityFindings(dir, retired) : []),
    ...((await extraCustody?.(mesh, now)) ?? []),
  ];
  return { mesh, now, findings };
}

/** verify, proving custody with the identity this CLI's posture holds. */
export function verifyCommand(
  identity: Exclude<IdentityKind, 'agent'>,
  extraCustody?: (mesh: Mesh, now: Date) => Promise<Finding[]>,
  /**
   * The identity this CLI already holds another way (trellis-root: recombined from shares), before the environment's.
   */
  held?: () => string[] | undefined,
) {
  return {
    command: 'verify',
    describe:
      identity === 'ci'
        ? 'Check the store without secrets; with the CI identity, also prove key custody'
        : 'Check the store; with the offline identity, also prove root custody',
    builder: (y: OptionBuilder) =>
      formatFlag(y).option('retired-identity', {
        type: 'string',
        describe: 'an identity file retired by rekey: prove it opens no key file in the working tree',
      }),
    handler: async (a: InspectArgs): Promise<void> => {
      if (a.json && a.format && a.format !== 'json')
        throw new TrellisError('usage', `--json and --format ${a.format} ask for two formats`, {
          field: '--format',
          hint: 'give one of them',
        });
      const read = (p: string) => readBounded(p, READ_LIMITS.small, { followLink: true });
      const { mesh, now, findings } = await verifyStore(a.store, () => {
        const ids = held?.() ?? readIdentities(identity, process.env, read);
        const retired =
          a.retiredIdentity === undefined
            ? undefined
            : readIdentities(
                identity,
                { [`TRELLIS_${identity.toUpperCase()}_IDENTITY_FILE`]: a.retiredIdentity },
                read,
              );
        const now = clock(a.now);
        // trellis-ci verify also proves the standby keys' custody when the on-call team runs it with the break-glass
        // identity.
        const breakglass = identity === 'ci' ? readIdentities('breakglass', process.env, read) : undefined;
        return {
          now,
          custody: { [identity]: ids, ...(breakglass ? { breakglass } : {}) },
          retired,
          extraCustody,
        };
      });
      const format = a.json ? 'json' : (a.format ?? 'text');
      process.stdout.write(
        format === 'json'
          ? `${JSON.stringify({ ok: worstLevel(findings) !== 'error', findings }, null, 2)}\n`
          : format === 'markdown'
            ? renderVerifyMarkdown(mesh, findings, now)
            : renderFindings(findings),
      );
      if (worstLevel(findings) === 'error') process.exitCode = 1;
    },
  };
}
