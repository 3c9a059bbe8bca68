#!/usr/bin/env node
/** trellis-ci: the CI CLI. It never sees the root identity, and imports no root-signing code. */
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { assertNoBreakglass } from '@trellis/core';
import {
  EXIT_CODES_HELP,
  NOW_AHEAD_OPTION,
  checkNowFlag,
  failAsUsage,
  refuseRepeatedFlags,
  runMain,
  withHelp,
  versionAsCommand,
  withoutHelpCache,
} from '@trellis/core/shell';
import { requireCiPosture } from './posture.js';
import { bundle } from './commands/bundle.js';
import { plan } from './commands/plan.js';
import { renew } from './commands/renew.js';
import { status } from './commands/status.js';
import { verify } from './commands/verify.js';
import { revoke } from './commands/revoke.js';
import { deploy } from './commands/deploy.js';
import { check } from './commands/check.js';
import { version } from './commands/version.js';
import { compose } from './commands/compose.js';
import { scope } from './commands/scope.js';
import { explain } from './commands/explain.js';
import { report } from './commands/report.js';
import { rekey } from './commands/rekey.js';
import { activateStandby } from './commands/activate-standby.js';
import { probe } from './commands/probe.js';

await runMain('trellis-ci', () => {
  // Posture first, for every command: the root identity in this environment is refused before anything else runs.
  requireCiPosture();
  return (
    withoutHelpCache(yargs(versionAsCommand(hideBin(process.argv))))
      .scriptName('trellis-ci')
      .version(false)
      .usage('$0 <command>: leaf issuance, bundles and checks, in CI')
      .option('store', {
        type: 'string',
        global: true,
        describe: 'the store directory (default: nearest ancestor with trellis.yaml, or TRELLIS_STORE)',
      })
      .option('now', {
        type: 'string',
        global: true,
        describe: 'evaluate (and sign) as of this RFC 3339 time, for drills and tests',
      })
      .option('now-ahead', NOW_AHEAD_OPTION)
      .command(
        (
          [
            renew,
            plan,
            revoke,
            deploy,
            bundle,
            scope,
            status,
            verify,
            check,
            explain,
            report,
            version,
            compose,
            rekey,
            activateStandby,
            probe,
          ] as CommandModule[]
        ).map((c) => withHelp('trellis-ci', c)),
      )
      // deploy --type and scope add --service take lists
      .middleware((argv) => refuseRepeatedFlags(argv, ['type', 'service']))
      .middleware((argv) => checkNowFlag(argv))
      // The break-glass identity belongs to activate-standby (and verify, which proves its custody): every other
      // command refuses it.
      .middleware((argv) => {
        if (argv._[0] !== 'activate-standby' && argv._[0] !== 'verify')
          assertNoBreakglass(process.env, `trellis-ci ${String(argv._[0] ?? '')}`);
      })
      .demandCommand(1, 'name a command')
      .strict()
      .recommendCommands()
      .epilogue(
        `environment: TRELLIS_CI_IDENTITY_FILE (or TRELLIS_CI_IDENTITY) the CI identity, read by renew, ` +
          `revoke, compose, rekey, deploy --type sealed and verify's custody checks (TRELLIS_CI_IDENTITY_<SCOPE> ` +
          `per scope in a sharded workflow, docs/sharding.md); TRELLIS_STORE the store; each command's --help ` +
          `names what it reads.\n\n${EXIT_CODES_HELP}; every reason: docs/errors.md`,
      )
      .fail(failAsUsage)
      .parseAsync()
  );
});
