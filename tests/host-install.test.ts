/**
 * docs/install-host.md as a host operator runs it: every `sh` block of the
 * guide (but the one that needs systemd as PID 1) in a scratch root, the
 * units checked by `systemd-analyze verify --root` and scored by `security`,
 * then a sealed release from a real `trellis-ci deploy` delivered into the
 * inbox and installed by running the .service's ExecStart as systemd would
 * (its Environment=, EnvironmentFile=, LoadCredential= and specifiers; the
 * sandbox itself needs a live systemd and is not exercised here). Paths under
 * /usr/local, /etc/trellis and /var/lib/trellis-agent are taken inside the
 * scratch root, as a RootDirectory= would.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { REPO, tool } from './helpers/cli.js';
import { agentRelease } from './helpers/agent-release.js';

const GUIDE = fs.readFileSync(path.join(REPO, 'docs/install-host.md'), 'utf8');
const UNITS = path.join(REPO, 'packaging/systemd');
const blocks = [...GUIDE.matchAll(/(<!-- doc-test: illustrative[^>]*-->\n)?```sh\n([\s\S]*?)```/g)]
  .filter((m) => !m[1])
  .map((m) => m[2]!);
const [defaults, ...steps] = blocks;
const delivery = steps.pop()!;

let work: string;
let root: string;
let mesh: FakeMesh;
let sealed: string;
let setup: { code: number; out: string };
let env: Record<string, string>;

const sh = async (script: string, extra: Record<string, string> = {}) => {
  const r = await execa('bash', ['-eu', '-o', 'pipefail', '-c', `${defaults}\n${script}`], {
    reject: false,
    all: true,
    env: { ...env, ...extra },
    extendEnv: false,
    stdin: 'ignore',
  });
  return { code: r.exitCode ?? -1, out: String(r.all) };
};

/**
 * What systemd would run for trellis-agent@<instance>.service: the ExecStart words and the environment, inside the
 * scratch root.
 */
function serviceCommand(instance: string, credentials: string): { argv: string[]; env: Record<string, string> } {
  const unit = fs.readFileSync(path.join(root, 'etc/systemd/system/trellis-agent@.service'), 'utf8');
  const service = unit.split(/^\[Service\]$/m)[1]!.split(/^\[/m)[0]!;
  const lines = service.split('\n').filter((l) => l && !l.startsWith('#'));
  const spec = (s: string) => s.replaceAll('%i', instance).replaceAll('%d', credentials);
  const inRoot = (p: string) =>
    /^\/(usr\/local|etc\/trellis-agent|etc\/trellis|var\/lib\/trellis-agent)(\/|$)/.test(p) ? path.join(root, p) : p;
  const vars: Record<string, string> = {};
  for (const l of lines.filter((x) => x.startsWith('Environment='))) {
    const [k, ...v] = spec(l.slice('Environment='.length)).split('=');
    vars[k!] = v.join('=');
  }
  // EnvironmentFile= settings override Environment= ones.
  for (const l of lines.filter((x) => x.startsWith('EnvironmentFile='))) {
    const f = inRoot(spec(l.slice('EnvironmentFile='.length).replace(/^-/, '')));
    for (const e of fs
      .readFileSync(f, 'utf8')
      .split('\n')
      .filter((x) => x.includes('=')))
      vars[e.slice(0, e.indexOf('='))] = e.slice(e.indexOf('=') + 1).trim();
  }
  for (const l of lines.filter((x) => x.startsWith('LoadCredential='))) {
    const [name, from] = spec(l.slice('LoadCredential='.length)).split(':');
    fs.copyFileSync(inRoot(from!), path.join(credentials, name!));
    fs.chmodSync(path.join(credentials, name!), 0o400);
  }
  const exec = spec(lines.find((x) => x.startsWith('ExecStart='))!.slice('ExecStart='.length));
  // ${VAR} is one word, however many spaces its value holds.
  const argv = exec
    .split(/\s+/)
    .map((w) => w.replace(/^\$\{(\w+)\}$/, (_m, k: string) => vars[k] ?? ''))
    .map(inRoot);
  return { argv, env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...vars } };
}

async function runService(instance: string) {
  const creds = fs.mkdtempSync(path.join(work, 'credentials-'));
  const { argv, env: e } = serviceCommand(instance, creds);
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, env: e, extendEnv: false, stdin: 'ignore' });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), argv };
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-host-'));
  root = path.join(work, 'root');
  // A real host has systemd's own units (sysinit.target, paths.target, ...); a scratch root gets a copy.
  fs.mkdirSync(path.join(root, 'usr/lib/systemd'), { recursive: true });
  fs.cpSync('/usr/lib/systemd/system', path.join(root, 'usr/lib/systemd/system'), {
    recursive: true,
    verbatimSymlinks: true,
  });
  mesh = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api', 'web'] } });
  env = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME!,
    ROOT: root,
    AGENT: agentRelease(path.join(work, 'release')),
    UNITS,
    ROOTS: mesh.path('bundles/root/roots.pem'),
    SERVICE: 'api',
    EXPECT: 'us-east-1/api',
    RELOAD: `touch ${path.join(work, 'reloaded')}`,
  };
  setup = await sh(steps.join('\n'));
  // The host's recipient, printed by step 2, goes into the mesh's allow-list; CI seals the service's release to it.
  const recipient = setup.out.match(/^age1[0-9a-z]+$/m)?.[0];
  expect(recipient, setup.out).toBeDefined();
  mesh.writeScope(
    'us-east-1',
    ['api', 'web'].map((s) => ({ [s]: { deploy: [{ type: 'sealed', host: 'web-1' }] } })),
  );
  await mesh.allow({ sealed: { 'web-1': { recipient } } });
  expect((await mesh.ci(['renew'])).code).toBe(0);
  sealed = path.join(work, 'sealed');
  const d = await mesh.ci(['deploy', '--sealed-out', sealed]);
  expect(d.code, d.stdout + d.stderr).toBe(0);
});

describe('the host install guide, run', () => {
  it('installs the agent, its identity and the units; systemd-analyze verify finds nothing to say', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    expect(setup.code, setup.out).toBe(0);
    expect(fs.statSync(path.join(root, 'etc/trellis-agent/identity')).mode & 0o777).toBe(0o600);
    // Everything the setup printed is the recipient and the security score: verify itself said nothing.
    const rest = setup.out
      .split('\n')
      .filter((l) => l && !/^age1[0-9a-z]+$/.test(l) && !/Overall exposure level/.test(l));
    expect(rest).toEqual([]);
    const score = setup.out.match(/Overall exposure level for trellis-agent@api\.service: ([\d.]+)/);
    expect(score, setup.out).not.toBeNull();
    expect(Number(score![1])).toBeLessThanOrEqual(2);
    console.log(
      `systemd-analyze security: trellis-agent@api.service exposure ${score![1]} (0 = locked down, 10 = unconfined)`,
    );
  });

  it("a delivered bundle is installed by the .service's own command line: validated, atomic, reloaded; the same bundle again changes nothing", async () => {
    const landed = await sh(delivery, { BUNDLE: path.join(sealed, 'us-east-1/api/web-1.age') });
    expect(landed.code, landed.out).toBe(0);
    const r = await runService('api');
    expect(r.argv.slice(0, 2)).toEqual([path.join(root, 'usr/local/bin/trellis-agent'), 'install']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^us-east-1\/api .*installed/m);
    const current = path.join(root, 'etc/trellis/api/current');
    expect(fs.statSync(path.join(current, 'key.pem')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(work, 'reloaded'))).toBe(true);
    const v = await tool('openssl', [
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      path.join(current, 'trust.openssl.pem'),
      '-crl_check',
      '-CRLfile',
      path.join(current, 'crl.pem'),
      path.join(current, 'cert.pem'),
    ]);
    expect(v.code, v.stderr).toBe(0);
    expect(fs.readFileSync(path.join(current, 'cert.pem'), 'utf8')).toBe(
      fs.readFileSync(mesh.out('us-east-1', 'api', 'cert.pem'), 'utf8'),
    );

    fs.rmSync(path.join(work, 'reloaded'));
    const again = await runService('api');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/unchanged/);
    expect(fs.existsSync(path.join(work, 'reloaded'))).toBe(false);
  });

  it("refuses a bundle for another service landing in this service's inbox (exit 2), and the installed release stays", async () => {
    const before = fs.readlinkSync(path.join(root, 'etc/trellis/api/current'));
    expect((await sh(delivery, { BUNDLE: path.join(sealed, 'us-east-1/web/web-1.age') })).code).toBe(0);
    const r = await runService('api');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/this bundle is for us-east-1\/web, not us-east-1\/api/);
    expect(fs.readlinkSync(path.join(root, 'etc/trellis/api/current'))).toBe(before);
  });

  it('fails closed: a service whose env file names no EXPECT installs nothing', async () => {
    fs.writeFileSync(path.join(root, 'etc/trellis-agent/web.env'), 'RELEASE_DIR=/etc/trellis/web\n');
    expect((await sh(delivery, { SERVICE: 'web', BUNDLE: path.join(sealed, 'us-east-1/web/web-1.age') })).code).toBe(0);
    const r = await runService('web');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/this bundle is for us-east-1\/web, not SCOPE-NOT-SET\/web/);
    expect(fs.existsSync(path.join(root, 'etc/trellis/web/current'))).toBe(false);
  });

  it.each([
    [
      'a mistyped hardening key',
      (u: string) => u.replace('PrivateNetwork=yes', 'PrivateNetwrk=yes'),
      /Unknown key 'PrivateNetwrk'/,
    ],
    [
      'a command that does not exist',
      (u: string) => u.replace('/usr/local/bin/trellis-agent install', '/usr/local/bin/trellis-agnt install'),
      /trellis-agnt is not executable/,
    ],
  ])('systemd-analyze verify speaks up about %s', async (_why, damage, says) => {
    const other = path.join(work, `broken-${Math.random().toString(36).slice(2)}`);
    fs.cpSync(root, other, { recursive: true, verbatimSymlinks: true });
    const unit = path.join(other, 'etc/systemd/system/trellis-agent@.service');
    fs.writeFileSync(unit, damage(fs.readFileSync(unit, 'utf8')));
    const r = await execa('systemd-analyze', ['verify', `--root=${other}`, 'trellis-agent@api.service'], {
      reject: false,
      all: true,
    });
    expect(String(r.all)).toMatch(says);
  });
});
