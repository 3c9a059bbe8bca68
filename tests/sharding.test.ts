/**
 * CI sharded by scope (docs/sharding.md): `renew --scope S --shard` for every
 * scope at once, each on its own clone as on its own runner, committed and
 * merged with git; then `compose`, `verify`, and the leaves judged by OpenSSL
 * against the composed bundles.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TrellisError, assertShardWrites, shardOwns } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { tool, trellisCi, type Run } from './helpers/cli.js';
import { git, mustGit, publishAsOrigin } from './helpers/git.js';
import { hashTree } from './helpers/store-hash.js';
import { at, compact, DAY, HOUR, RUN_NOW } from './helpers/clock.js';

const T0 = at(RUN_NOW, -3 * DAY);
const SWITCH = at(T0, 2 * HOUR);
// Every 24h leaf has expired, and us-east-1's retire gate (its longest leaf TTL after the switch) is open.
const T1 = at(T0, 27 * HOUR);
const SCOPES = ['global', 'us-east-1', 'eu-west-1'];
const SERVICE: Record<string, string> = { global: 'control', 'us-east-1': 'api', 'eu-west-1': 'api' };

let mesh: FakeMesh;
let work: string;
let origin: string;

const ci = (store: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Run> =>
  trellisCi(['--store', store, ...args], { env: { TRELLIS_CI_IDENTITY_FILE: mesh.ciIdentityFile, ...env } });

/** One runner's job: a fresh clone, the shard's renew, a commit pushed to the shard's branch. */
async function shardJob(scope: string): Promise<{ dir: string; renew: Run }> {
  const dir = path.join(work, `runner-${scope}`);
  await mustGit(work, ['clone', '-q', origin, dir]);
  const renew = await ci(dir, ['renew', '--scope', scope, '--shard', '--now', T1, '--now-ahead']);
  if (renew.code === 0) {
    await mustGit(dir, ['add', '-A', 'bundles']);
    await mustGit(dir, ['commit', '-qm', `trellis renew --scope ${scope} --shard`]);
    await mustGit(dir, ['push', '-q', 'origin', `HEAD:refs/heads/shard/${scope}`]);
  }
  return { dir, renew };
}

beforeAll(async () => {
  const svc = (n: string) => ({ [n]: { ttl: '24h' } });
  mesh = await FakeMesh.create({ now: T0, scopes: Object.fromEntries(SCOPES.map((s) => [s, [svc(SERVICE[s]!)]])) });
  // us-east-1 mid-rotation: its shard takes the retire step, which changes what the other scopes' bundles must hold.
  const rot = await mesh.root([
    'rotate',
    'intermediate',
    'us-east-1',
    '--propagation',
    '1h',
    '--now',
    T0,
    '--now-ahead',
  ]);
  expect(rot.code, rot.stderr).toBe(0);
  const sw = await mesh.ci(['renew', '--now', SWITCH, '--now-ahead']);
  expect(sw.stdout).toContain('phase us-east-1: switch');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-shards-'));
  origin = path.join(work, 'origin.git');
  await publishAsOrigin(mesh.dir, origin);
});

describe('renew sharded by scope, then compose', () => {
  it('shards run concurrently on separate clones, touch disjoint files, merge without a conflict; compose makes the merged store verify', async () => {
    const jobs = await Promise.all(SCOPES.map((s) => shardJob(s)));
    for (const [i, j] of jobs.entries()) {
      expect(j.renew.code, j.renew.stderr).toBe(0);
      expect(j.renew.stdout).toContain(`mint ${SCOPES[i]}/${SERVICE[SCOPES[i]!]} (expired)`);
    }
    expect(jobs[1]!.renew.stdout).toContain('phase us-east-1: retire');

    // Each shard changed only its own scope's files, and never a trust bundle.
    const merged = path.join(work, 'compose');
    await mustGit(work, ['clone', '-q', origin, merged]);
    const touched = new Map<string, string[]>();
    for (const s of SCOPES) {
      const files = (await mustGit(merged, ['diff', '--name-only', `main...origin/shard/${s}`])).trim().split('\n');
      expect(files.length).toBeGreaterThan(0);
      expect(files.filter((f) => !shardOwns(s, f))).toEqual([]);
      expect(files).toContain(`bundles/${s}/ledger.jsonl`);
      touched.set(s, files);
    }
    const all = [...touched.values()].flat();
    expect(new Set(all).size).toBe(all.length);

    // One octopus merge: git refuses an octopus that conflicts.
    const merge = await git(merged, ['merge', '--no-edit', '-q', ...SCOPES.map((s) => `origin/shard/${s}`)]);
    expect(merge.code, merge.stderr + merge.stdout).toBe(0);

    // Merged but not composed: the retire in us-east-1 left the global bundle (and its own) trusting the retired key.
    const before = await ci(merged, ['verify', '--now', T1, '--now-ahead']);
    expect(before.code).toBe(1);
    expect(before.stdout).toMatch(/\(bundles\/global\/trust\.pem\)/);
    expect(before.stdout).toMatch(/\(bundles\/us-east-1\/trust\.pem\)/);
    expect(before.stdout).not.toMatch(/\(bundles\/eu-west-1\/trust\.pem\)/);

    const composed = await ci(merged, ['compose', '--now', T1, '--now-ahead']);
    expect(composed.code, composed.stderr).toBe(0);
    expect(composed.stdout).toContain('compose bundles/global/trust.pem');
    expect(composed.stdout).toContain('compose bundles/us-east-1/trust.openssl.pem');
    expect(composed.stdout).not.toContain('bundles/eu-west-1/');
    const ledger = mesh.read('bundles/global/ledger.jsonl'); // the origin's, before compose
    expect(
      fs.readFileSync(path.join(merged, 'bundles/global/ledger.jsonl'), 'utf8').split('\n').filter(Boolean).length,
    ).toBe(ledger.split('\n').filter(Boolean).length + 2); // the shard's renew and compose

    const after = await ci(merged, ['verify', '--now', T1, '--now-ahead']);
    expect(after.code, after.stdout).toBe(0);
    expect(after.stdout).toMatch(/0 error\(s\)/);

    // The composed bundles are what one unsharded renew of the same store writes.
    const whole = path.join(work, 'unsharded');
    await mustGit(work, ['clone', '-q', origin, whole]);
    expect((await ci(whole, ['renew', '--now', T1, '--now-ahead'])).code).toBe(0);
    for (const s of SCOPES)
      for (const f of ['trust.pem', 'trust.openssl.pem']) {
        expect(fs.readFileSync(path.join(merged, 'bundles', s, f), 'utf8'), `${s}/${f}`).toBe(
          fs.readFileSync(path.join(whole, 'bundles', s, f), 'utf8'),
        );
      }

    // Each runner's leaves verify with OpenSSL (as of T1) against the composed bundles; the boundary holds.
    const opensslVerify = (leafScope: string, trustScope: string, purpose: string) => {
      const out = path.join(jobs[SCOPES.indexOf(leafScope)]!.dir, '.trellis/out', leafScope, SERVICE[leafScope]!);
      return tool('openssl', [
        'verify',
        '-x509_strict',
        '-attime',
        String(Date.parse(T1) / 1000 + 60),
        '-purpose',
        purpose,
        '-CAfile',
        path.join(merged, 'bundles', trustScope, 'trust.openssl.pem'),
        '-crl_check',
        '-CRLfile',
        path.join(merged, 'bundles', leafScope, 'crl.pem'),
        path.join(out, 'cert.pem'),
      ]);
    };
    for (const s of SCOPES) {
      for (const purpose of ['sslclient', 'sslserver']) {
        const own = await opensslVerify(s, s, purpose);
        expect(own.code, `${s} ${purpose}: ${own.stderr}`).toBe(0);
        expect((await opensslVerify(s, 'global', purpose)).code, `global trusts ${s}`).toBe(0);
      }
    }
    const crossed = await opensslVerify('us-east-1', 'eu-west-1', 'sslclient');
    expect(crossed.code).not.toBe(0);
    expect(crossed.stderr).toMatch(/error 20 at 0 depth/);

    // Composing again finds nothing: the step is idempotent and a rerun of the job writes nothing.
    const snap = hashTree(path.join(merged, 'bundles'));
    const again = await ci(merged, ['compose', '--now', T1, '--now-ahead'], { TRELLIS_CI_IDENTITY_FILE: undefined });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('nothing to compose');
    expect(hashTree(path.join(merged, 'bundles'))).toEqual(snap);
  }, 180_000);
});

describe('refusals', () => {
  it.each([
    ["another scope's ledger", 'bundles/eu-west-1/ledger.jsonl'],
    ['its own trust bundle (compose writes it)', 'bundles/us-east-1/trust.pem'],
    ['its own OpenSSL trust bundle', 'bundles/us-east-1/trust.openssl.pem'],
    ['the root CRL', 'bundles/root/crl.pem'],
    ['a scope file', 'scopes/us-east-1.yaml'],
    ['a path climbing out of its directory', 'bundles/us-east-1/../global/leaves.yaml'],
    ['a scope whose name extends its own', 'bundles/us-east-1b/leaves.yaml'],
  ])('a shard of us-east-1 cannot write %s', (_why, file) => {
    const writes = [
      { path: 'bundles/us-east-1/leaves.yaml', content: 'x' },
      { path: file, content: 'y' },
    ];
    let err: unknown;
    try {
      assertShardWrites('us-east-1', writes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TrellisError);
    expect((err as TrellisError).reason).toBe('shard-outside-scope');
    expect((err as TrellisError).place.file).toBe(file);
    expect((err as TrellisError).exitCode).toBe(1);
  });

  it('a shard may write every file of its own scope but the trust bundles', () => {
    const own = [
      'leaves.yaml',
      'ledger.jsonl',
      'state.yaml',
      'crl.pem',
      'intermediate.pem',
      'intermediate.key.age',
      'intermediate.previous.pem',
      `evidence/${compact(T0)}-rotation.json`,
    ];
    expect(() =>
      assertShardWrites(
        'us-east-1',
        own.map((f) => ({ path: `bundles/us-east-1/${f}`, content: null })),
      ),
    ).not.toThrow();
  });

  it('renew --shard without --scope is refused (exit 2) and writes nothing', async () => {
    const m = mesh.clone();
    const before = hashTree(m.dir);
    const r = await m.ci(['renew', '--shard', '--now', T1, '--now-ahead']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--shard needs --scope/);
    expect(hashTree(m.dir)).toEqual(before);
  });

  it('compose without the CI identity is refused (exit 3) and writes nothing', async () => {
    const m = mesh.clone();
    // Make something to compose: a sharded retire leaves the bundles stale.
    expect((await m.ci(['renew', '--scope', 'us-east-1', '--shard', '--now', T1, '--now-ahead'])).code).toBe(0);
    const before = hashTree(m.dir);
    const r = await m.ci(['compose', '--now', T1, '--now-ahead'], { TRELLIS_CI_IDENTITY_FILE: undefined });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/TRELLIS_CI_IDENTITY/);
    expect(hashTree(m.dir)).toEqual(before);
    const dry = await m.ci(['compose', '--dry-run', '--now', T1, '--now-ahead'], {
      TRELLIS_CI_IDENTITY_FILE: undefined,
    });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('compose bundles/global/trust.pem');
    expect(hashTree(m.dir)).toEqual(before);
  });
});
