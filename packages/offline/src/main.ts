#!/usr/bin/env node
/** trellis-root: the offline CLI. Every command checks the air-gapped posture first. */
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { findStore } from '@trellis/core/store';
import {
  EXIT_CODES_HELP,
  NOW_AHEAD_OPTION,
  checkNowFlag,
  failAsUsage,
  refuseRepeatedFlags,
  runMain,
  versionAsCommand,
  withoutHelpCache,
} from '@trellis/core/shell';
import { requireClockNotBehindLedger, requireOfflinePosture } from './posture.js';
import { loadRootShares } from './ceremony-context.js';
import { init } from './commands/init.js';
import { intermediate } from './commands/intermediate.js';
import { status } from './commands/status.js';
import { verify } from './commands/verify.js';
import { rotate } from './commands/rotate.js';
import { recover } from './commands/recover.js';
import { crl } from './commands/crl.js';
import { retire } from './commands/retire.js';
import { confirm } from './commands/confirm.js';
import { check } from './commands/check.js';
import { version } from './commands/version.js';
import { rekey } from './commands/rekey.js';
import { setTokenFlags } from './token.js';
import { readsShares, withRootCommandHelp } from './root-key-flags.js';

await runMain('trellis-root', () => {
  // Posture first, for every command: nothing of this CLI runs in CI, next to the CI identity, or online unless
  // allowed.
  // Ceremonies ask again, for the record their ledger entry keeps.
  // Help and version open no key: they answer on a connected machine too (the other posture refusals stay).
  requireOfflinePosture({
    allowOnline: asksOnlyForHelp(hideBin(process.argv)) || process.argv.includes('--allow-online'),
  });
  return (
    withoutHelpCache(yargs(versionAsCommand(hideBin(process.argv))))
      .scriptName('trellis-root')
      .version(false)
      .usage('$0 <command>: root and intermediate operations, on the air-gapped workstation')
      .option('store', {
        type: 'string',
        global: true,
        describe: 'the store directory (default: nearest ancestor with trellis.yaml, or TRELLIS_STORE)',
      })
      .option('allow-online', {
        type: 'boolean',
        global: true,
        describe: 'run although a network interface is up (noted in the ceremony record)',
      })
      .option('now', { type: 'string', global: true, describe: 'act as of this RFC 3339 time (drills)' })
      .option('now-ahead', NOW_AHEAD_OPTION)
      .command(
        (
          [
            init,
            intermediate,
            rotate,
            recover,
            retire,
            crl,
            confirm,
            rekey,
            status,
            verify,
            check,
            version,
          ] as CommandModule[]
        ).map(withRootCommandHelp),
      )
      // After parsing, before any command: a clock behind the root ledger is refused for every command.
      .middleware((argv) => {
        refuseRepeatedFlags(argv, ['offline-recipient', 'shares-from']);
        checkNowFlag(argv);
        requireClockNotBehindLedger(argv as { store?: string; now?: string });
        setTokenFlags({
          ...(argv as { pkcs11Module?: string; pinFile?: string }),
          storeDir: storeDirOrUndefined(argv.store as string | undefined),
        });
      })
      // Shares are recombined only for a command that opens the root key with them.
      .middleware((argv) =>
        readsShares(String(argv._[0]))
          ? loadRootShares(argv as { store?: string; sharesFrom?: string[]; sharesStdin?: boolean })
          : undefined,
      )
      .demandCommand(1, 'name a command')
      .strict()
      .recommendCommands()
      .epilogue(
        `environment: TRELLIS_ROOT_IDENTITY_FILE (or TRELLIS_ROOT_IDENTITY) the offline identity, or ` +
          `TRELLIS_ROOT_IDENTITY_SHARES=FILE,FILE its shares; TRELLIS_PKCS11_MODULE and TRELLIS_PKCS11_PIN a ` +
          `token root; TRELLIS_STORE the store; TRELLIS_ALLOW_ONLINE=1 as --allow-online. Read only by commands ` +
          `that open the root key: each command's --help names what it reads.\n\n${EXIT_CODES_HELP}; every ` +
          `reason: docs/errors.md`,
      )
      .fail(failAsUsage)
      .parseAsync()
  );
});

function storeDirOrUndefined(flag: string | undefined): string | undefined {
  try {
    return findStore(process.cwd(), flag ?? (process.env.TRELLIS_STORE || undefined));
  } catch {
    return undefined; // init, or no store: the command reports it
  }
}

/** `--help` anywhere, `version`, or no command at all: what prints text and touches nothing. */
function asksOnlyForHelp(args: string[]): boolean {
  if (args.includes('--help') || args.includes('-h')) return true;
  const valued = new Set(['--store', '--now', '--pkcs11-module', '--pin-file', '--shares-from']);
  const positionals = args.filter((a, i) => !a.startsWith('-') && !valued.has(args[i - 1] ?? ''));
  return positionals.length === 0 || (positionals.length === 1 && positionals[0] === 'version');
}
