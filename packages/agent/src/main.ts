#!/usr/bin/env node
/** trellis-agent: on a service host, installs a release CI sealed to this host's identity. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import {
  DEFAULT_HOST_POLICY,
  TrellisError,
  assertAgentPosture,
  clock,
  describeRelease,
  failAsUsage,
  formatDuration,
  openSealedRelease,
  parseCertificates,
  parseDuration,
  requireIdentities,
  runMain,
  versionCommand,
  commandEpilogue,
  exitCodesHelp,
  withHelp,
  readBounded,
  READ_LIMITS,
  type Certificate,
} from '@trellis/core';
import { hostStatePath, readHostState, writeHostState } from './host-state.js';
import { installLocally } from './install.js';

interface Args {
  bundle: string;
  dir: string;
  roots: string;
  reload?: string;
  expect?: string;
  clockSkew: string;
  crlGrace: string;
}

await runMain('trellis-agent', () => {
  assertAgentPosture(process.env);
  return yargs(hideBin(process.argv))
    .scriptName('trellis-agent')
    .command<Args>(
      'install',
      "Open a sealed release with this host's identity (TRELLIS_AGENT_IDENTITY_FILE), validate it, install it atomically and reload",
      (y) =>
        y
          .option('bundle', {
            type: 'string',
            demandOption: true,
            describe: 'the sealed release (.age) CI wrote for this host',
          })
          .option('dir', {
            type: 'string',
            demandOption: true,
            describe: 'where releases live; <dir>/current points at the installed one',
          })
          .option('roots', {
            type: 'string',
            demandOption: true,
            describe:
              'the mesh roots this host pins (bundles/root/roots.pem, installed out of band): the release must be signed under them',
          })
          .option('reload', {
            type: 'string',
            describe: 'command run after a change (e.g. "systemctl reload nginx"); a failure rolls back',
          })
          .option('expect', { type: 'string', describe: 'refuse a bundle that is not for SCOPE/SERVICE' })
          .option('clock-skew', {
            type: 'string',
            default: formatDuration(DEFAULT_HOST_POLICY.clockSkew),
            describe: "how far in this host's future a release or root CRL may be dated",
          })
          .option('crl-grace', {
            type: 'string',
            default: formatDuration(DEFAULT_HOST_POLICY.crlGrace),
            describe:
              'how long past its nextUpdate the newest root CRL is still relied on (with a warning) before every release is refused',
          })
          .example(
            '$0 install --bundle api.age --dir /etc/trellis/api --roots /etc/trellis/roots.pem --reload "systemctl reload nginx"',
            '',
          )
          .epilogue(commandEpilogue('trellis-agent', 'install')) as never,
      async (a) => {
        let text: string;
        try {
          text = readBounded(a.bundle, READ_LIMITS.release, { followLink: true });
        } catch (e) {
          throw new TrellisError('usage', `cannot read the bundle: ${(e as Error).message}`, { file: a.bundle });
        }
        const ids = requireIdentities('agent', process.env, (p) =>
          readBounded(p, READ_LIMITS.small, { followLink: true }),
        );
        let roots: Certificate[];
        try {
          roots = parseCertificates(readBounded(a.roots, READ_LIMITS.small, { followLink: true }));
        } catch (e) {
          throw new TrellisError('usage', `cannot read the pinned roots: ${(e as Error).message}`, { file: a.roots });
        }
        if (!roots.length) throw new TrellisError('usage', 'holds no root certificate', { file: a.roots });
        const policy = {
          clockSkew: parseDuration(a.clockSkew, { field: '--clock-skew' }, 'usage'),
          crlGrace: parseDuration(a.crlGrace, { field: '--crl-grace' }, 'usage'),
        };
        // Judged against what this host remembers; nothing is written until the release is installed.
        const host = readHostState(a.dir);
        const opened = await openSealedRelease({
          identities: ids,
          armored: text,
          file: a.bundle,
          roots,
          host,
          hostStateFile: hostStatePath(a.dir),
          now: clock(undefined),
          policy,
        });
        const sealed = opened.release;
        if (a.expect && a.expect !== `${sealed.scope}/${sealed.service}`) {
          throw new TrellisError('usage', `this bundle is for ${sealed.scope}/${sealed.service}, not ${a.expect}`, {
            file: a.bundle,
          });
        }
        for (const w of opened.warnings) process.stderr.write(`${w}\n`);
        const outcome = await installLocally(a.dir, sealed.files, a.reload);
        writeHostState(a.dir, opened.host);
        process.stdout.write(
          `${sealed.scope}/${sealed.service} (${describeRelease(sealed.files)}): ${outcome.detail}\n`,
        );
      },
    )
    .command(withHelp('trellis-agent', versionCommand('trellis-agent')))
    .demandCommand(1, 'name a command')
    .strict()
    .recommendCommands()
    .epilogue(exitCodesHelp('trellis-agent', 'install'))
    .fail(failAsUsage)
    .parseAsync();
});
