#!/usr/bin/env node
/** trellis-agent: on a service host, installs a release CI sealed to this host's identity. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import {
  DEFAULT_HOST_POLICY,
  TrellisError,
  assertAgentPosture,
  describeRelease,
  formatDuration,
  openSealedRelease,
  parseCertificates,
  parseDuration,
  requireIdentities,
  KEY_ALGORITHMS,
  type Certificate,
  type KeyAlgorithm,
} from '@trellis/core';
import { readBounded, READ_LIMITS } from '@trellis/core/store';
import {
  clock,
  failAsUsage,
  runMain,
  versionCommand,
  commandEpilogue,
  exitCodesHelp,
  withHelp,
  versionAsCommand,
  withoutHelpCache,
} from '@trellis/core/shell';
import path from 'node:path';
import { keygen } from './keygen.js';
import { hostStatePath, readHostState, writeHostState } from './host-state.js';
import { installLocally } from './install.js';

interface KeygenArgs {
  service: string;
  dir: string;
  algorithm: KeyAlgorithm;
  rotate?: boolean;
  mesh?: string;
  scope?: string;
}

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
  return withoutHelpCache(yargs(versionAsCommand(hideBin(process.argv))))
    .scriptName('trellis-agent')
    .version(false)
    .command<Args>(
      'install',
      "Open a sealed release with this host's identity (TRELLIS_AGENT_IDENTITY_FILE), validate it, install it " +
        'atomically and reload',
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
              'the mesh roots this host pins (bundles/root/roots.pem, installed out of band): the release must ' +
              'be signed under them',
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
              'how long past its nextUpdate the newest root CRL is still relied on (with a warning) before ' +
              'every release is refused',
          })
          .example(
            '$0 install --bundle api.age --dir /etc/trellis/api --roots /etc/trellis/roots.pem --reload ' +
              '"systemctl reload nginx"',
            '',
          )
          .epilogue(commandEpilogue('trellis-agent', 'install')) as never,
      async (a) => {
        let text: string;
        try {
          text = readBounded(a.bundle, READ_LIMITS.release, { followLink: true });
        } catch (e) {
          throw new TrellisError('usage', `cannot read the bundle: ${(e as Error).message}`, {
            file: a.bundle,
            field: '--bundle',
          });
        }
        const ids = requireIdentities('agent', process.env, (p) =>
          readBounded(p, READ_LIMITS.small, { followLink: true }),
        );
        let roots: Certificate[];
        try {
          roots = parseCertificates(readBounded(a.roots, READ_LIMITS.small, { followLink: true }));
        } catch (e) {
          throw new TrellisError('usage', `cannot read the pinned roots: ${(e as Error).message}`, {
            file: a.roots,
            field: '--roots',
          });
        }
        if (!roots.length)
          throw new TrellisError('usage', 'holds no root certificate', { file: a.roots, field: '--roots' });
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
    .command<KeygenArgs>(
      'keygen <service>',
      'Make a key for a key: host service on this host (0600, never printed) and print its CSR for the pull ' +
        "request; --rotate makes the next key with the current key's proof",
      (y) =>
        y
          .positional('service', {
            type: 'string',
            demandOption: true,
            describe: 'the service, as its scope file names it',
          })
          .option('dir', {
            type: 'string',
            demandOption: true,
            describe:
              "the service's release directory (as install --dir or the dir/ssh target's path): keys go to <dir>/keys/",
          })
          .option('algorithm', {
            choices: KEY_ALGORITHMS,
            default: 'ecdsa-p256' as KeyAlgorithm,
            describe: "the mesh's leaf algorithm (trellis.yaml defaults.algorithms.leaf)",
          })
          .option('rotate', {
            type: 'boolean',
            describe:
              'make the next key beside the current one, and the proof the current key signs (needs --mesh, --scope)',
          })
          .option('mesh', { type: 'string', describe: 'with --rotate: the mesh name (trellis.yaml mesh)' })
          .option('scope', { type: 'string', describe: "with --rotate: the service's scope" })
          .example('$0 keygen web --dir /etc/trellis/web > web.csr.pem', 'commit it as scopes/<scope>/web.csr.pem')
          .example('$0 keygen web --dir /etc/trellis/web --rotate --mesh prod --scope us-east-1', 'a rotation')
          .epilogue(commandEpilogue('trellis-agent', 'keygen')) as never,
      async (a) => {
        if (a.rotate && (!a.mesh || !a.scope))
          throw new TrellisError('usage', '--rotate needs --mesh and --scope: the proof binds the new key to them', {
            hint: 'give the mesh name (trellis.yaml mesh) and the scope of the service',
          });
        const r = await keygen({
          service: a.service,
          dir: a.dir,
          algorithm: a.algorithm,
          ...(a.rotate ? { rotate: { mesh: a.mesh!, scope: a.scope! } } : {}),
        });
        process.stdout.write(r.csr);
        const scope = a.scope ?? '<scope>';
        const files = r.files.map((f) => `${f} as scopes/${scope}/${path.basename(f)}`).join(' and ');
        const confirm = a.rotate ? '' : '; a custodian confirms a first key (trellis-root confirm)';
        process.stderr.write(`commit ${files}${confirm}\n`);
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
