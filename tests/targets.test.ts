/**
 * Each delivery target's guarantees: the dir installer (atomic, validated,
 * rolled back), ssh against a real sshd with a pinned host key, sealed
 * bundles opened by trellis-agent, Kubernetes manifests, and the canary.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { newIdentity } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { REPO, baseEnv, AGENT_BIN } from './helpers/cli.js';
import { freePort, nginxFor, waitForPort, type Terminator } from './helpers/servers.js';
import { stamp } from './helpers/clock.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-targets-'));
let pristine: FakeMesh;

beforeAll(async () => {
  pristine = await FakeMesh.create({ scopes: { global: [], 'us-east-1': ['api', 'web'] } });
});

/** A copy of the pristine mesh whose service deploys to `deploy`, selecting from the confirmed allow-list `allow`. */
async function withTargets(
  deploy: Record<string, unknown>[],
  allow: Record<string, unknown> = {},
  service = 'api',
): Promise<FakeMesh> {
  const m = pristine.clone();
  m.writeScope('us-east-1', [{ [service]: { deploy } }, ...(service === 'api' ? ['web'] : ['api'])]);
  await m.allow({ dir: { paths: [root] }, ...allow });
  return m;
}

const current = (dir: string) => fs.readlinkSync(path.join(dir, 'current'));

describe('the recovery evidence names the host of a dir target', () => {
  it("a signed deploy records the runner's host name; recover's hosts column reads it as dir:HOST:/path, and says so when no signed deploy did", async () => {
    const dir = path.join(root, 'dir-evidence');
    const m = await withTargets([{ type: 'dir', path: dir }]);
    const unsigned = m.clone();
    expect((await m.ci(['deploy'])).code).toBe(0);
    const entry = m
      .read('bundles/us-east-1/ledger.jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.op === 'deploy')
      .at(-1);
    expect(entry.details.targets).toEqual([
      expect.objectContaining({ service: 'api', target: `dir:${dir}`, host: os.hostname(), status: 'installed' }),
    ]);
    const hostsOf = async (x: FakeMesh) => {
      const r = await x.root(['recover', 'us-east-1', '--reason', 'keyCompromise']);
      expect(r.code, r.stderr).toBe(0);
      const evidence = x.path('bundles/us-east-1/evidence');
      const e = JSON.parse(
        fs.readFileSync(
          path.join(evidence, fs.readdirSync(evidence).find((f) => f.endsWith('recovery.json'))!),
          'utf8',
        ),
      );
      return { out: r.stdout, api: e.affected.find((a: { service: string }) => a.service === 'api').hosts };
    };
    const signed = await hostsOf(m);
    expect(signed.api).toEqual([`dir:${os.hostname()}:${dir}`]);
    expect(signed.out).toContain(`hosts: dir:${os.hostname()}:${dir}`);
    // Deployed without the CI identity: nothing signed says which machine holds the directory.
    expect((await unsigned.ci(['deploy'], { TRELLIS_CI_IDENTITY_FILE: undefined })).code).toBe(0);
    expect((await hostsOf(unsigned)).api).toEqual([`dir:${dir} (no signed deploy recorded its host)`]);
  });
});

describe('every deploy on the record: the identity step signs what the keyless step ships', () => {
  const NO_ID = { TRELLIS_CI_IDENTITY_FILE: undefined };
  const records = (m: FakeMesh) =>
    m
      .read('bundles/us-east-1/ledger.jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.op === 'deploy-record');

  it("deploy --record-only signs each target's release digest and ships nothing; deploy --recorded without the identity ships exactly that, once", async () => {
    const dir = path.join(root, 'dir-recorded');
    const m = await withTargets([{ type: 'dir', path: dir }]);
    const rec = await m.ci(['deploy', '--type', 'dir', '--record-only']);
    expect(rec.code, rec.stderr).toBe(0);
    expect(fs.existsSync(dir)).toBe(false);
    const [entry] = records(m);
    expect(entry.signature).toEqual(expect.any(String));
    expect(entry.details.targets).toEqual([
      {
        service: 'api',
        target: `dir:${dir}`,
        release: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
        trust: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
        host: os.hostname(),
      },
    ]);
    expect(rec.stdout).toContain(`recorded  us-east-1/api`);
    // Nothing new: no second entry.
    const again = await m.ci(['deploy', '--type', 'dir', '--record-only']);
    expect(again.stdout).toContain('every release is already on the record');
    expect(records(m)).toHaveLength(1);
    const before = m.read('bundles/us-east-1/ledger.jsonl');
    const ship = await m.ci(['deploy', '--type', 'dir', '--recorded'], NO_ID);
    expect(ship.code, ship.stdout + ship.stderr).toBe(0);
    expect(ship.stdout).toMatch(/^installed +us-east-1\/api/m);
    expect(ship.stdout).toContain('deploy on the record: each release shipped is the one its scope ledger recorded');
    // The keyless step writes nothing into the repository: its outcomes are its output.
    expect(m.read('bundles/us-east-1/ledger.jsonl')).toBe(before);
    expect(fs.readFileSync(path.join(dir, 'current', 'cert.pem'), 'utf8')).toBe(
      fs.readFileSync(m.out('us-east-1', 'api', 'cert.pem'), 'utf8'),
    );
    // A later step without the leaf (a publish job) ships the trust part alone: the record's trust digest covers it.
    fs.rmSync(m.path('.trellis/out'), { recursive: true });
    const trustOnly = await m.ci(['deploy', '--type', 'dir', '--recorded'], NO_ID);
    expect(trustOnly.code, trustOnly.stdout).toBe(0);
  });

  it('a release the ledger did not record is not shipped (exit 1, nothing installed): a new leaf, or an entry added without a signature', async () => {
    const dir = path.join(root, 'dir-unrecorded');
    const m = await withTargets([{ type: 'dir', path: dir }]);
    expect((await m.ci(['deploy', '--type', 'dir', '--record-only'])).code).toBe(0);
    // A new leaf after the record: its release is not the one signed.
    expect((await m.ci(['renew', '--force', '--scope', 'us-east-1'])).code).toBe(0);
    const r = await m.ci(['deploy', '--type', 'dir', '--recorded'], NO_ID);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(
        /^failed +us-east-1\/api .*not on the record: the release is sha256:[0-9a-f]{64}, /.source +
          /bundles\/us-east-1\/ledger\.jsonl recorded sha256:/.source,
        'm',
      ),
    );
    expect(fs.existsSync(path.join(dir, 'current'))).toBe(false);
    // A pull request appends the digest it wants, unsigned: the ledger does not count it, so it ships nothing either.
    const ledger = m.read('bundles/us-east-1/ledger.jsonl');
    const last = JSON.parse(ledger.trim().split('\n').at(-1)!);
    const { releaseDigest, releaseFor } = await import('@trellis/core');
    const { loadMesh } = await import('@trellis/core/store');
    const { openStore } = await import('@trellis/core/shell');
    const cert = fs.readFileSync(m.out('us-east-1', 'api', 'cert.pem'), 'utf8');
    const want = releaseDigest(
      releaseFor(loadMesh(openStore(m.dir)), 'us-east-1', {
        cert,
        key: fs.readFileSync(m.out('us-east-1', 'api', 'key.pem'), 'utf8'),
        chain: fs.readFileSync(m.out('us-east-1', 'api', 'chain.pem'), 'utf8'),
      }),
    );
    expect(r.stdout).toContain(`the release is ${want}`);
    const forged = {
      seq: last.seq + 1,
      at: last.at,
      op: 'deploy-record',
      actor: 'pr',
      details: { targets: [{ service: 'api', target: `dir:${dir}`, release: want }] },
      created: [],
      prev: last.hash,
      hash: 'x'.repeat(64),
    };
    m.write('bundles/us-east-1/ledger.jsonl', `${ledger}${JSON.stringify(forged)}\n`);
    const f = await m.ci(['deploy', '--type', 'dir', '--recorded'], NO_ID);
    expect(f.code).toBe(1);
    expect(f.stdout).toMatch(/not on the record/);
    expect(fs.existsSync(path.join(dir, 'current'))).toBe(false);
  });

  it('--record-only needs the CI identity (exit 3) and refuses the flags of a delivery (exit 2)', async () => {
    const m = await withTargets([{ type: 'dir', path: path.join(root, 'dir-record-refused') }]);
    const before = m.read('bundles/us-east-1/ledger.jsonl');
    const none = await m.ci(['deploy', '--record-only'], NO_ID);
    expect(none.code, none.stderr).toBe(3);
    const both = await m.ci(['deploy', '--record-only', '--recorded']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--record-only delivers nothing, so --recorded has nothing to act on/);
    expect(m.read('bundles/us-east-1/ledger.jsonl')).toBe(before);
  });
});

describe('dir target', () => {
  it('installs a versioned release by an atomic symlink, key 0600, and reloads only when something changed', async () => {
    const dir = path.join(root, 'dir-basic');
    const count = path.join(root, 'reloads');
    const m = await withTargets([{ type: 'dir', path: dir, reload: 'count' }], {
      reload: { count: `echo x >> ${count}` },
    });
    const d1 = await m.ci(['deploy']);
    expect(d1.code, d1.stdout).toBe(0);
    expect(current(dir)).toMatch(/^releases\//);
    expect(fs.statSync(path.join(dir, 'current', 'key.pem')).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(dir, 'current', 'cert.pem'), 'utf8')).toBe(
      fs.readFileSync(m.out('us-east-1', 'api', 'cert.pem'), 'utf8'),
    );
    const d2 = await m.ci(['deploy']);
    expect(d2.stdout).toMatch(/^unchanged/m);
    expect(fs.readFileSync(count, 'utf8').trim().split('\n')).toHaveLength(1);
    const first = current(dir);
    expect((await m.ci(['renew', '--force', '--scope', 'us-east-1'])).code).toBe(0);
    expect((await m.ci(['deploy'])).stdout).toMatch(/^installed/m);
    expect(fs.readlinkSync(path.join(dir, 'previous'))).toBe(first);
    expect(fs.readFileSync(count, 'utf8').trim().split('\n')).toHaveLength(2);
    expect(m.read('bundles/us-east-1/ledger.jsonl').trim().split('\n').at(-1)).toContain('"op":"deploy"');
  });
  it('a release whose key does not match its certificate never replaces the good one', async () => {
    const dir = path.join(root, 'dir-bad');
    const m = await withTargets([{ type: 'dir', path: dir }]);
    expect((await m.ci(['deploy'])).code).toBe(0);
    const good = current(dir);
    expect((await m.ci(['renew', '--force', '--scope', 'us-east-1'])).code).toBe(0);
    fs.copyFileSync(m.out('us-east-1', 'web', 'key.pem'), m.out('us-east-1', 'api', 'key.pem'));
    // deploy refuses it before any target sees it...
    const d = await m.ci(['deploy']);
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/^failed .*us-east-1\/api\/key\.pem is not the key of the certificate beside it/m);
    expect(current(dir)).toBe(good);
    expect(fs.readdirSync(path.join(dir, 'releases'))).toHaveLength(1);
    // ...and the target's installer refuses it on its own (what an ssh host runs, whoever staged the release).
    const staging = fs.mkdtempSync(path.join(dir, '.staging-'));
    const installed = path.resolve(dir, good);
    fs.cpSync(installed, staging, { recursive: true });
    fs.copyFileSync(m.out('us-east-1', 'web', 'key.pem'), path.join(staging, 'key.pem'));
    const r = await execa('sh', [path.join(REPO, 'packages/agent/installer.sh'), dir, staging, ''], { reject: false });
    expect(r.exitCode, `${installed}: ${r.stdout}${r.stderr}`).toBe(10);
    expect(r.stdout).toMatch(/invalid release: key.pem does not match cert.pem; current release kept/);
    expect(current(dir)).toBe(good);
    expect(fs.readdirSync(path.join(dir, 'releases'))).toHaveLength(1);
  });
  it('a failed reload rolls back to the previous release, and reloads that one', async () => {
    const dir = path.join(root, 'dir-reload');
    const m = await withTargets([{ type: 'dir', path: dir }]);
    expect((await m.ci(['deploy'])).code).toBe(0);
    const good = current(dir);
    const seen = path.join(root, 'reload-saw');
    // The reload fails whenever the new release is current, and records which release it saw.
    await m.allow({
      dir: { paths: [root] },
      reload: { picky: `readlink ${dir}/current >> ${seen}; [ "$(readlink ${dir}/current)" = "${good}" ]` },
    });
    m.writeScope('us-east-1', [{ api: { deploy: [{ type: 'dir', path: dir, reload: 'picky' }] } }, 'web']);
    expect((await m.ci(['renew', '--force', '--scope', 'us-east-1'])).code).toBe(0);
    const d = await m.ci(['deploy']);
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/reload failed and rolled back/);
    expect(current(dir)).toBe(good);
    const saw = fs.readFileSync(seen, 'utf8').trim().split('\n');
    expect(saw).toHaveLength(2);
    expect(saw[1]).toBe(good); // the rollback reloaded the previous release
  });
  it("a failed reload shows the server's own error, escaped and bounded, where the installer used to drop it", async () => {
    const dir = path.join(root, 'dir-said');
    const prefix = path.join(root, 'nginx-said');
    fs.mkdirSync(prefix, { recursive: true });
    // A first deploy whose reload only reloads: no nginx runs yet, and its config is not there either.
    const nginx = `nginx -p ${prefix} -c ${prefix}/absent.conf -e ${prefix}/error.log -s reload`;
    const m = await withTargets([{ type: 'dir', path: dir, reload: 'nginx' }], { reload: { nginx } });
    const d = await m.ci(['deploy']);
    expect(d.code, d.stdout + d.stderr).toBe(1);
    expect(d.stdout).toMatch(
      new RegExp(
        /reload failed and rolled back: reload failed; rolled back to nothing; the reload said: nginx: /.source +
          /\[emerg\] open\(\) ".*absent\.conf" failed \(2: No such file or directory\)/.source,
      ),
    );
    expect(fs.existsSync(path.join(dir, 'current'))).toBe(false);
    // A reload that prints terminal controls and a flood: escaped, one line, cut short.
    await m.allow({
      dir: { paths: [root] },
      reload: { loud: `printf 'bad\\033[2J\\n'; yes flood | head -n 500; exit 1` },
    });
    m.writeScope('us-east-1', [{ api: { deploy: [{ type: 'dir', path: dir, reload: 'loud' }] } }, 'web']);
    const l = await m.ci(['deploy']);
    expect(l.code).toBe(1);
    const line = l.stdout.split('\n').find((x) => x.includes('the reload said'))!;
    expect(line).toContain('the reload said: bad\\u001b[2J | flood | flood');
    expect(l.stdout + l.stderr).not.toContain('\u001b');
    expect(line.length).toBeLessThan(900);
  });
  it('a fresh runner without the leaf ships trust and CRL updates, keeping the installed leaf', async () => {
    const dir = path.join(root, 'dir-partial');
    const m = await withTargets([{ type: 'dir', path: dir }]);
    expect((await m.ci(['deploy'])).code).toBe(0);
    const cert = fs.readFileSync(path.join(dir, 'current', 'cert.pem'), 'utf8');
    fs.rmSync(m.path('.trellis/out'), { recursive: true });
    // A rotation's publish changes the scope's bundle and CRLs without minting a leaf.
    expect((await m.root(['rotate', 'intermediate', 'us-east-1'])).code).toBe(0);
    expect((await m.ci(['renew', '--scope', 'us-east-1', '--out', path.join(root, 'elsewhere')])).stdout).toMatch(
      /no leaf is due/,
    );
    const d = await m.ci(['deploy', '--scope', 'us-east-1']);
    expect(d.stdout).toMatch(/^installed .*no new leaf/m);
    expect(fs.readFileSync(path.join(dir, 'current', 'cert.pem'), 'utf8')).toBe(cert);
    expect(fs.readFileSync(path.join(dir, 'current', 'trust.pem'), 'utf8')).toBe(m.read('bundles/us-east-1/trust.pem'));
  });
});

describe('ssh target against a real sshd', () => {
  let sshd: { port: number; hostKey: string; clientKey: string; stop: () => void };
  beforeAll(async () => {
    const d = path.join(root, 'sshd');
    fs.mkdirSync(d, { recursive: true });
    fs.mkdirSync('/run/sshd', { recursive: true });
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(d, 'host')]);
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(d, 'client')]);
    fs.writeFileSync(path.join(d, 'authorized_keys'), fs.readFileSync(path.join(d, 'client.pub')));
    const port = freePort();
    fs.writeFileSync(
      path.join(d, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${d}/host`,
        `PidFile ${d}/sshd.pid`,
        `AuthorizedKeysFile ${d}/authorized_keys`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'StrictModes no',
        'UsePAM no',
        '',
      ].join('\n'),
    );
    await execa('/usr/sbin/sshd', ['-f', path.join(d, 'sshd_config')]);
    await waitForPort(port);
    const hostKey = fs.readFileSync(path.join(d, 'host.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    sshd = {
      port,
      hostKey,
      clientKey: path.join(d, 'client'),
      stop: () => process.kill(Number(fs.readFileSync(path.join(d, 'sshd.pid'), 'utf8'))),
    };
  });
  afterAll(() => sshd?.stop());
  const sshHost = (hostKey: string) => ({
    host: '127.0.0.1',
    port: sshd.port,
    user: os.userInfo().username,
    hostKey,
    identityFile: sshd.clientKey,
    paths: [root],
  });

  it('installs over SSH with the host key pinned', async () => {
    const dir = path.join(root, 'ssh-target');
    const m = await withTargets([{ type: 'ssh', host: 'local', path: dir, reload: 'noop' }], {
      reload: { noop: 'true' },
      ssh: { local: sshHost(sshd.hostKey) },
    });
    const d = await m.ci(['deploy']);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^installed .*ssh:/m);
    expect(fs.readFileSync(path.join(dir, 'current', 'cert.pem'), 'utf8')).toBe(
      fs.readFileSync(m.out('us-east-1', 'api', 'cert.pem'), 'utf8'),
    );
    expect(fs.statSync(path.join(dir, 'current', 'key.pem')).mode & 0o777).toBe(0o600);
  });
  it('carries the binary PKCS#12 files of formats: [pkcs12] byte for byte (docs/jvm.md)', async () => {
    const dir = path.join(root, 'ssh-pkcs12');
    const m = await withTargets([{ type: 'ssh', host: 'local', path: dir, formats: ['pkcs12'] }], {
      ssh: { local: sshHost(sshd.hostKey) },
    });
    const env = { TRELLIS_PKCS12_PASSWORD: 'ssh carries bytes' };
    const d = await m.ci(['deploy'], env);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const out = path.join(root, 'ssh-pkcs12.p12');
    await m.ci(['bundle', 'us-east-1', '--format', 'pkcs12', '--service', 'api', '--out', out], env);
    // Reproducible under one password: the bytes bundle writes are the bytes that crossed SSH.
    expect(fs.readFileSync(path.join(dir, 'current', 'keystore.p12'))).toEqual(fs.readFileSync(out));
    expect(fs.statSync(path.join(dir, 'current', 'keystore.p12')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(dir, 'current', 'truststore.p12'))).toBe(true);
  });
  it('refuses a host whose key is not the pinned one, and still serves the other targets', async () => {
    const dir = path.join(root, 'ssh-wrong');
    const other = path.join(root, 'ssh-wrong-other');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(root, 'impostor')]);
    const wrong = fs.readFileSync(path.join(root, 'impostor.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    const m = await withTargets(
      [
        { type: 'ssh', host: 'local', path: dir },
        { type: 'dir', path: other },
      ],
      { ssh: { local: sshHost(wrong) } },
    );
    const d = await m.ci(['deploy']);
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/^failed .*does not match the pinned hostKey: refused/m);
    expect(d.stdout).toMatch(/^installed .*dir:/m);
    expect(fs.existsSync(path.join(dir, 'current'))).toBe(false);
  });
  it('refuses an allow-listed ssh host without a pinned host key (no trust on first use)', async () => {
    const m = await withTargets([]);
    const { hostKey: _, ...unpinned } = sshHost(sshd.hostKey);
    await m.allow({ ssh: { local: unpinned } }, { confirm: false });
    const d = await m.ci(['deploy']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/trellis.yaml: deploy.ssh.local.hostKey: must be a non-empty string/s);
  });
});

describe('sealed target and trellis-agent', () => {
  const agent = (args: string[], env: Record<string, string>) =>
    execa('node', [AGENT_BIN, ...args], {
      env: baseEnv(env) as NodeJS.ProcessEnv,
      extendEnv: false,
      reject: false,
    });
  let host: { identity: string; recipient: string };
  let idFile: string;
  let m: FakeMesh;
  let roots: string;
  beforeAll(async () => {
    host = await newIdentity();
    idFile = path.join(root, 'host.identity');
    fs.writeFileSync(idFile, host.identity);
    m = await withTargets([{ type: 'sealed', host: 'web-1' }], { sealed: { 'web-1': { recipient: host.recipient } } });
    roots = path.join(root, 'pinned-roots.pem');
    fs.writeFileSync(roots, m.read('bundles/root/roots.pem'));
  });
  const bundleAt = (out: string) => path.join(out, 'us-east-1', 'api', 'web-1.age');

  it('seals a signed release to the host; only its agent opens it, installs it atomically and reloads', async () => {
    const d = await m.ci(['deploy', '--sealed-out', path.join(root, 'sealed')]);
    expect(d.code, d.stdout).toBe(0);
    const bundle = bundleAt(path.join(root, 'sealed'));
    expect(fs.readFileSync(bundle, 'utf8')).toMatch(/^-----BEGIN AGE ENCRYPTED FILE-----/);
    expect(fs.readFileSync(bundle, 'utf8')).not.toMatch(/PRIVATE KEY/);
    const dir = path.join(root, 'agent-target');
    const marker = path.join(root, 'agent-reloaded');
    const r = await agent(
      [
        'install',
        '--bundle',
        bundle,
        '--dir',
        dir,
        '--roots',
        roots,
        '--reload',
        `touch ${marker}`,
        '--expect',
        'us-east-1/api',
      ],
      { TRELLIS_AGENT_IDENTITY_FILE: idFile },
    );
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/us-east-1\/api .*installed releases\//);
    expect(fs.existsSync(marker)).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'current', 'key.pem'), 'utf8')).toBe(
      fs.readFileSync(m.out('us-east-1', 'api', 'key.pem'), 'utf8'),
    );
  });
  it('refuses another identity, and the CI identity on the host', async () => {
    const bundle = bundleAt(path.join(root, 'sealed'));
    const denied = await agent(['install', '--bundle', bundle, '--dir', path.join(root, 'agent-x'), '--roots', roots], {
      TRELLIS_AGENT_IDENTITY: (await newIdentity()).identity,
    });
    expect(denied.exitCode).toBe(3);
    expect(String(denied.stderr)).toMatch(/host's agent identity given does not open this bundle/);
    const posture = await agent(
      ['install', '--bundle', bundle, '--dir', path.join(root, 'agent-x'), '--roots', roots],
      { TRELLIS_AGENT_IDENTITY_FILE: idFile, TRELLIS_CI_IDENTITY: 'AGE-SECRET-KEY-1X' },
    );
    expect(posture.exitCode).toBe(3);
  });
  it("refuses a bundle forged by anyone who knows the host's recipient: signed outside the pinned roots", async () => {
    // Another mesh seals to the same host: a real, well-formed, validly signed release of the wrong mesh.
    const other = await FakeMesh.fresh({ scopes: { global: [], 'us-east-1': ['api'] } });
    other.writeScope('us-east-1', [{ api: { deploy: [{ type: 'sealed', host: 'web-1' }] } }]);
    await other.allow({ sealed: { 'web-1': { recipient: host.recipient } } });
    expect((await other.ci(['deploy', '--sealed-out', path.join(root, 'forged')])).code).toBe(0);
    const dir = path.join(root, 'agent-forged');
    const r = await agent(
      ['install', '--bundle', bundleAt(path.join(root, 'forged')), '--dir', dir, '--roots', roots],
      { TRELLIS_AGENT_IDENTITY_FILE: idFile },
    );
    expect(r.exitCode).toBe(3);
    expect(String(r.stderr)).toMatch(/refused sealed release: not signed by an intermediate of the pinned roots/);
    expect(fs.existsSync(path.join(dir, 'current'))).toBe(false);
  });
  it('refuses a replay: a release older than the one installed', async () => {
    const dir = path.join(root, 'agent-replay');
    expect(
      (await m.ci(['deploy', '--sealed-out', path.join(root, 'old'), '--now', stamp(Date.now() - 20_000)])).code,
    ).toBe(0);
    expect(
      (await m.ci(['deploy', '--sealed-out', path.join(root, 'new'), '--now', stamp(Date.now() - 10_000)])).code,
    ).toBe(0);
    const install = (b: string) =>
      agent(['install', '--bundle', b, '--dir', dir, '--roots', roots], { TRELLIS_AGENT_IDENTITY_FILE: idFile });
    expect((await install(bundleAt(path.join(root, 'new')))).exitCode).toBe(0);
    const replay = await install(bundleAt(path.join(root, 'old')));
    expect(replay.exitCode, String(replay.stderr)).toBe(3);
    expect(String(replay.stderr)).toMatch(/older .* than the release installed last .*a replay/);
  });
});

describe('kubernetes target', () => {
  it('writes a kubernetes.io/tls Secret with ca.crt and a trust ConfigMap', async () => {
    const m = await withTargets([{ type: 'kubernetes', name: 'api-tls', namespace: 'mesh' }]);
    const d = await m.ci(['deploy', '--manifests', path.join(root, 'k8s')]);
    expect(d.code, d.stdout).toBe(0);
    const docs = fs
      .readFileSync(path.join(root, 'k8s', 'us-east-1', 'api', 'mesh', 'api-tls.yaml'), 'utf8')
      .split(/^---\n/m)
      .filter(Boolean)
      .map((x) => parse(x));
    const secret = docs.find((x) => x.kind === 'Secret');
    expect(secret).toMatchObject({ type: 'kubernetes.io/tls', metadata: { name: 'api-tls', namespace: 'mesh' } });
    const b = (s: string) => Buffer.from(s, 'base64').toString();
    expect(b(secret.data['tls.crt'])).toBe(fs.readFileSync(m.out('us-east-1', 'api', 'chain.pem'), 'utf8'));
    expect(b(secret.data['tls.key'])).toBe(fs.readFileSync(m.out('us-east-1', 'api', 'key.pem'), 'utf8'));
    expect(b(secret.data['ca.crt'])).toBe(m.read('bundles/us-east-1/trust.pem'));
    expect(docs.find((x) => x.kind === 'ConfigMap').data['ca.crt']).toBe(m.read('bundles/us-east-1/trust.pem'));
  });
  it('applies with kubectl when a context is named, and reports its failure per target', async () => {
    const m = await withTargets(
      [
        { type: 'kubernetes', name: 'api-tls', context: 'no-such-context' },
        { type: 'dir', path: path.join(root, 'k8s-other') },
      ],
      { kubernetes: { 'no-such-context': { namespaces: ['default'] } } },
    );
    const d = await m.ci(['deploy', '--manifests', path.join(root, 'k8s2')]);
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/^failed .*kubectl apply failed: .*no-such-context/m);
    expect(d.stdout).toMatch(/^installed .*dir:/m);
  });
});

describe('the installer refuses a release that does not validate', () => {
  const installer = path.join(REPO, 'packages/agent/installer.sh');
  async function stageAndInstall(target: string, files: Record<string, string>) {
    const staging = fs.mkdtempSync(path.join(root, 'staging-'));
    for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(staging, n), c);
    return execa('sh', [installer, target, staging, ''], { reject: false });
  }
  it.each([
    ['a leaf of another CA', 'unknown'],
    ['a revoked leaf (the CRL in the release lists it)', 'revoked'],
  ])('%s: exit 10, nothing installed', async (_, kind) => {
    const m = pristine.clone();
    let cert = fs.readFileSync(m.out('us-east-1', 'api', 'cert.pem'), 'utf8');
    let key = fs.readFileSync(m.out('us-east-1', 'api', 'key.pem'), 'utf8');
    if (kind === 'unknown') {
      const other = await FakeMesh.fresh({ scopes: { global: [], 'us-east-1': ['api'] } });
      cert = fs.readFileSync(other.out('us-east-1', 'api', 'cert.pem'), 'utf8');
      key = fs.readFileSync(other.out('us-east-1', 'api', 'key.pem'), 'utf8');
    } else {
      expect((await m.ci(['revoke', 'us-east-1/api', '--out', path.join(root, 'revoke-out')])).code).toBe(0);
    }
    const target = path.join(root, `installer-${kind}`);
    const r = await stageAndInstall(target, {
      'cert.pem': cert,
      'key.pem': key,
      'chain.pem': cert,
      'trust.openssl.pem': m.read('bundles/us-east-1/trust.openssl.pem'),
      'crl.pem': m.read('bundles/global/crl.pem') + m.read('bundles/us-east-1/crl.pem'),
    });
    expect(r.exitCode).toBe(10);
    expect(String(r.stdout)).toMatch(/invalid release: cert.pem does not verify/);
    expect(fs.existsSync(path.join(target, 'current'))).toBe(false);
  });
});

describe('canary', () => {
  let nginx: Terminator;
  afterAll(() => nginx?.stop());
  const API = 'spiffe://us-east-1.mesh.example/api';
  /** deploy.probe with one entry, `name`, as the custodian confirms it. */
  const probe = (name: string, address: string, extra: { path?: string; spiffe?: string } = {}) => ({
    probe: { [name]: { address, spiffe: API, ...extra } },
  });
  it('deploys the canary, checks a real handshake against it, then the rest', async () => {
    nginx = nginxFor(root, 'canary', path.join(root, 'canary-release'));
    const rest = path.join(root, 'canary-rest');
    const m = await withTargets(
      [
        { type: 'dir', path: nginx.releaseDir, reload: 'nginx', check: 'canary' },
        { type: 'dir', path: rest },
      ],
      { reload: { nginx: nginx.reload }, ...probe('canary', `127.0.0.1:${nginx.port}`) },
    );
    const d = await m.ci(['deploy', '--canary', '1']);
    expect(d.code, d.stdout).toBe(0);
    expect(d.stdout).toMatch(/canary handshake ok/);
    expect(fs.existsSync(path.join(rest, 'current'))).toBe(true);
  });
  it('fails a canary whose endpoint does not present the leaf just deployed', async () => {
    const rest = path.join(root, 'canary-wrong-rest');
    // The check points at the nginx of the first canary test, which serves another release.
    const m = await withTargets(
      [
        { type: 'dir', path: path.join(root, 'canary-wrong'), check: 'wrong' },
        { type: 'dir', path: rest },
      ],
      probe('wrong', `127.0.0.1:${nginx.port}`, { path: '/' }),
    );
    expect((await m.ci(['renew', '--force', '--scope', 'us-east-1'])).code).toBe(0);
    const d = await m.ci(['deploy', '--canary', '1']);
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(
      /canary check of https:\/\/127.0.0.1:\d+\/ failed: the endpoint presents .*, not the leaf just deployed/,
    );
    expect(fs.existsSync(path.join(rest, 'current'))).toBe(false);
  });
  it('stops the rollout at the first failed canary', async () => {
    const rest = path.join(root, 'canary-stopped');
    const m = await withTargets(
      [
        { type: 'dir', path: path.join(root, 'canary-dead'), check: 'dead' },
        { type: 'dir', path: rest },
      ],
      probe('dead', `127.0.0.1:${freePort()}`),
    );
    const d = await m.ci(['deploy', '--canary', '1']);
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/^failed .*canary check of 127.0.0.1:\d+ failed/m);
    expect(d.stdout).toMatch(/^skipped .*rollout stopped by a failed canary/m);
    expect(fs.existsSync(path.join(rest, 'current'))).toBe(false);
  });
  it('fails a canary whose endpoint presents the leaf just deployed under another SPIFFE ID than its entry names', async () => {
    const rest = path.join(root, 'canary-spiffe-rest');
    const m = await withTargets(
      [
        { type: 'dir', path: nginx.releaseDir, reload: 'nginx', check: 'canary' },
        { type: 'dir', path: rest },
      ],
      {
        reload: { nginx: nginx.reload },
        ...probe('canary', `127.0.0.1:${nginx.port}`, { spiffe: 'spiffe://us-east-1.mesh.example/web' }),
      },
    );
    const d = await m.ci(['deploy', '--canary', '1']);
    expect(d.code, d.stdout).toBe(1);
    expect(d.stdout).toContain(`the endpoint's leaf names ${API}, not spiffe://us-east-1.mesh.example/web`);
    expect(fs.existsSync(path.join(rest, 'current'))).toBe(false);
  });
});

describe('a check connects only to an endpoint the custodian confirmed (deploy.probe)', () => {
  // Each would have CI connect where a pull request says: deploy refuses (exit 3) before it delivers or connects.
  it.each([
    {
      name: 'a scope file that names the endpoint itself, as scope files once did',
      check: '127.0.0.1:443',
      allow: {},
      says: /check "127.0.0.1:443" names an endpoint itself[\s\S]*move it into trellis.yaml as deploy.probe/,
    },
    {
      name: 'an https:// endpoint named in the scope file',
      check: 'https://evil.example:8443/x',
      allow: {},
      says: /names an endpoint itself/,
    },
    {
      name: 'an entry the allow-list does not hold',
      check: 'elsewhere',
      allow: { probe: { api: { address: '127.0.0.1:443', spiffe: 'spiffe://us-east-1.mesh.example/api' } } },
      says: /check "elsewhere" is not in the allow-list \(deploy.probe in trellis.yaml\)[\s\S]*name one of: api/,
    },
  ])('$name', async ({ check, allow, says }) => {
    const target = path.join(root, `probe-refused-${check.replace(/\W/g, '-')}`);
    const m = await withTargets([{ type: 'dir', path: target, check }], allow);
    const before = m.snapshot();
    const d = await m.ci(['deploy', '--canary', '1']);
    expect(d.code, d.stdout + d.stderr).toBe(3);
    expect(d.stderr).toMatch(says);
    expect(d.stderr).toContain('scopes/us-east-1.yaml');
    expect(fs.existsSync(target)).toBe(false);
    expect(m.snapshot()).toEqual(before);
    // verify names it on the pull request, before anyone deploys.
    const v = await m.ci(['verify']);
    expect(v.code).not.toBe(0);
    expect(v.stdout).toContain('services.api.deploy[0].check');
  });

  it('a probe entry a pull request adds counts only once the custodian confirmed it', async () => {
    const target = path.join(root, 'probe-unconfirmed');
    const m = await withTargets([{ type: 'dir', path: target }]);
    m.writeScope('us-east-1', [{ api: { deploy: [{ type: 'dir', path: target, check: 'mine' }] } }, 'web']);
    await m.allow(
      {
        dir: { paths: [root] },
        probe: { mine: { address: '203.0.113.9:443', spiffe: 'spiffe://us-east-1.mesh.example/api' } },
      },
      { confirm: false },
    );
    const before = m.snapshot();
    const d = await m.ci(['deploy', '--canary', '1']);
    expect(d.code, d.stdout + d.stderr).toBe(3);
    expect(d.stderr).toMatch(/custody-allow-list-unconfirmed[\s\S]*deploy.probe.mine added/);
    expect(fs.existsSync(target)).toBe(false);
    expect(m.snapshot()).toEqual(before);
    // Confirmed, the same entry resolves and deploy runs (without --canary nothing connects to it).
    expect((await m.root(['confirm'])).code).toBe(0);
    expect((await m.ci(['deploy', '--scope', 'us-east-1'])).code).toBe(0);
  });
});
