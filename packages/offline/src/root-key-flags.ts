/**
 * The root-key flags, declared once and only on the commands that read them:
 * which command takes which follows from the environment table its help prints
 * (COMMAND_ENVIRONMENT), so a flag and its variable cannot part ways.
 */
import type { Argv, CommandModule } from 'yargs';
import { environmentOf, withHelp, type EnvironmentVariable } from '@trellis/core/shell';

/** Commands whose ceremony records recipients, and so may accept changed ones. */
const CONFIRMS_RECIPIENTS = new Set(['intermediate', 'rotate', 'recover', 'retire', 'confirm', 'rekey']);

const reads = (command: string, v: EnvironmentVariable): boolean => environmentOf('trellis-root', command).includes(v);

/** Whether `command` opens the root key from identity shares (--shares-from, --shares-stdin). */
export const readsShares = (command: string): boolean =>
  command !== 'undefined' && reads(command, 'TRELLIS_ROOT_IDENTITY_SHARES');

/** The flags of the root key `command` opens: a token's module and PIN, the identity's shares, changed recipients. */
function rootKeyFlags(y: Argv, command: string): Argv {
  let b = y;
  if (reads(command, 'TRELLIS_PKCS11_PIN')) {
    b = b
      .option('pkcs11-module', {
        type: 'string',
        describe: 'PKCS#11 module of a token root (default TRELLIS_PKCS11_MODULE)',
      })
      .option('pin-file', {
        type: 'string',
        describe: 'file holding the token PIN (default TRELLIS_PKCS11_PIN); never printed',
      });
  }
  if (readsShares(command)) {
    b = b
      .option('shares-from', {
        type: 'string',
        array: true,
        describe:
          'recombine the offline identity from these share files (K of N, in memory only); or ' +
          'TRELLIS_ROOT_IDENTITY_SHARES=FILE,FILE',
      })
      .option('shares-stdin', {
        type: 'boolean',
        describe:
          'read identity shares from stdin: typed at a terminal (echo off, one custodian after another, until ' +
          'K) or piped; with --shares-from, after its files',
      });
  }
  if (CONFIRMS_RECIPIENTS.has(command)) {
    b = b.option('confirm-recipients', {
      type: 'boolean',
      describe: 'accept recipients in trellis.yaml that differ from the ones the root ledger recorded (recorded anew)',
    });
  }
  return b;
}

/** A trellis-root command with its root-key flags and a help that ends in its environment and exit codes. */
export function withRootCommandHelp(module: CommandModule): CommandModule {
  const command = String(module.command).split(' ')[0]!;
  const inner = module.builder;
  const withFlags: CommandModule = {
    ...module,
    builder: (y: Argv) => {
      const b = rootKeyFlags(y, command);
      return (typeof inner === 'function' ? inner(b) : inner ? b.options(inner) : b) as Argv;
    },
  };
  return withHelp('trellis-root', withFlags);
}
