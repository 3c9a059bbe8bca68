/**
 * Disaster recovery, as docs/disaster-recovery.md tells it: every machine is
 * lost; what is left is the store's git repository and the two identity files
 * the operators hold. A fresh clone on a clean directory, plus those two
 * files, must verify, then issue, rotate and revoke end to end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { trellisCi, trellisRoot, tool, type Env } from './helpers/cli.js';
import { RUN_NOW, stamp } from './helpers/clock.js';

const T0 = stamp(RUN_NOW);
const at = (days: number, hours = 0) =>
  new Date(Date.parse(T0) + days * 86_400_000 + hours * 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');

async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await tool(
    'git',
    ['-c', 'user.name=ops', '-c', 'user.email=ops@example.invalid', '-c', 'init.defaultBranch=main', ...args],
    { cwd },
  );
  if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('disaster recovery: a fresh clone and the two identities', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-dr-'));
  const media = path.join(base, 'offline-media'); // what the custodians and the CI secrets store hold
  const clean = path.join(base, 'new-workstation');
  const store = path.join(clean, 'mesh');
  let rootId: string;
  let ciId: string;
  const root = (args: string[], env: Env = {}) =>
    trellisRoot(['--store', store, ...args], { env: { TRELLIS_ROOT_IDENTITY_FILE: rootId, ...env } });
  const ci = (args: string[]) => trellisCi(['--store', store, ...args], { env: { TRELLIS_CI_IDENTITY_FILE: ciId } });
  const verifyClean = async (now: string) => {
    for (const r of [
      await ci(['verify', '--json', '--now', now, '--now-ahead']),
      await root(['verify', '--json', '--now', now, '--now-ahead']),
    ]) {
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).findings.filter((f: { level: string }) => f.level === 'error')).toEqual([]);
    }
  };
  const commit = async (message: string) => {
    await git(store, 'add', '-A');
    await git(store, 'commit', '-q', '-m', message);
    // Leaf keys and the work area never reach the repository.
    expect(await git(store, 'ls-files')).not.toMatch(/\.trellis\/|key\.pem/);
  };

  beforeAll(async () => {
    // Before the disaster: a mesh in production, its store pushed to a bare repository.
    const m = await FakeMesh.create({
      scopes: { global: ['control'], 'us-east-1': ['api', 'web'], 'eu-west-1': ['api'] },
      now: T0,
    });
    await git(m.dir, 'init', '-q');
    await git(m.dir, 'add', '-A');
    await git(m.dir, 'commit', '-q', '-m', 'mesh');
    const origin = path.join(base, 'origin.git');
    await git(base, 'clone', '-q', '--bare', m.dir, origin);
    fs.mkdirSync(media, { mode: 0o700 });
    rootId = path.join(media, 'root.identity');
    ciId = path.join(media, 'ci.identity');
    fs.copyFileSync(m.rootIdentityFile, rootId);
    fs.copyFileSync(m.ciIdentityFile, ciId);
    // The disaster: the workstation, the runners and every working copy are gone.
    fs.rmSync(path.dirname(m.dir), { recursive: true, force: true });
    fs.mkdirSync(clean);
    await git(clean, 'clone', '-q', origin, store);
  });

  it('the clone holds no secret in the clear, and verifies clean with both identities (custody proven)', async () => {
    expect(fs.existsSync(path.join(store, '.trellis'))).toBe(false);
    const files = (await git(store, 'ls-files')).split('\n').filter(Boolean);
    expect(files.some((f) => f.endsWith('.key.age'))).toBe(true);
    for (const f of files)
      expect(fs.readFileSync(path.join(store, f), 'utf8')).not.toMatch(/AGE-SECRET-KEY|BEGIN (EC )?PRIVATE KEY/);
    await verifyClean(at(0, 1));
    const v = await ci(['verify', '--now', at(0, 1), '--now-ahead']);
    expect(v.stdout).toMatch(/CI identity cannot open the root key|cannot open the root key/i);
  });

  it('issues: renew on the fresh runner mints what is due, from leaves.yaml, and the leaves verify (OpenSSL)', async () => {
    const now = at(5); // past every 7-day leaf's renewal point
    const r = await ci(['renew', '--now', now, '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('minted 4 leaves');
    const out = (s: string, v: string, f: string) => path.join(store, '.trellis/out', s, v, f);
    const ok = await tool('openssl', [
      'verify',
      '-x509_strict',
      '-purpose',
      'sslclient',
      '-attime',
      String(Date.parse(now) / 1000 + 60),
      '-CAfile',
      path.join(store, '.trellis/out', 'us-east-1', 'trust.openssl.pem'),
      out('us-east-1', 'api', 'cert.pem'),
    ]);
    expect(ok.stdout.trim()).toMatch(/: OK$/);
    await commit('renew after restore');
    await verifyClean(now);
  });

  it('rotates: a planned intermediate rotation through publish, switch and retire on the simulated clock', async () => {
    const begin = await root(['rotate', 'intermediate', 'us-east-1', '--now', at(5, 1), '--now-ahead']);
    expect(begin.code, begin.stderr).toBe(0);
    await commit('rotate us-east-1: publish');
    await verifyClean(at(5, 1));
    const sw = await ci(['renew', '--now', at(6, 2), '--now-ahead']); // the 24h propagation gate is open
    expect(sw.code, sw.stderr).toBe(0);
    expect(sw.stdout).toMatch(/us-east-1.*switch|issuer-changed/);
    await commit('rotate us-east-1: switch');
    await verifyClean(at(6, 2));
    const retire = await ci(['renew', '--now', at(13, 3), '--now-ahead']); // a leaf lifetime later
    expect(retire.code, retire.stderr).toBe(0);
    expect(fs.existsSync(path.join(store, 'bundles/us-east-1/intermediate.previous.pem'))).toBe(false);
    expect(fs.readFileSync(path.join(store, 'bundles/us-east-1/state.yaml'), 'utf8')).toMatch(/phase: steady/);
    await commit('rotate us-east-1: retire');
    await verifyClean(at(13, 3));
  });

  it('revokes: a leaf revoked in CI is refused by OpenSSL with the scope CRL (error 23), and the store verifies', async () => {
    const old = path.join(base, 'revoked-leaf.pem');
    fs.copyFileSync(path.join(store, '.trellis/out/us-east-1/api/cert.pem'), old);
    const r = await ci(['revoke', 'us-east-1/api', '--reason', 'keyCompromise', '--now', at(13, 4), '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
    const v = await tool('openssl', [
      'verify',
      '-purpose',
      'sslclient',
      '-crl_check',
      '-attime',
      String(Date.parse(at(13, 5)) / 1000),
      '-CAfile',
      path.join(store, 'bundles/us-east-1/trust.openssl.pem'),
      '-CRLfile',
      path.join(store, 'bundles/us-east-1/crl.pem'),
      old,
    ]);
    expect(v.code).not.toBe(0);
    expect(v.stderr + v.stdout).toMatch(/error 23 /);
    await commit('revoke us-east-1/api');
    await verifyClean(at(13, 5));
  });
});
