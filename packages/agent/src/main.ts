#!/usr/bin/env node
/** trellis-agent: on a service host, installs a release CI sealed to this host's identity. */
import fs from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { TrellisError, assertAgentPosture, describeRelease, openSealedRelease, requireIdentities, runMain } from '@trellis/core';
import { installLocally } from './install.js';

interface Args { bundle: string; dir: string; reload?: string; expect?: string }

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
        .option('reload', { type: 'string', describe: 'command run after a change (e.g. "systemctl reload nginx"); a failure rolls back' })
        .option('expect', { type: 'string', describe: 'refuse a bundle that is not for SCOPE/SERVICE' })
        .example('$0 install --bundle api.age --dir /etc/trellis/api --reload "systemctl reload nginx"', '') as never,
      async (a) => {
        let text: string;
        try {
          text = fs.readFileSync(a.bundle, 'utf8');
        } catch (e) {
          throw new TrellisError('usage', `cannot read the bundle: ${(e as Error).message}`, { file: a.bundle });
        }
        const ids = requireIdentities('agent', process.env, (p) => fs.readFileSync(p, 'utf8'));
        const sealed = await openSealedRelease(ids, text, a.bundle);
        if (a.expect && a.expect !== `${sealed.scope}/${sealed.service}`) {
          throw new TrellisError('usage', `this bundle is for ${sealed.scope}/${sealed.service}, not ${a.expect}`, { file: a.bundle });
        }
        const outcome = await installLocally(a.dir, sealed.files, a.reload);
        process.stdout.write(`${sealed.scope}/${sealed.service} (${describeRelease(sealed.files)}): ${outcome.detail}\n`);
      },
    )
    .demandCommand(1, 'name a command')
    .strict()
    .epilogue('exit codes: 0 installed or unchanged, 1 the release was refused or the reload failed (rolled back), 2 usage, 3 custody')
    .fail((msg, err) => {
      throw err ?? new TrellisError('usage', msg);
    })
    .parseAsync();
});
