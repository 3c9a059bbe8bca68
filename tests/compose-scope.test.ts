/**
 * `trellis-ci compose --scope S` (docs/sharding.md): on a store whose scopes
 * each have their own CI identity (recipients.ciScopes), a matrix of compose
 * jobs, each holding one scope's identity, writes only bundles/S/ (the trust
 * bundles and S's ledger entry, signed with S's key); an identity that opens
 * another separated scope is refused (exit 3, store unchanged); the jobs,
 * run concurrently on clones of the merged shards, merge with git without a
 * conflict into what one `compose` of every scope writes, and verify passes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { newIdentity } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { trellisCi, type Run } from './helpers/cli.js';
import { git, mustGit, publishAsOrigin } from './helpers/git.js';
import { hashTree } from './helpers/store-hash.js';

const SCOPES = ['global', 'us-east-1', 'eu-west-1'] as const;
const day = 86_400_000;
// Real time (confirm and rekey take no --now): set up four days ago, us-east-1 rotated then and switched two hours
// later,
// so today every 24h leaf has expired and us-east-1's retire gate is open; its retire changes global's bundle and its
// own.
const T0 = new Date(Math.floor((Date.now() - 4 * day) / 60_000) * 60_000);
const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

let mesh: FakeMesh;
let work: string;
let origin: string;
/** Each scope's CI identity file: the regions their own, global the shared one. */
const idFile: Record<string, string> = {};
let allIds: string;

const ci = (store: string, args: string[], identityFile?: string): Promise<Run> =>
  trellisCi(['--store', store, ...args], { env: { TRELLIS_CI_IDENTITY_FILE: identityFile } });
const changed = async (dir: string) =>
  (await mustGit(dir, ['status', '--porcelain', '--untracked-files=all']))
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(3));
const ledgerOps = (dir: string, scope: string) =>
  fs
    .readFileSync(path.join(dir, 'bundles', scope, 'ledger.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { op: string }).op);

/** A fresh clone of the merged shards (branch `renewed`), as a compose job's runner checks it out. */
async function runner(name: string): Promise<string> {
  const dir = path.join(work, name);
  await mustGit(work, ['clone', '-q', '-b', 'renewed', origin, dir]);
  return dir;
}

beforeAll(async () => {
  const svc = (n: string) => ({ [n]: { ttl: '24h' } });
  mesh = await FakeMesh.create({
    now: iso(T0),
    scopes: { global: [svc('control')], 'us-east-1': [svc('api')], 'eu-west-1': [svc('api')] },
  });
  expect(
    (await mesh.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '1h', '--now', iso(T0), '--now-ahead']))
      .code,
  ).toBe(0);
  expect(
    (await mesh.ci(['renew', '--now', iso(new Date(T0.getTime() + 2 * 3_600_000)), '--now-ahead'])).stdout,
  ).toContain('phase us-east-1: switch');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-compose-scope-'));
  idFile.global = mesh.ciIdentityFile;
  const ciScopes: Record<string, string> = {};
  for (const s of ['us-east-1', 'eu-west-1']) {
    const id = await newIdentity();
    idFile[s] = path.join(work, `ci-${s}.identity`);
    fs.writeFileSync(idFile[s]!, `${id.identity}\n`, { mode: 0o600 });
    ciScopes[s] = id.recipient;
  }
  allIds = path.join(work, 'ci-all.identity');
  fs.writeFileSync(allIds, SCOPES.map((s) => fs.readFileSync(idFile[s]!, 'utf8')).join(''), { mode: 0o600 });
  const cfg = parse(mesh.read('trellis.yaml')) as { recipients: Record<string, unknown> };
  cfg.recipients.ciScopes = ciScopes;
  mesh.write('trellis.yaml', stringify(cfg));
  expect((await mesh.root(['confirm', '--confirm-recipients'])).code).toBe(0);
  const rekey = await mesh.ci(['rekey']);
  expect(rekey.code, rekey.stderr).toBe(0);
  origin = path.join(work, 'origin.git');
  await publishAsOrigin(mesh.dir, origin);
  // The renew matrix, each shard with its own scope's identity, merged into one commit: what every compose job starts
  // from.
  const merged = path.join(work, 'merged');
  await mustGit(work, ['clone', '-q', origin, merged]);
  for (const s of SCOPES) {
    const dir = path.join(work, `shard-${s}`);
    await mustGit(work, ['clone', '-q', origin, dir]);
    const r = await ci(dir, ['renew', '--scope', s, '--shard'], idFile[s]);
    expect(r.code, r.stderr).toBe(0);
    await mustGit(dir, ['add', '-A', 'bundles']);
    await mustGit(dir, ['commit', '-qm', `shard ${s}`]);
    await mustGit(dir, ['push', '-q', 'origin', `HEAD:refs/heads/shard/${s}`]);
  }
  await mustGit(merged, ['fetch', '-q']);
  await mustGit(merged, ['merge', '-q', '--no-edit', ...SCOPES.map((s) => `origin/shard/${s}`)]);
  await mustGit(merged, ['push', '-q', 'origin', 'HEAD:refs/heads/renewed']);
}, 240_000);

describe('compose --scope S', () => {
  it("with S's own identity writes only bundles/S/: its trust bundles and one compose entry in its ledger", async () => {
    const dir = await runner('own');
    const before = ledgerOps(dir, 'us-east-1');
    const r = await ci(dir, ['compose', '--scope', 'us-east-1'], idFile['us-east-1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('compose bundles/us-east-1/trust.pem');
    expect(r.stdout).toContain('recomposed 5 bundle file(s) of 1 scope(s)');
    const files = await changed(dir);
    expect(files).toContain('bundles/us-east-1/ledger.jsonl');
    expect(files.filter((f) => !f.startsWith('bundles/us-east-1/'))).toEqual([]);
    expect(ledgerOps(dir, 'us-east-1')).toEqual([...before, 'compose']);
    // Global's bundle, stale too, is left to global's own job.
    const again = await ci(dir, ['compose', '--dry-run'], undefined);
    expect(again.stdout).toContain('compose bundles/global/trust.pem');
    expect(again.stdout).not.toContain('bundles/us-east-1/');
  });

  it("--dry-run lists only S's files and needs no identity; an undeclared scope is bad input (exit 2)", async () => {
    const dir = await runner('dry');
    const before = hashTree(dir);
    const dry = await ci(dir, ['compose', '--scope', 'global', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(
      dry.stdout
        .split('\n')
        .filter(Boolean)
        .every((l) => l.startsWith('compose bundles/global/')),
    ).toBe(true);
    const none = await ci(dir, ['compose', '--scope', 'eu-west-1'], idFile['us-east-1']);
    expect([none.code, none.stdout.trim()]).toEqual([
      0,
      'nothing to compose: every bundle of eu-west-1 holds what its scope trusts',
    ]);
    const unknown = await ci(dir, ['compose', '--scope', 'ap-south-1'], idFile['us-east-1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no scope "ap-south-1"/);
    expect(hashTree(dir)).toEqual(before);
  });

  it.each([
    ['us-east-1', "the shared identity (global's)", () => idFile.global!, /also opens the intermediate key of global/],
    ['us-east-1', "eu-west-1's identity", () => idFile['eu-west-1']!, /also opens the intermediate key of eu-west-1/],
    [
      'global',
      "every scope's identity in one file",
      () => allIds,
      /also opens the intermediate key of eu-west-1, us-east-1/,
    ],
  ])('compose --scope %s with %s is refused (exit 3), the store unchanged', async (scope, _who, file, why) => {
    const dir = await runner(`refused-${scope}-${path.basename(file())}`);
    const before = hashTree(dir);
    const r = await ci(dir, ['compose', '--scope', scope], file());
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(why);
    expect(r.stderr).not.toMatch(/AGE-SECRET-KEY/);
    expect(hashTree(dir)).toEqual(before);
  });

  it('a matrix of compose --scope jobs, concurrently on separate clones, merges with git without a conflict into what one compose of every scope writes; verify passes', async () => {
    const jobs = await Promise.all(
      SCOPES.map(async (s) => {
        const dir = await runner(`matrix-${s}`);
        const r = await ci(dir, ['compose', '--scope', s], idFile[s]);
        const files = await changed(dir);
        if (r.code === 0 && files.length) {
          await mustGit(dir, ['add', '-A', `bundles/${s}`]);
          await mustGit(dir, ['commit', '-qm', `compose --scope ${s}`]);
          await mustGit(dir, ['push', '-q', 'origin', `HEAD:refs/heads/compose/${s}`]);
        }
        return { s, r, files };
      }),
    );
    for (const j of jobs) {
      expect(j.r.code, j.r.stderr).toBe(0);
      expect(j.files.filter((f) => !f.startsWith(`bundles/${j.s}/`))).toEqual([]);
    }
    const pushed = jobs.filter((j) => j.files.length).map((j) => j.s);
    expect(pushed).toEqual(['global', 'us-east-1']);

    const published = await runner('published');
    await mustGit(published, ['fetch', '-q']);
    const merge = await git(published, ['merge', '-q', '--no-edit', ...pushed.map((s) => `origin/compose/${s}`)]);
    expect(merge.code, merge.stderr + merge.stdout).toBe(0);
    // Verify from public material (no secret), then with every identity (custody proven per scope).
    const plain = await ci(published, ['verify']);
    expect(plain.code, plain.stdout).toBe(0);
    const full = await ci(published, ['verify'], allIds);
    expect(full.code, full.stdout).toBe(0);
    expect(full.stdout).toMatch(/0 error\(s\)/);
    expect((await ci(published, ['compose'])).stdout).toContain('nothing to compose');

    // Plain compose (every scope, one identity file opening all) still works, and writes the same bundles.
    const whole = await runner('whole');
    const all = await ci(whole, ['compose'], allIds);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain('of 2 scope(s)');
    const bundles = (dir: string) =>
      Object.fromEntries(
        Object.entries(hashTree(path.join(dir, 'bundles'))).filter(([f]) => !f.endsWith('ledger.jsonl')),
      );
    expect(bundles(published)).toEqual(bundles(whole));
    for (const s of SCOPES) expect(ledgerOps(published, s)).toEqual(ledgerOps(whole, s));
  });
});
