/**
 * Help never touches a key: `trellis-root --help`, every subcommand's `--help`
 * and `version` answer on a machine whose network is up, while every other
 * posture refusal stays (CI=true, a CI identity beside it, any real command online).
 */
import { describe, expect, it } from 'vitest';
import { baseEnv, ROOT_BIN, trellisCi } from './helpers/cli.js';
import { execa } from 'execa';

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
  const r = await execa('node', [ROOT_BIN, ...args], {
    env: baseEnv(env) as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  });
  return { code: r.exitCode, out: `${r.stdout}\n${r.stderr}` };
}

/** A network interface other than loopback is up: the test is only meaningful then. */
const online = (await root(['status'])).out.includes('network interface(s) up');

describe('trellis-root help on a connected machine', () => {
  it.skipIf(!online)("--help, every subcommand's --help and version exit 0", async () => {
    for (const args of [['--help'], ['version'], ...COMMANDS.map((c) => [c, '--help'])]) {
      const r = await root(args);
      expect(r.code, `${args.join(' ')}: ${r.out}`).toBe(0);
      expect(r.out).not.toMatch(/network interface\(s\) up/);
    }
  });

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

  it('renew --help names the identity it reads; plan --help describes its flags; no literal $0 in trellis-root rotate --help', async () => {
    expect((await trellisCi(['renew', '--help'], { env: { CI: 'true' } })).stdout).toMatch(
      /TRELLIS_CI_IDENTITY_FILE \(or TRELLIS_CI_IDENTITY\)/,
    );
    const plan = (await trellisCi(['plan', '--help'], { env: { CI: 'true' } })).stdout;
    expect(plan).toMatch(/--scope\s+only this scope/);
    expect(plan).toMatch(/--json\s+machine-readable output/);
    expect((await root(['rotate', '--help'])).out).not.toMatch(/\$0/);
    expect((await root(['--help'])).out).toMatch(/TRELLIS_ROOT_IDENTITY_FILE/);
  });
});
