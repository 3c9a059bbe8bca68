/**
 * Pull requests as an attacker writes them. Scope files are the pull
 * request's to edit, trellis.yaml only the custodian's: every attempt to run
 * a command, reach a host or route key material that the confirmed allow-list
 * does not hold is refused before anything runs. Each case checks the reason
 * and its exit code, the file and field named, that a canary command never ran, that
 * nothing readable by the attacker was written, and that the store is
 * byte-identical; then that `verify` on the same pull request names it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { newIdentity, tryDecrypt } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { expectRefused, type Reason } from './helpers/cli.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-pr-'));
const srv = path.join(root, 'srv');
/** Touched by the one reload command the custodian allowed: it must not run when a deploy is refused. */
const allowedRan = path.join(root, 'allowed-reload-ran');
let pristine: FakeMesh;
let attacker: { identity: string; recipient: string };
let edge: { identity: string; recipient: string };
// biome-ignore lint/suspicious/noExplicitAny: the allow-list as parsed YAML, edited freely by the attacks.
let allow: Record<string, any>;
let hostKey: string;
let attackerKey: string;

beforeAll(async () => {
  attacker = await newIdentity();
  edge = await newIdentity();
  const keys = path.join(root, 'keys');
  fs.mkdirSync(keys);
  for (const k of ['host', 'attacker'])
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(keys, k)]);
  const pub = (k: string) =>
    fs
      .readFileSync(path.join(keys, `${k}.pub`), 'utf8')
      .trim()
      .split(' ')
      .slice(0, 2)
      .join(' ');
  [hostKey, attackerKey] = [pub('host'), pub('attacker')];
  allow = {
    reload: { mark: `touch ${allowedRan}` },
    dir: { paths: [srv] },
    ssh: {
      'web-1': {
        host: '127.0.0.1',
        port: 22,
        user: 'trellis',
        hostKey,
        identityFile: path.join(keys, 'host'),
        paths: ['/srv/tls'],
      },
    },
    kubernetes: { 'prod-eu': { namespaces: ['mesh'] } },
    sealed: { 'edge-1': { recipient: edge.recipient } },
  };
  pristine = await FakeMesh.create({ scopes: { global: [], 'us-east-1': ['api', 'web'] } });
  await pristine.allow(allow);
});

/**
 * The attacker's pull request: `api` gets `target`; `web` keeps an allowed dir target whose reload marks that it ran.
 */
function scopeWith(m: FakeMesh, target: Record<string, unknown>): void {
  m.writeScope('us-east-1', [
    { web: { deploy: [{ type: 'dir', path: path.join(srv, 'web'), reload: 'mark' }] } },
    { api: { deploy: [target] } },
  ]);
}

/** A pull request that edits trellis.yaml's allow-list (which only the custodian may confirm). */
// biome-ignore lint/suspicious/noExplicitAny: the allow-list as parsed YAML, edited freely by the attacks.
function editAllowList(m: FakeMesh, edit: (a: Record<string, any>) => void): void {
  const config = parse(m.read('trellis.yaml'));
  edit(config.deploy);
  m.write('trellis.yaml', stringify(config));
}

interface Attack {
  /** The pull request: changes to the clone's files. `canary` is a path that exists only if the attacker's code ran. */
  pr: (m: FakeMesh, canary: string) => void;
  /** Bad input (exit 2) or a custody refusal (exit 3): the pull request is refused either way. */
  reason: Reason;
  /** What the refusal names: file, field and the value. */
  names: RegExp;
  /** What `verify` on the same pull request says (exit 2 when the scope file does not even parse). */
  verify: RegExp;
}

const attacks: [string, Attack][] = [
  [
    'an ssh host that is an option: -oProxyCommand=touch …',
    {
      pr: (m, c) => scopeWith(m, { type: 'ssh', host: `-oProxyCommand=touch ${c}`, path: '/srv/tls/api' }),
      reason: 'bad-scope',
      names: /scopes\/us-east-1.yaml: services.api.deploy\[0\].host: "-oProxyCommand=touch .*" is not valid/,
      verify: /services.api.deploy\[0\].host/,
    },
  ],
  [
    'an ssh host that is an option, added to the allow-list itself',
    {
      pr: (m, c) => {
        editAllowList(m, (a) => {
          a.ssh['web-1'].host = `-oProxyCommand=touch ${c}`;
        });
        scopeWith(m, { type: 'ssh', host: 'web-1', path: '/srv/tls/api' });
      },
      reason: 'bad-config',
      names: /trellis.yaml: deploy.ssh.web-1.host: "-oProxyCommand=touch .*" is not valid.*must not begin with "-"/s,
      verify: /deploy.ssh.web-1.host/,
    },
  ],
  [
    'an ssh user that is an option: -oX',
    {
      pr: (m) => scopeWith(m, { type: 'ssh', host: 'web-1', user: '-oX', path: '/srv/tls/api' }),
      reason: 'bad-scope',
      names: /services.api.deploy\[0\].user: "-oX" is not valid.*POSIX user name/s,
      verify: /services.api.deploy\[0\].user/,
    },
  ],
  [
    'a reload that names no allowed command',
    {
      pr: (m) => scopeWith(m, { type: 'dir', path: path.join(srv, 'api'), reload: 'pwn' }),
      reason: 'custody-not-allowed',
      names: /services.api.deploy\[0\].reload: reload "pwn" is not in the allow-list.*name one of: mark/s,
      verify: /services.api.deploy\[0\].reload: reload "pwn" is not in the allow-list/,
    },
  ],
  [
    'a reload that is a shell command instead of a name',
    {
      pr: (m, c) => scopeWith(m, { type: 'dir', path: path.join(srv, 'api'), reload: `touch ${c}` }),
      reason: 'bad-scope',
      names: /services.api.deploy\[0\].reload: "touch .*" is not valid.*entry of the deploy allow-list/s,
      verify: /services.api.deploy\[0\].reload/,
    },
  ],
  [
    'a dir target at /root/.ssh',
    {
      pr: (m) => scopeWith(m, { type: 'dir', path: '/root/.ssh' }),
      reason: 'custody-not-allowed',
      names: /services.api.deploy\[0\].path: path \/root\/.ssh is not at or under an allowed directory/,
      verify: /deploy\[0\].path: path \/root\/.ssh/,
    },
  ],
  [
    'a dir target at /etc/cron.d',
    {
      pr: (m) => scopeWith(m, { type: 'dir', path: '/etc/cron.d' }),
      reason: 'custody-not-allowed',
      names: /services.api.deploy\[0\].path: path \/etc\/cron.d is not at or under an allowed directory/,
      verify: /deploy\[0\].path: path \/etc\/cron.d/,
    },
  ],
  [
    'a dir target that climbs out of an allowed directory with ..',
    {
      pr: (m) => scopeWith(m, { type: 'dir', path: `${srv}/../../etc/cron.d` }),
      reason: 'bad-scope',
      names: /services.api.deploy\[0\].path: ".*\/\.\.\/\.\.\/etc\/cron.d" is not valid.*no "\.\."/s,
      verify: /deploy\[0\].path/,
    },
  ],
  [
    'a dir target beside an allowed directory that shares its prefix',
    {
      pr: (m) => scopeWith(m, { type: 'dir', path: `${srv}-evil` }),
      reason: 'custody-not-allowed',
      names: /services.api.deploy\[0\].path: path .*srv-evil is not at or under an allowed directory/,
      verify: /srv-evil is not at or under/,
    },
  ],
  [
    "an ssh path outside the host's allowed directories",
    {
      pr: (m) => scopeWith(m, { type: 'ssh', host: 'web-1', path: '/root/.ssh' }),
      reason: 'custody-not-allowed',
      names: /services.api.deploy\[0\].path: path \/root\/.ssh is not at or under a directory allowed on web-1/,
      verify: /allowed on web-1/,
    },
  ],
  [
    'an ssh host that is not in the allow-list',
    {
      pr: (m) => scopeWith(m, { type: 'ssh', host: 'attacker', path: '/srv/tls/api' }),
      reason: 'custody-not-allowed',
      names: /services.api.deploy\[0\].host: ssh host "attacker" is not in the allow-list/,
      verify: /ssh host "attacker"/,
    },
  ],
  [
    "a sealed recipient swapped to the attacker's in the scope file",
    {
      pr: (m) => scopeWith(m, { type: 'sealed', host: 'edge-1', recipient: attacker.recipient }),
      reason: 'custody-not-allowed',
      names:
        /services.api.deploy\[0\].recipient: recipient "age1.*" is custodian-owned.*deploy.sealed.edge-1.recipient/s,
      verify: /deploy\[0\].recipient: recipient "age1/,
    },
  ],
  [
    "a sealed recipient swapped to the attacker's in the allow-list",
    {
      pr: (m) => {
        editAllowList(m, (a) => {
          a.sealed['edge-1'].recipient = attacker.recipient;
        });
        scopeWith(m, { type: 'sealed', host: 'edge-1' });
      },
      reason: 'custody-allow-list-unconfirmed',
      names: new RegExp(
        /trellis.yaml: deploy: the deploy allow-list differs .*deploy.sealed.edge-1 changed: /.source +
          /.*age1.*→.*age1.*trellis-root confirm/.source,
        's',
      ),
      verify: /deploy.sealed.edge-1 changed/,
    },
  ],
  [
    "a sealed host of the attacker's, added to the allow-list",
    {
      pr: (m) => {
        editAllowList(m, (a) => {
          a.sealed.mine = { recipient: attacker.recipient };
        });
        scopeWith(m, { type: 'sealed', host: 'mine' });
      },
      reason: 'custody-allow-list-unconfirmed',
      names: /the deploy allow-list differs .*deploy.sealed.mine added/s,
      verify: /deploy.sealed.mine added/,
    },
  ],
  [
    'an identityFile swapped in the scope file',
    {
      pr: (m) =>
        scopeWith(m, {
          type: 'ssh',
          host: 'web-1',
          identityFile: '/home/runner/.ssh/id_ed25519',
          path: '/srv/tls/api',
        }),
      reason: 'custody-not-allowed',
      names:
        /services.api.deploy\[0\].identityFile: identityFile "\/home\/runner\/.ssh\/id_ed25519" is custodian-owned/,
      verify: /deploy\[0\].identityFile/,
    },
  ],
  [
    'an identityFile swapped in the allow-list',
    {
      pr: (m) => {
        editAllowList(m, (a) => {
          a.ssh['web-1'].identityFile = '/home/runner/.ssh/id_ed25519';
        });
        scopeWith(m, { type: 'ssh', host: 'web-1', path: '/srv/tls/api' });
      },
      reason: 'custody-allow-list-unconfirmed',
      names: /the deploy allow-list differs .*deploy.ssh.web-1 changed/s,
      verify: /deploy.ssh.web-1 changed: .*id_ed25519/,
    },
  ],
  [
    'a hostKey in the scope file',
    {
      pr: (m) => scopeWith(m, { type: 'ssh', host: 'web-1', hostKey: attackerKey, path: '/srv/tls/api' }),
      reason: 'custody-not-allowed',
      names: /services.api.deploy\[0\].hostKey: hostKey "ssh-ed25519 .*" is custodian-owned.*deploy.ssh.web-1.hostKey/s,
      verify: /deploy\[0\].hostKey/,
    },
  ],
  [
    'a kubectl context that is not allowed',
    {
      pr: (m) => scopeWith(m, { type: 'kubernetes', name: 'api-tls', namespace: 'mesh', context: 'attacker-cluster' }),
      reason: 'custody-not-allowed',
      names: new RegExp(
        /services.api.deploy\[0\].context: kubectl context "attacker-cluster" is not in the /.source +
          /allow-list.*name one of: prod-eu/.source,
        's',
      ),
      verify: /context "attacker-cluster"/,
    },
  ],
  [
    'a namespace not allowed in an allowed context',
    {
      pr: (m) => scopeWith(m, { type: 'kubernetes', name: 'api-tls', namespace: 'kube-system', context: 'prod-eu' }),
      reason: 'custody-not-allowed',
      names: /services.api.deploy\[0\].namespace: namespace "kube-system" is not allowed in context prod-eu/,
      verify: /namespace "kube-system"/,
    },
  ],
  [
    'a kubectl context that is an option',
    {
      pr: (m, c) =>
        scopeWith(m, { type: 'kubernetes', name: 'api-tls', namespace: 'mesh', context: `--kubeconfig=${c}` }),
      reason: 'bad-scope',
      names: /services.api.deploy\[0\].context: "--kubeconfig=.*" is not valid/,
      verify: /deploy\[0\].context/,
    },
  ],
  [
    "a reload command added to the allow-list without the custodian's confirmation",
    {
      pr: (m, c) => {
        editAllowList(m, (a) => {
          a.reload.pwn = `touch ${c}`;
        });
        scopeWith(m, { type: 'dir', path: path.join(srv, 'api'), reload: 'pwn' });
      },
      reason: 'custody-allow-list-unconfirmed',
      names: new RegExp(
        /trellis.yaml: deploy: the deploy allow-list differs from the one the custodian last confirmed: /.source +
          /deploy.reload.pwn added: "touch .*".*trellis-root confirm/.source,
        's',
      ),
      verify: /deploy.reload.pwn added: "touch .*", not confirmed by the custodian/,
    },
  ],
  [
    "an allowed directory widened to /etc without the custodian's confirmation",
    {
      pr: (m) => {
        editAllowList(m, (a) => {
          a.dir.paths = ['/etc'];
        });
        scopeWith(m, { type: 'dir', path: '/etc/cron.d' });
      },
      reason: 'custody-allow-list-unconfirmed',
      names: /deploy.dir.paths \/etc added; deploy.dir.paths .*srv removed/,
      verify: /deploy.dir.paths \/etc added/,
    },
  ],
];

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

describe("an attacker's pull request is refused, and nothing runs or is encrypted to the attacker", () => {
  it.each(attacks)('%s', async (_, a) => {
    const m = pristine.clone();
    const canary = path.join(root, `pwned-${Math.random().toString(36).slice(2)}`);
    a.pr(m, canary);
    const before = m.snapshot();
    const out = fs.mkdtempSync(path.join(root, 'out-'));
    const d = await m.ci(['deploy', '--sealed-out', path.join(out, 'sealed'), '--manifests', path.join(out, 'k8s')]);
    expectRefused(d, a.reason);
    expect(d.stderr).toMatch(a.names);
    expect(d.stderr).toMatch(/→ /);
    expect(d.stderr).not.toMatch(/\n\s+at .*\.js:\d+/);
    expect(`${d.stdout}${d.stderr}`).not.toMatch(/AGE-SECRET-KEY/);
    expect(fs.existsSync(canary)).toBe(false);
    expect(fs.existsSync(allowedRan)).toBe(false);
    expect(fs.existsSync(path.join(srv, 'web'))).toBe(false);
    const written = [...filesUnder(out), ...filesUnder(srv)];
    for (const f of written)
      expect((await tryDecrypt([attacker.identity], fs.readFileSync(f, 'utf8'))).ok, f).toBe(false);
    expect(written).toEqual([]);
    expect(m.snapshot()).toEqual(before);

    const v = await m.ci(['verify']);
    // Input verify cannot parse is refused with the same reason; a custody refusal is a finding of verify (exit 1).
    if (d.code === 2) expectRefused(v, a.reason);
    else expect(v.code).toBe(1);
    expect(v.stdout + v.stderr).toMatch(a.verify);
    expect(fs.existsSync(canary)).toBe(false);
  });
});

describe('the same targets, confirmed by the custodian, deploy', () => {
  it('the allowed dir target and its allowed reload run once the allow-list is confirmed', async () => {
    const m = pristine.clone();
    scopeWith(m, { type: 'sealed', host: 'edge-1' });
    const out = fs.mkdtempSync(path.join(root, 'ok-'));
    const d = await m.ci(['deploy', '--sealed-out', out]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(fs.existsSync(allowedRan)).toBe(true);
    fs.rmSync(allowedRan);
    fs.rmSync(path.join(srv, 'web'), { recursive: true });
    // The sealed release went to the recipient trellis.yaml holds, and only to it.
    const sealed = fs.readFileSync(path.join(out, 'us-east-1', 'api', 'edge-1.age'), 'utf8');
    expect((await tryDecrypt([edge.identity], sealed)).ok).toBe(true);
    expect((await tryDecrypt([attacker.identity], sealed)).ok).toBe(false);
  });
  it("a custodian's confirmation (trellis-root confirm) makes an edited allow-list count, and verify is clean of it again", async () => {
    const m = pristine.clone();
    editAllowList(m, (a) => {
      a.reload.second = 'true';
    });
    expect((await m.ci(['verify'])).stdout).toMatch(/deploy.reload.second added: "true", not confirmed/);
    const dry = await m.root(['confirm', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(
      new RegExp(
        /would confirm 1 change\(s\) to the deploy allow-list and signing /.source +
          /policy:\n {2}deploy.reload.second added: "true"/.source,
      ),
    );
    const noRoot = await m.root(['confirm'], { TRELLIS_ROOT_IDENTITY_FILE: undefined });
    expectRefused(noRoot, 'custody-missing-identity');
    const c = await m.root(['confirm']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/confirmed 1 change\(s\) .*\n {2}deploy.reload.second added/);
    const entry = JSON.parse(m.read('bundles/root/ledger.jsonl').trim().split('\n').at(-1)!);
    expect(entry).toMatchObject({
      op: 'confirm-allow-list',
      details: {
        allowList: { reload: { second: 'true' } },
        allowListDigest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      },
    });
    const v = await m.ci(['verify']);
    expect(v.stdout).not.toMatch(/allow-list/);
    expect((await m.root(['confirm'])).stdout).toMatch(/nothing to record/);
  });
});

/** A fake kubectl on PATH: records its arguments and environment, as the real one would receive them. */
function fakeKubectl(dir: string): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(
    path.join(bin, 'kubectl'),
    `#!/bin/sh\nprintf '%s\\n' "$@" > ${dir}/kubectl-args\nenv > ${dir}/kubectl-env\necho applied\n`,
    { mode: 0o755 },
  );
  return bin;
}

describe('what deploy executes cannot reach the CI identity', () => {
  it.each([
    ['the CI identity given as a variable', 'variable'],
    ['the CI identity given as a file', 'file'],
  ])(
    '%s: the reload and kubectl see no identity in their environment, though deploy opened it to seal',
    async (_, how) => {
      const m = pristine.clone();
      const dir = fs.mkdtempSync(path.join(root, 'env-'));
      const dump = path.join(dir, 'reload-env');
      editAllowList(m, (a) => {
        a.reload.dump = `env > ${dump}; cat "$TRELLIS_CI_IDENTITY_FILE" >> ${dump} 2>/dev/null; true`;
      });
      expect((await m.root(['confirm'])).code).toBe(0);
      m.writeScope('us-east-1', [
        {
          web: {
            deploy: [
              { type: 'dir', path: path.join(srv, `env-${how}`), reload: 'dump' },
              { type: 'kubernetes', name: 'web-tls', namespace: 'mesh', context: 'prod-eu' },
            ],
          },
        },
        { api: { deploy: [{ type: 'sealed', host: 'edge-1' }] } },
      ]);
      const identity = fs.readFileSync(m.ciIdentityFile, 'utf8');
      const env = how === 'variable' ? { TRELLIS_CI_IDENTITY: identity, TRELLIS_CI_IDENTITY_FILE: undefined } : {};
      const d = await m.ci(['deploy', '--sealed-out', path.join(dir, 'sealed'), '--manifests', path.join(dir, 'k8s')], {
        ...env,
        PATH: `${fakeKubectl(dir)}:${process.env.PATH}`,
      });
      expect(d.code, d.stdout + d.stderr).toBe(0);
      expect(d.stdout).toMatch(/^sealed /m);
      for (const f of [dump, path.join(dir, 'kubectl-env')]) {
        const seen = fs.readFileSync(f, 'utf8');
        expect(seen).toMatch(/^PATH=/m);
        expect(seen).not.toMatch(/AGE-SECRET-KEY|TRELLIS_/);
      }
      // kubectl got every value as --flag=value: none can be read as another option.
      expect(fs.readFileSync(path.join(dir, 'kubectl-args'), 'utf8').split('\n')).toEqual([
        '--context=prod-eu',
        '--namespace=mesh',
        'apply',
        `--filename=${path.join(dir, 'k8s', 'us-east-1', 'web', 'mesh', 'web-tls.yaml')}`,
        '',
      ]);
    },
  );
  it('split in two CI steps, the identity is never where a command runs: --type sealed seals and executes nothing; the rest needs no identity', async () => {
    const m = pristine.clone();
    scopeWith(m, { type: 'sealed', host: 'edge-1' });
    const out = fs.mkdtempSync(path.join(root, 'split-'));
    const seal = await m.ci(['deploy', '--type', 'sealed', '--sealed-out', out]);
    expect(seal.code, seal.stdout + seal.stderr).toBe(0);
    expect(seal.stdout).toMatch(/^1 of 1 target\(s\) done/m);
    expect(
      (await tryDecrypt([edge.identity], fs.readFileSync(path.join(out, 'us-east-1', 'api', 'edge-1.age'), 'utf8'))).ok,
    ).toBe(true);
    expect(fs.existsSync(allowedRan)).toBe(false);
    const rest = await m.ci(['deploy', '--type', 'dir', 'ssh', 'kubernetes'], { TRELLIS_CI_IDENTITY_FILE: undefined });
    expect(rest.code, rest.stdout + rest.stderr).toBe(0);
    expect(rest.stdout).toMatch(/^installed .*dir:.*srv\/web/m);
    expect(rest.stdout).not.toMatch(/sealed/);
    expect(fs.existsSync(allowedRan)).toBe(true);
    fs.rmSync(allowedRan);
    fs.rmSync(path.join(srv, 'web'), { recursive: true });
  });
  it('a deploy that must seal opens the CI identity before anything runs: without it, no reload ran', async () => {
    const m = pristine.clone();
    scopeWith(m, { type: 'sealed', host: 'edge-1' });
    const before = m.snapshot();
    const d = await m.ci(['deploy', '--sealed-out', path.join(root, 'no-identity')], {
      TRELLIS_CI_IDENTITY_FILE: undefined,
    });
    expectRefused(d, 'custody-missing-identity');
    expect(d.stderr, 'names the variable').toMatch(/→ set TRELLIS_CI_IDENTITY_FILE/);
    expect(fs.existsSync(allowedRan)).toBe(false);
    expect(fs.existsSync(path.join(srv, 'web'))).toBe(false);
    expect(m.snapshot()).toEqual(before);
  });
});
