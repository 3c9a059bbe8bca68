#!/usr/bin/env node
/** trellis-agent: on a service host, installs a release CI sealed to this host's identity. */
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { TrellisError, assertAgentPosture, describeRelease, failAsUsage, openSealedRelease, parseCertificates, requireIdentities, runMain, writeFileAtomic } from '@trellis/core';
import { installLocally } from './install.js';

interface Args { bundle: string; dir: string; roots: string; reload?: string; expect?: string }

await runMain('trellis-agent', () => {
  assertAgentPosture(process.env);
  return yargs(hideBin(process.argv))
    .scriptName('trellis-agent')
    .command<Args>(
      'install',
      'Open a sealed release with this host\'s identity (TRELLIS_AGENT_IDENTITY_FILE), validate it, install it atomically and reload',
      (y) => y
        .option('bundle', { type: 'string', demandOption: true, describe: 'the sealed release (.age) CI wrote for this host' })
        .option('dir', { type: 'string', demandOption: true, describe: 'where releases live; <dir>/current points at the installed one' })
        .option('roots', { type: 'string', demandOption: true, describe: 'the mesh roots this host pins (bundles/root/roots.pem, installed out of band): the release must be signed under them' })
        .option('reload', { type: 'string', describe: 'command run after a change (e.g. "systemctl reload nginx"); a failure rolls back' })
        .option('expect', { type: 'string', describe: 'refuse a bundle that is not for SCOPE/SERVICE' })
        .example('$0 install --bundle api.age --dir /etc/trellis/api --roots /etc/trellis/roots.pem --reload "systemctl reload nginx"', '') as never,
      async (a) => {
        let text: string;
        try {
          text = fs.readFileSync(a.bundle, 'utf8');
        } catch (e) {
          throw new TrellisError('usage', `cannot read the bundle: ${(e as Error).message}`, { file: a.bundle });
        }
        const ids = requireIdentities('agent', process.env, (p) => fs.readFileSync(p, 'utf8'));
        let roots;
        try {
          roots = parseCertificates(fs.readFileSync(a.roots, 'utf8'));
        } catch (e) {
          throw new TrellisError('usage', `cannot read the pinned roots: ${(e as Error).message}`, { file: a.roots });
        }
        if (!roots.length) throw new TrellisError('usage', 'holds no root certificate', { file: a.roots });
        // The newest release installed from a sealed bundle: an older one is a replay.
        const stamp = path.join(a.dir, '.sealed-created');
        const last = fs.existsSync(stamp) ? fs.readFileSync(stamp, 'utf8').trim() : undefined;
        const sealed = await openSealedRelease(ids, text, a.bundle, roots, last);
        if (a.expect && a.expect !== `${sealed.scope}/${sealed.service}`) {
          throw new TrellisError('usage', `this bundle is for ${sealed.scope}/${sealed.service}, not ${a.expect}`, { file: a.bundle });
        }
        const outcome = await installLocally(a.dir, sealed.files, a.reload);
        writeFileAtomic(stamp, `${sealed.created}\n`);
        process.stdout.write(`${sealed.scope}/${sealed.service} (${describeRelease(sealed.files)}): ${outcome.detail}\n`);
      },
    )
    .demandCommand(1, 'name a command')
    .strict()
    .epilogue('exit codes: 0 installed or unchanged, 1 the release was refused or the reload failed (rolled back), 2 usage, 3 custody')
    .fail(failAsUsage)
    .parseAsync();
});
