#!/usr/bin/env node
/**
 * trellis-drill: rehearses a runbook on a scratch copy of the mesh's shape,
 * with throwaway keys and identities, on a simulated clock, with live mTLS
 * handshakes at every phase. It holds no real identity, and refuses to run
 * next to one.
 */
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { assertDrillPosture } from '@trellis/core';
import {
  NOW_AHEAD_OPTION,
  checkNowFlag,
  failAsUsage,
  refuseRepeatedFlags,
  runMain,
  versionCommand,
  versionAsCommand,
  withoutHelpCache,
} from '@trellis/core/shell';
import { recover } from './commands/recover.js';
import { rotateIntermediate } from './commands/rotate-intermediate.js';
import { rotateRoot } from './commands/rotate-root.js';

await runMain('trellis-drill', () => {
  // Posture first: a real identity in this environment is refused before anything is read.
  assertDrillPosture(process.env);
  return withoutHelpCache(yargs(versionAsCommand(hideBin(process.argv))))
    .scriptName('trellis-drill')
    .version(false)
    .usage('$0 <command>: rehearse a runbook on throwaway keys, with a handshake checklist at every phase')
    .option('store', {
      type: 'string',
      global: true,
      describe: 'the real store whose shape (scopes, services, defaults) is rehearsed; only read',
    })
    .option('now', {
      type: 'string',
      global: true,
      describe: 'start the simulated clock at this RFC 3339 time (default: now)',
    })
    .option('now-ahead', NOW_AHEAD_OPTION)
    .option('keep', { type: 'boolean', global: true, describe: 'keep the scratch directory' })
    .command([rotateIntermediate, recover, rotateRoot] as CommandModule[])
    .command(versionCommand('trellis-drill'))
    .middleware((argv) => refuseRepeatedFlags(argv))
    .middleware((argv) => checkNowFlag(argv))
    .demandCommand(1, 'name a command')
    .strict()
    .recommendCommands()
    .epilogue(
      'exit codes: 0 every check matched its expectation, 1 a check differed or a step failed, 2 usage or bad ' +
        'input, 3 a real identity is set',
    )
    .fail(failAsUsage)
    .parseAsync();
});
