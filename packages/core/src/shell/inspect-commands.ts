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
      const { mesh, dir, secrets } = await withStore(a.store, async (store) => ({
        mesh: loadMesh(store),
        dir: store.dir,
        secrets: secretFindings(store),
      }));
      const ids =
        held?.() ??
        readIdentities(identity, process.env, (p) => readBounded(p, READ_LIMITS.small, { followLink: true }));
      const retired =
        a.retiredIdentity === undefined
          ? undefined
          : readIdentities(identity, { [`TRELLIS_${identity.toUpperCase()}_IDENTITY_FILE`]: a.retiredIdentity }, (p) =>
              readBounded(p, READ_LIMITS.small, { followLink: true }),
            );
      const now = clock(a.now);
      // trellis-ci verify also proves the standby keys' custody when the on-call team runs it with the break-glass
      // identity.
      const breakglass =
        identity === 'ci'
          ? readIdentities('breakglass', process.env, (p) => readBounded(p, READ_LIMITS.small, { followLink: true }))
          : undefined;
      const findings = [
        ...secrets,
        ...(await verifyMesh(mesh, now, storeReader(mesh.dir))),
        ...(await custodyFindings(mesh, { [identity]: ids, ...(breakglass ? { breakglass } : {}) })),
        ...(retired ? await retiredIdentityFindings(dir, retired) : []),
        ...((await extraCustody?.(mesh, now)) ?? []),
      ];
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
