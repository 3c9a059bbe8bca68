/**
 * Rekey on the side that can open the keys: trellis-root rekey moves the root
 * key(s) to new offline recipients, trellis-ci rekey the intermediate keys to
 * a custodian-confirmed CI recipient (both classic → post-quantum here); both
 * are in the ledgers with old and new recipients; verify --retired-identity
 * proves the old identity opens nothing; a crash mid-rekey leaves every key
 * openable by the old or the new identity.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { newIdentity, tryDecrypt } from '../packages/core/src/custody/custody.js';
import { expectRefused, trellisCi, trellisRoot } from './helpers/cli.js';
import { snapshotStore } from './helpers/store-hash.js';

interface World {
  base: string;
  store: string;
  rootId: string;
  ciId: string;
}

/**
 * A spread of a run's write points (first, middle, last: the commit point is among the last): every point is the crash
 * sweep's job, and costs minutes here.
 */
const samplePoints = (total: number) => [...new Set([1, Math.ceil(total / 2), total - 1, total])];

/** A classic mesh with two scopes' intermediates and leaves. */
async function classicMesh(): Promise<World> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-rekey-'));
  const w = {
    base,
    store: path.join(base, 'store'),
    rootId: path.join(base, 'root.identity'),
    ciId: path.join(base, 'ci.identity'),
  };
  const init = await trellisRoot([
    'init',
    '--store',
    w.store,
    '--mesh',
    'prod',
    '--trust-domain',
    'mesh.example',
    '--ci-identity-out',
    w.ciId,
  ]);
  expect(init.code, init.stderr).toBe(0);
  fs.writeFileSync(w.rootId, init.stdout, { mode: 0o600 });
  fs.writeFileSync(path.join(w.store, 'scopes/us-east-1.yaml'), 'kind: region\nservices:\n  api: {}\n');
  const mint = await trellisRoot(['intermediate', '--pending'], {
    cwd: w.store,
    env: { TRELLIS_ROOT_IDENTITY_FILE: w.rootId },
  });
  expect(mint.code, mint.stderr).toBe(0);
  return w;
}

const ageFiles = (store: string) =>
  fs
    .readdirSync(store, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.age') && !f.startsWith('.trellis'))
    .sort();
const identity = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('AGE-SECRET-KEY'));
const opens = async (idFile: string, store: string, f: string) =>
  (await tryDecrypt(identity(idFile), fs.readFileSync(path.join(store, f), 'utf8'))).ok;
const ledger = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { op: string; details: Record<string, unknown> });

/** A new post-quantum CI identity, put into trellis.yaml as a pull request would (not yet confirmed). */
async function proposeCiRecipient(w: World): Promise<{ file: string; recipient: string }> {
  const next = await newIdentity(true);
  const file = path.join(w.base, 'ci-2.identity');
  fs.writeFileSync(file, `${next.identity}\n`, { mode: 0o600 });
  const cfg = path.join(w.store, 'trellis.yaml');
  fs.writeFileSync(cfg, fs.readFileSync(cfg, 'utf8').replace(/^(\s*ci: )age1\S+$/m, `$1${next.recipient}`));
  return { file, recipient: next.recipient };
}

describe('rekey', () => {
  it('trellis-root rekey: classic → post-quantum; the old identity opens nothing, the new one runs ceremonies; recorded in the root ledger', async () => {
    const w = await classicMesh();
    const newId = path.join(w.base, 'root-2.identity');
    const oldRecipient = /^# recipient: (\S+)$/m.exec(fs.readFileSync(w.rootId, 'utf8'))![1]!;
    const r = await trellisRoot(['rekey', '--identity-out', newId, '--pq'], {
      cwd: w.store,
      env: { TRELLIS_ROOT_IDENTITY_FILE: w.rootId },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(identity(newId)[0]).toMatch(/^AGE-SECRET-KEY-PQ-1/);
    expect(fs.statSync(newId).mode & 0o777).toBe(0o600);
    expect(await opens(newId, w.store, 'bundles/root/root.key.age')).toBe(true);
    expect(await opens(w.rootId, w.store, 'bundles/root/root.key.age')).toBe(false);
    const newRecipient = /^# recipient: (\S+)$/m.exec(fs.readFileSync(newId, 'utf8'))![1]!;
    expect(fs.readFileSync(path.join(w.store, 'trellis.yaml'), 'utf8')).toContain(`- ${newRecipient}\n`);
    const entry = ledger(path.join(w.store, 'bundles/root/ledger.jsonl')).at(-1)!;
    expect(entry.op).toBe('rekey-root');
    expect(entry.details).toMatchObject({
      oldOfflineRecipients: [oldRecipient],
      offlineRecipients: [newRecipient],
      postQuantum: true,
      keys: ['bundles/root/root.key.age'],
    });

    // The next ceremony needs no --confirm-recipients: the root-signed rekey entry recorded them.
    const crl = await trellisRoot(['crl'], { cwd: w.store, env: { TRELLIS_ROOT_IDENTITY_FILE: newId } });
    expect(crl.code, crl.stderr).toBe(0);
    const old = await trellisRoot(['crl'], { cwd: w.store, env: { TRELLIS_ROOT_IDENTITY_FILE: w.rootId } });
    expectRefused(old, 'custody-wrong-identity');
    const v = await trellisRoot(['verify', '--retired-identity', w.rootId], {
      cwd: w.store,
      env: { TRELLIS_ROOT_IDENTITY_FILE: newId },
    });
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/retired-identity the retired identity opens none of the \d+ key file\(s\)/);
    // The control: given an identity that does open a key, verify fails naming the file.
    const c = await trellisRoot(['verify', '--retired-identity', newId], {
      cwd: w.store,
      env: { TRELLIS_ROOT_IDENTITY_FILE: newId },
    });
    expect(c.code).toBe(1);
    expect(c.stdout).toMatch(/retired identity still opens this file.*bundles\/root\/root\.key\.age/);
  });

  it('trellis-root rekey refuses an unconfirmed trellis.yaml, a current recipient and a wrong identity (store unchanged)', async () => {
    const w = await classicMesh();
    const snap = snapshotStore(w.store);
    const current = /^# recipient: (\S+)$/m.exec(fs.readFileSync(w.rootId, 'utf8'))![1]!;
    let r = await trellisRoot(['rekey', '--offline-recipient', current], {
      cwd: w.store,
      env: { TRELLIS_ROOT_IDENTITY_FILE: w.rootId },
    });
    expectRefused(r, 'usage');
    expect(r.stderr, 'names the flag').toMatch(/--offline-recipient: /);
    r = await trellisRoot(['rekey', '--offline-recipient', (await newIdentity()).recipient], {
      cwd: w.store,
      env: { TRELLIS_ROOT_IDENTITY_FILE: w.ciId },
    });
    expectRefused(r, 'custody-wrong-identity');
    expect(snap.now()).toEqual(snap.before);
    await proposeCiRecipient(w);
    const snap2 = snapshotStore(w.store);
    r = await trellisRoot(['rekey', '--offline-recipient', (await newIdentity()).recipient], {
      cwd: w.store,
      env: { TRELLIS_ROOT_IDENTITY_FILE: w.rootId },
    });
    expectRefused(r, 'custody-recipients');
    expect(r.stderr, 'names the file and field').toMatch(/trellis.yaml: recipients: /);
    expect(snap2.now()).toEqual(snap2.before);
  });

  it('trellis-ci rekey: refused until a custodian confirms the new CI recipient, then moves every intermediate key; renew runs on the new identity', async () => {
    const w = await classicMesh();
    const next = await proposeCiRecipient(w);
    const snap = snapshotStore(w.store);
    let r = await trellisCi(['rekey'], { cwd: w.store, env: { TRELLIS_CI_IDENTITY_FILE: w.ciId } });
    expectRefused(r, 'custody-not-confirmed');
    expect(r.stderr, 'names the field and the recipient').toMatch(/recipients\.ci age1pq1\S+ /);
    expect(snap.now()).toEqual(snap.before);

    const confirm = await trellisRoot(['confirm', '--confirm-recipients'], {
      cwd: w.store,
      env: { TRELLIS_ROOT_IDENTITY_FILE: w.rootId },
    });
    expect(confirm.code, confirm.stderr).toBe(0);
    expect(ledger(path.join(w.store, 'bundles/root/ledger.jsonl')).at(-1)!).toMatchObject({
      op: 'confirm-recipients',
      details: { ciRecipient: next.recipient },
    });

    const keys = ageFiles(w.store).filter((f) => !f.startsWith('bundles/root/'));
    expect(keys).toEqual(['bundles/global/intermediate.key.age', 'bundles/us-east-1/intermediate.key.age']);
    const oldCi = /^# recipient: (\S+)$/m.exec(fs.readFileSync(w.ciId, 'utf8'))![1]!;
    r = await trellisCi(['rekey'], { cwd: w.store, env: { TRELLIS_CI_IDENTITY_FILE: w.ciId } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rekeyed 2 intermediate key file\(s\) to age1pq1\S+ \(post-quantum\)/);
    for (const k of keys) {
      expect(await opens(next.file, w.store, k)).toBe(true);
      expect(await opens(w.ciId, w.store, k)).toBe(false);
    }
    for (const scope of ['global', 'us-east-1']) {
      expect(ledger(path.join(w.store, `bundles/${scope}/ledger.jsonl`)).at(-1)!).toMatchObject({
        op: 'rekey',
        details: {
          oldCiRecipients: [oldCi],
          ciRecipient: next.recipient,
          postQuantum: true,
          keys: [`bundles/${scope}/intermediate.key.age`],
        },
      });
    }
    const renew = await trellisCi(['renew'], { cwd: w.store, env: { TRELLIS_CI_IDENTITY_FILE: next.file } });
    expect(renew.code, renew.stderr).toBe(0);
    expect(renew.stdout).toMatch(/mint us-east-1\/api/);
    const v = await trellisCi(['verify', '--retired-identity', w.ciId], {
      cwd: w.store,
      env: { TRELLIS_CI_IDENTITY_FILE: next.file },
    });
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/retired identity opens none/);
    const stale = await trellisCi(['renew', '--force'], { cwd: w.store, env: { TRELLIS_CI_IDENTITY_FILE: w.ciId } });
    expectRefused(stale, 'custody-wrong-identity');
  });

  it('a crash at write points of trellis-ci rekey leaves every key openable by the old or the new identity', async () => {
    const w = await classicMesh();
    const next = await proposeCiRecipient(w);
    expect(
      (
        await trellisRoot(['confirm', '--confirm-recipients'], {
          cwd: w.store,
          env: { TRELLIS_ROOT_IDENTITY_FILE: w.rootId },
        })
      ).code,
    ).toBe(0);
    const countFile = path.join(w.base, 'count.json');
    const dry = path.join(w.base, 'dry');
    fs.cpSync(w.store, dry, { recursive: true });
    expect(
      (
        await trellisCi(['rekey'], {
          cwd: dry,
          env: { TRELLIS_CI_IDENTITY_FILE: w.ciId, TRELLIS_FAULT: 'count', TRELLIS_FAULT_COUNT_FILE: countFile },
        })
      ).code,
    ).toBe(0);
    const { fsync, rename } = JSON.parse(fs.readFileSync(countFile, 'utf8')) as { fsync: number; rename: number };
    expect(fsync + rename).toBeGreaterThan(2);
    let newSeen = 0;
    for (const n of samplePoints(fsync + rename)) {
      const copy = path.join(w.base, `crash-${n}`);
      fs.cpSync(w.store, copy, { recursive: true });
      const crash = await trellisCi(['rekey'], {
        cwd: copy,
        env: { TRELLIS_CI_IDENTITY_FILE: w.ciId, TRELLIS_FAULT: `point:${n}` },
      });
      expect(crash.code, `point ${n}: ${crash.stderr}`).not.toBe(0);
      // The next command takes the lock and completes or discards the journal; then each key opens with one of the two.
      await trellisCi(['status'], { cwd: copy });
      const keys = ageFiles(copy).filter((f) => !f.startsWith('bundles/root/'));
      expect(keys).toHaveLength(2);
      const states = await Promise.all(
        keys.map(async (k) =>
          (await opens(w.ciId, copy, k)) ? 'old' : (await opens(next.file, copy, k)) ? 'new' : 'neither',
        ),
      );
      expect(states, `point ${n}`).not.toContain('neither');
      // One commit: never one scope moved and the other not.
      expect(new Set(states).size, `point ${n}: ${states.join(',')}`).toBe(1);
      if (states[0] === 'new') newSeen++;
    }
    expect(newSeen).toBeGreaterThan(0);
  });

  it('a crash at write points of trellis-root rekey leaves the root key openable by the old or the new identity', async () => {
    const w = await classicMesh();
    const countFile = path.join(w.base, 'count.json');
    const recipientFile = path.join(w.base, 'root-2.identity');
    const next = await newIdentity(true);
    fs.writeFileSync(recipientFile, `${next.identity}\n`);
    const dry = path.join(w.base, 'dry');
    fs.cpSync(w.store, dry, { recursive: true });
    const env = { TRELLIS_ROOT_IDENTITY_FILE: w.rootId };
    expect(
      (
        await trellisRoot(['rekey', '--offline-recipient', next.recipient], {
          cwd: dry,
          env: { ...env, TRELLIS_FAULT: 'count', TRELLIS_FAULT_COUNT_FILE: countFile },
        })
      ).code,
    ).toBe(0);
    const { fsync, rename } = JSON.parse(fs.readFileSync(countFile, 'utf8')) as { fsync: number; rename: number };
    for (const n of samplePoints(fsync + rename)) {
      const copy = path.join(w.base, `crash-${n}`);
      fs.cpSync(w.store, copy, { recursive: true });
      const crash = await trellisRoot(['rekey', '--offline-recipient', next.recipient], {
        cwd: copy,
        env: { ...env, TRELLIS_FAULT: `point:${n}` },
      });
      expect(crash.code, `point ${n}`).not.toBe(0);
      await trellisRoot(['status'], { cwd: copy });
      const old = await opens(w.rootId, copy, 'bundles/root/root.key.age');
      const nu = await opens(recipientFile, copy, 'bundles/root/root.key.age');
      expect(old || nu, `point ${n}`).toBe(true);
      // trellis.yaml names whichever identity opens the key.
      expect(fs.readFileSync(path.join(copy, 'trellis.yaml'), 'utf8').includes(next.recipient), `point ${n}`).toBe(nu);
    }
  });
});
