/**
 * Help never touches a key: `trellis-root --help`, every subcommand's `--help`
 * and `version` answer on a machine whose network is up, while every other
 * posture refusal stays (CI=true, a CI identity beside it, any real command online).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseEnv, CI_BIN, ROOT_BIN, trellisCi, AGENT_BIN, DRILL_BIN, nodeArgs, noteCliRun } from './helpers/cli.js';
import { execa } from 'execa';
import { COMMAND_ENVIRONMENT, ENVIRONMENT, type Cli } from '../packages/core/src/shell/index.js';

const COMMANDS = [
  'init',
  'intermediate',
  'rotate',
  'recover',
  'retire',
  'crl',
  'confirm',
  'rekey',
  'status',
  'verify',
  'check',
  'version',
];

/** trellis-root as on a connected machine: no TRELLIS_ALLOW_ONLINE. */
async function root(args: string[], env: Record<string, string> = {}) {
  const r = await execa('node', nodeArgs(ROOT_BIN, args), {
    env: baseEnv(env) as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  });
  noteCliRun(ROOT_BIN, r);
  return { code: r.exitCode, out: `${r.stdout}\n${r.stderr}` };
}

/** A network interface other than loopback is up: the test is only meaningful then. */
const online = (await root(['status'])).out.includes('network interface(s) up');

describe('trellis-root help on a connected machine', () => {
  it.skipIf(!online)(
    "--help, every subcommand's --help and version exit 0",
    async () => {
      for (const args of [['--help'], ['version'], ...COMMANDS.map((c) => [c, '--help'])]) {
        const r = await root(args);
        expect(r.code, `${args.join(' ')}: ${r.out}`).toBe(0);
        expect(r.out).not.toMatch(/network interface\(s\) up/);
      }
    },
    180_000,
  );

  it.skipIf(!online)('a real command still refuses online (exit 3), and help in CI still refuses', async () => {
    expect((await root(['status'])).code).toBe(3);
    expect((await root(['--help'], { CI: 'true' })).code).toBe(3);
    expect((await root(['status', '--help'], { TRELLIS_CI_IDENTITY: 'x' })).code).toBe(3);
  });
});

describe('help that tells', () => {
  it('a mistyped command gets the nearest one (exit 2)', async () => {
    const r = await trellisCi(['renwe'], { env: { CI: 'true' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Did you mean renew\?/);
  });

  it('a mistyped flag gets the nearest flag that command takes (exit 2), and no guess when none is near', async () => {
    const near = await trellisCi(['renew', '--dry-rn'], { env: { CI: 'true' } });
    expect(near.code).toBe(2);
    expect(near.stderr).toMatch(/Unknown argument: dry-rn\n.*did you mean --dry-run\?/);
    const rootNear = await root(['status', '--allow-online', '--jsn']);
    expect(rootNear.code).toBe(2);
    expect(rootNear.out).toMatch(/did you mean --json\?/);
    const far = await trellisCi(['status', '--xyzzy'], { env: { CI: 'true' } });
    expect(far.code).toBe(2);
    expect(far.stderr).not.toMatch(/did you mean/);
  });

  it('renew --help names the identity it reads; plan --help describes its flags; no literal $0 in trellis-root rotate --help', async () => {
    const renew = (await trellisCi(['renew', '--help'], { env: { CI: 'true' } })).stdout;
    expect(renew).toMatch(/TRELLIS_CI_IDENTITY_FILE\s+file holding the CI identity \(or\s+TRELLIS_CI_IDENTITY\)/);
    // One environment section, the table's (a hand-written epilogue once printed a second, cut short).
    expect(renew.match(/^environment:/gm)).toHaveLength(1);
    const plan = (await trellisCi(['plan', '--help'], { env: { CI: 'true' } })).stdout;
    expect(plan).toMatch(/--scope\s+only this scope/);
    expect(plan).toMatch(/--json\s+machine-readable output/);
    expect((await root(['rotate', '--help'])).out).not.toMatch(/\$0/);
    expect((await root(['--help'])).out).toMatch(/TRELLIS_ROOT_IDENTITY_FILE/);
  });
});

const BIN: Record<Cli, string> = { 'trellis-root': ROOT_BIN, 'trellis-ci': CI_BIN, 'trellis-agent': AGENT_BIN };
/** Each CLI's posture as it runs for help: trellis-root with no allowance (a network may be up), trellis-ci in CI. */
const POSTURE_ENV: Record<Cli, Record<string, string>> = {
  'trellis-root': {},
  'trellis-ci': { CI: 'true' },
  'trellis-agent': {},
};

/**
 * The flags of the root key, and which commands take them: what a command reads
 * (grepped from the handlers: rootIdentities() and openRootKey(s) for the identity
 * and its shares, the token seam for module and PIN, recipientsToRecord for
 * --confirm-recipients). Independent of the table the CLI builds them from.
 */
const TOKEN_FLAGS = ['--pkcs11-module', '--pin-file'];
const SHARE_FLAGS = ['--shares-from', '--shares-stdin'];
const CEREMONY = [...TOKEN_FLAGS, ...SHARE_FLAGS, '--confirm-recipients'];
const ROOT_KEY_FLAGS: Record<string, string[]> = {
  init: TOKEN_FLAGS, // a root generated on a token (--root-key)
  intermediate: CEREMONY,
  rotate: CEREMONY,
  recover: CEREMONY,
  retire: CEREMONY,
  crl: [...TOKEN_FLAGS, ...SHARE_FLAGS], // records no recipients
  confirm: CEREMONY,
  rekey: CEREMONY,
  verify: [...TOKEN_FLAGS, ...SHARE_FLAGS], // proves custody with the identity (or its shares), a token with its PIN
};
const ALL_ROOT_KEY_FLAGS = CEREMONY;

describe('--version', () => {
  it('is the version command for every CLI (not yargs\' "unknown"), and help no longer offers the flag', async () => {
    for (const [cli, bin] of [...Object.entries(BIN), ['trellis-drill', DRILL_BIN]] as [string, string][]) {
      const env = baseEnv(POSTURE_ENV[cli as Cli] ?? {}) as NodeJS.ProcessEnv;
      const run = (args: string[]) => execa('node', [bin, ...args], { env, extendEnv: false, reject: false });
      const [flag, command] = await Promise.all([run(['--version']), run(['version'])]);
      expect(flag.exitCode, `${cli} --version: ${flag.stderr}`).toBe(0);
      expect(flag.stdout, cli).toBe(command.stdout);
      expect(flag.stdout, cli).toMatch(new RegExp(`^${cli}\\ncommit`));
      expect((await run(['--help'])).stdout, cli).not.toMatch(/--version/);
    }
  });
});

async function help(cli: Cli, args: string[]) {
  const r = await execa('node', nodeArgs(BIN[cli], [...args, '--help']), {
    env: baseEnv(POSTURE_ENV[cli]) as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  });
  noteCliRun(BIN[cli], r);
  return { code: r.exitCode, out: r.stdout, err: r.stderr };
}

/** The commands a help text lists under "Commands:", as words after the CLI's name ("scope add"). */
function listedCommands(cli: Cli, text: string): string[] {
  const at = text.indexOf('\nCommands:\n');
  if (at < 0) return [];
  const section = text.slice(at).split('\n\n')[0]!;
  const re = new RegExp(`^  ${cli} ([a-z][a-z-]*(?: [a-z][a-z-]*)*)`, 'gm');
  return [...section.matchAll(re)].map((m) => m[1]!);
}

/** Every command and subcommand with its help, found by walking the CLI's own help (each help asked for once). */
async function walk(
  cli: Cli,
  prefix: string[] = [],
  text?: string,
): Promise<Map<string, Awaited<ReturnType<typeof help>>>> {
  const found = new Map<string, Awaited<ReturnType<typeof help>>>();
  for (const c of listedCommands(cli, text ?? (await help(cli, prefix)).out)) {
    const r = await help(cli, c.split(' '));
    found.set(c, r);
    for (const [sub, x] of await walk(cli, c.split(' '), r.out)) found.set(sub, x);
  }
  return found;
}

/** The names an environment section lists (before the posture line). */
function environmentSection(text: string): string[] {
  const at = text.indexOf('\nenvironment:');
  if (at < 0) return [];
  const section = text.slice(at).split('\n  (')[0]!;
  return Object.keys(ENVIRONMENT).filter((v) => new RegExp(`\\b${v}\\b`).test(section));
}

describe("every command's help tells only what it takes", () => {
  for (const cli of Object.keys(BIN) as Cli[]) {
    it(`${cli}: --help of every command exits 0, names the table's environment and its exit codes, and lists no root-key flag it does not read`, async () => {
      const commands = await walk(cli);
      // The table covers exactly the commands the CLI has, subcommands included.
      expect([...commands.keys()].sort()).toEqual(Object.keys(COMMAND_ENVIRONMENT[cli]).sort());
      for (const [command, r] of commands) {
        const what = `${cli} ${command} --help: ${r.out}${r.err}`;
        expect(r.code, what).toBe(0);
        expect(environmentSection(r.out).sort(), what).toEqual([...COMMAND_ENVIRONMENT[cli][command]!].sort());
        if (!COMMAND_ENVIRONMENT[cli][command]!.length) expect(r.out, what).toMatch(/environment: none read/);
        expect(r.out, what).toMatch(command === 'check' ? /exit codes of check \(the Nagios/ : /\nexit codes: 0 /);
        const flags = ALL_ROOT_KEY_FLAGS.filter((f) => new RegExp(`^\\s+${f}\\b`, 'm').test(r.out));
        expect(flags, what).toEqual(cli === 'trellis-root' ? (ROOT_KEY_FLAGS[command] ?? []) : []);
      }
    }, 300_000);
  }

  it('a root-key flag given to a command that opens no root key is refused as usage (exit 2), naming it once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-help-'));
    for (const [args, flag] of [
      [['status', '--pin-file', 'pin.txt'], 'pin-file'],
      [['status', '--shares-from', 'a.share'], 'shares-from'],
      [['status', '--pkcs11-module', 'x.so'], 'pkcs11-module'],
      [['check', '--shares-stdin'], 'shares-stdin'],
      [['version', '--pin-file', 'pin.txt'], 'pin-file'],
      [['crl', '--confirm-recipients'], 'confirm-recipients'],
    ] as const) {
      const r = await execa('node', [ROOT_BIN, ...args], {
        env: baseEnv({ TRELLIS_ALLOW_ONLINE: '1' }) as NodeJS.ProcessEnv,
        extendEnv: false,
        reject: false,
        stdin: 'ignore',
        cwd: dir,
      });
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`Unknown argument: ${flag}\n`));
      expect(r.stderr).toMatch(/--help lists the flags it takes/);
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a command that opens the root key still reads them: --shares-from is read (and a missing share refused)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-help-'));
    const r = await execa('node', [ROOT_BIN, 'crl', '--shares-from', path.join(dir, 'missing.share')], {
      env: baseEnv({ TRELLIS_ALLOW_ONLINE: '1' }) as NodeJS.ProcessEnv,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      cwd: dir,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/cannot read the identity share/);
  });
});
