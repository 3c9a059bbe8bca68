/**
 * Split custody of the offline identity: init --shares K-of-N prints shares,
 * never the identity; any K recombine it in memory for a real ceremony; K−1
 * are refused and, combined with the library anyway, do not open the root key
 * with the real age CLI; a damaged or foreign share is refused by name.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { combine } from 'shamir-secret-sharing';
import { describe, expect, it } from 'vitest';
import { REPO, ROOT_BIN, baseEnv, expectRefused, trellisCi, trellisRoot, tool } from './helpers/cli.js';
import { snapshotStore } from './helpers/store-hash.js';

interface Split {
  base: string;
  store: string;
  shares: string[];
}

/** A real mesh whose offline identity exists only as shares, one file per custodian. */
async function splitMesh(spec: string, mesh = 'prod'): Promise<Split> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-shares-'));
  const store = path.join(base, 'store');
  const r = await trellisRoot([
    'init',
    '--store',
    store,
    '--mesh',
    mesh,
    '--trust-domain',
    'mesh.example',
    '--ci-identity-out',
    path.join(base, 'ci.identity'),
    '--shares',
    spec,
  ]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).not.toMatch(/AGE-SECRET-KEY/);
  const blocks = r.stdout.split(/\n(?=# trellis offline root identity, share )/);
  const shares = blocks.map((b, i) => {
    const f = path.join(base, `share-${i + 1}`);
    fs.writeFileSync(f, b.endsWith('\n') ? b : `${b}\n`);
    return f;
  });
  fs.writeFileSync(path.join(store, 'scopes/us-east-1.yaml'), 'kind: region\nservices:\n  api: {}\n');
  return { base, store, shares };
}

const combinations = <T>(xs: T[], k: number): T[][] =>
  k === 0 ? [[]] : xs.flatMap((x, i) => combinations(xs.slice(i + 1), k - 1).map((c) => [x, ...c]));

/** The share's raw bytes, as the library split them (the data field). */
const shareBytes = (file: string) =>
  Uint8Array.from(Buffer.from(/^data: ([0-9a-f]+)$/m.exec(fs.readFileSync(file, 'utf8'))![1]!, 'hex'));

/** Runs the real age CLI on the root key with `identity` (bytes as the combination gave them). */
async function ageOpensRootKey(s: Split, identity: Uint8Array): Promise<{ code: number; stderr: string }> {
  const idFile = path.join(s.base, 'candidate.identity');
  fs.writeFileSync(idFile, Buffer.concat([Buffer.from(identity), Buffer.from('\n')]), { mode: 0o600 });
  const r = await tool('age', ['-d', '-i', idFile, path.join(s.store, 'bundles/root/root.key.age')]);
  fs.rmSync(idFile);
  return { code: r.code, stderr: r.stderr };
}

describe('split custody of the offline identity (init --shares K-of-N)', () => {
  it('2-of-3: init prints 3 checksummed shares; every pair runs a real ceremony, by flag and by env', async () => {
    const s = await splitMesh('2-of-3');
    expect(s.shares).toHaveLength(3);
    const text = fs.readFileSync(s.shares[0]!, 'utf8');
    expect(text).toMatch(/^trellis-share: v1$/m);
    expect(text).toMatch(/^share: 1$\n^of: 3$\n^threshold: 2$\n^recipient: [0-9a-f]{16}$/m);
    expect(text).toMatch(/^check: [0-9a-f]{16}$/m);
    const pairs = combinations(s.shares, 2);
    expect(pairs).toHaveLength(3);
    // The first pair mints the scope's intermediate: a ceremony that opens the root key and signs with it.
    const mint = await trellisRoot(['intermediate', '--pending', '--shares-from', ...pairs[0]!], { cwd: s.store });
    expect(mint.code, mint.stderr).toBe(0);
    expect(mint.stdout).toMatch(/minted \S+ intermediate/);
    for (const [i, pair] of pairs.entries()) {
      const r = await trellisRoot(['crl'], {
        cwd: s.store,
        env: { TRELLIS_ROOT_IDENTITY_SHARES: [...pair].reverse().join(',') },
      });
      expect(r.code, `pair ${i}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/root CRL re-signed/);
    }
    const v = await trellisRoot(['verify', '--shares-from', ...pairs[2]!], { cwd: s.store });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // verify proves root custody with the identity the shares recombine.
    expect(v.stdout).toMatch(/root key opens with the offline identity and matches its certificate/);
  });

  it('3-of-5: a sample of triples opens the root key; two shares are refused (exit 3, store unchanged, nothing echoed)', async () => {
    const s = await splitMesh('3-of-5');
    expect(s.shares).toHaveLength(5);
    const sample = [
      [0, 2, 4],
      [4, 3, 1],
    ].map((ix) => ix.map((i) => s.shares[i]!));
    for (const triple of sample) {
      const r = await trellisRoot(['crl', '--shares-from', ...triple], { cwd: s.store });
      expect(r.code, r.stderr).toBe(0);
    }
    const snap = snapshotStore(s.store);
    for (const pair of [
      [s.shares[0]!, s.shares[3]!],
      [s.shares[1]!, s.shares[1]!, s.shares[4]!],
    ]) {
      const r = await trellisRoot(['crl', '--shares-from', ...pair], { cwd: s.store });
      expectRefused(r, 'custody-missing-identity');
      expect(r.stderr, 'counts the distinct shares').toMatch(/2 distinct share\(s\) of 5 given .*needs 3/);
      for (const f of pair) expect(r.stderr).not.toContain(/^data: (\S{12})/m.exec(fs.readFileSync(f, 'utf8'))![1]);
      expect(r.stderr).not.toMatch(/AGE-SECRET-KEY/);
    }
    expect(snap.now()).toEqual(snap.before);
  });

  it('K−1 shares combined with the library anyway do not open the root key with the real age CLI; K do', async () => {
    const s = await splitMesh('3-of-5');
    // Positive control: three shares give the identity the real age CLI opens the root key with.
    const three = await combine(s.shares.slice(0, 3).map(shareBytes));
    const ok = await ageOpensRootKey(s, three);
    expect(ok.code, ok.stderr).toBe(0);
    for (const pair of combinations(s.shares, 2)) {
      const two = await combine(pair.map(shareBytes));
      expect(Buffer.from(two).equals(Buffer.from(three))).toBe(false);
      const r = await ageOpensRootKey(s, two);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/^age: error:/m);
    }
    // 2-of-3 with one share: the library refuses a combination of one, and the share's bytes are no identity either.
    const t = await splitMesh('2-of-3');
    await expect(combine([shareBytes(t.shares[0]!)])).rejects.toThrow();
    expect((await ageOpensRootKey(t, shareBytes(t.shares[0]!))).code).not.toBe(0);
  });

  it('a tampered share is refused naming it; a re-checksummed forgery and a share of another mesh are refused too', async () => {
    const s = await splitMesh('2-of-3');
    const snap = snapshotStore(s.store);
    const forged = path.join(s.base, 'forged-share');
    // One hex digit of the data changed: the checksum catches it (exit 2, the file named, nothing echoed).
    fs.writeFileSync(
      forged,
      fs
        .readFileSync(s.shares[1]!, 'utf8')
        .replace(/^(data: \S{10})(\S)/m, (_, a: string, c: string) => a + (c === '0' ? '1' : '0')),
    );
    let r = await trellisRoot(['crl', '--shares-from', s.shares[0]!, forged], { cwd: s.store });
    expectRefused(r, 'bad-identity');
    expect(r.stderr, 'names the file and which check').toContain(
      `${forged} is not a trellis identity share: its checksum does not match`,
    );
    expect(r.stderr).not.toMatch(/[0-9a-f]{40}/);
    // The same change with its checksum recomputed (someone who knows the format): recombination proves it wrong (exit
    // 3).
    const { createHash } = await import('node:crypto');
    const body = fs
      .readFileSync(forged, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#') && !l.startsWith('check: '));
    fs.writeFileSync(
      forged,
      `${body.join('\n')}\ncheck: ${createHash('sha256').update(body.join('\n')).digest('hex').slice(0, 16)}\n`,
    );
    r = await trellisRoot(['crl', '--shares-from', s.shares[0]!, forged], { cwd: s.store });
    expectRefused(r, 'custody-wrong-identity');
    expect(r.stderr, 'which check').toMatch(/do not recombine into the identity they name/);
    expect(r.stderr, 'names the file').toContain(forged);
    // A share of another mesh's identity is refused before combining (exit 3), naming it.
    const other = await splitMesh('2-of-3', 'staging');
    r = await trellisRoot(['crl', '--shares-from', s.shares[0]!, other.shares[1]!], { cwd: s.store });
    expectRefused(r, 'custody-wrong-identity');
    expect(r.stderr, 'names the file').toContain(`${other.shares[1]} is a share of another identity`);
    // A file with two shares, and a missing file, are refused naming the file.
    const two = path.join(s.base, 'two-shares');
    fs.writeFileSync(two, fs.readFileSync(s.shares[0]!, 'utf8') + fs.readFileSync(s.shares[1]!, 'utf8'));
    r = await trellisRoot(['crl', '--shares-from', two, s.shares[2]!], { cwd: s.store });
    expectRefused(r, 'bad-identity');
    expect(r.stderr, 'names the file').toContain(
      `${two} is not a trellis identity share: it holds more than one share`,
    );
    expect(snap.now()).toEqual(snap.before);
  });

  it('refuses a bad K-of-N and --shares with --offline-recipient (exit 2, nothing created)', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-shares-'));
    for (const [spec, extra] of [
      ['1-of-3', []],
      ['4-of-3', []],
      ['2-of-3', ['--offline-recipient', 'age1p64zegg666kqxru0yr0ye4u5avxt05phma2caql96lnyn892va6qrpvl9u']],
    ] as const) {
      const r = await trellisRoot([
        'init',
        '--store',
        path.join(base, 'store'),
        '--mesh',
        'prod',
        '--trust-domain',
        'mesh.example',
        '--ci-recipient',
        'age107a3fjz7jecs7adv37xdyjjkpxq6gjy8mtspz0jgrp5xxd6khytqv3ft42',
        '--shares',
        spec,
        ...extra,
      ]);
      expectRefused(r, 'usage');
      expect(r.stderr, 'names the flag').toMatch(/: --shares /);
    }
    expect(fs.readdirSync(base)).toEqual([]);
  });

  it('share files are part of the root identity: trellis-ci refuses TRELLIS_ROOT_IDENTITY_SHARES (exit 3)', async () => {
    const r = await trellisCi(['status'], { env: { TRELLIS_ROOT_IDENTITY_SHARES: '/media/a,/media/b' } });
    expectRefused(r, 'custody-root-identity-in-ci');
    expect(r.stderr, 'names the variable').toMatch(/TRELLIS_ROOT_IDENTITY_SHARES/);
  });
});

describe('shares on stdin (--shares-stdin) and rekey to new share holders (rekey --shares)', () => {
  const dataOf = (file: string) => /^data: ([0-9a-f]+)$/m.exec(fs.readFileSync(file, 'utf8'))![1]!;

  it('typed at a terminal: echo off, a damaged share asked again, K shares run a real ceremony, nothing typed is shown', async () => {
    const s = await splitMesh('2-of-3');
    const crlBefore = fs.readFileSync(path.join(s.store, 'bundles/root/crl.pem'), 'utf8');
    const share1 = fs.readFileSync(s.shares[0]!, 'utf8');
    const damaged = share1.replace(
      /^(data: [0-9a-f]{10})([0-9a-f])/m,
      (_, a: string, d: string) => `${a}${d === '0' ? '1' : '0'}`,
    );
    const prompt = 'type or paste it';
    const env = baseEnv({ TRELLIS_ALLOW_ONLINE: '1' });
    const r = await execa(
      'python3',
      [
        path.join(REPO, 'tests/helpers/on-tty.py'),
        damaged,
        prompt,
        share1,
        prompt,
        fs.readFileSync(s.shares[2]!, 'utf8'),
        prompt,
        '--',
        'node',
        ROOT_BIN,
        '--store',
        s.store,
        'crl',
        '--shares-stdin',
      ],
      { env: env as NodeJS.ProcessEnv, extendEnv: false, reject: false },
    );
    const out = String(r.stdout);
    expect(r.exitCode, out).toBe(0);
    expect(out).toContain('[answered]');
    expect(out).toMatch(/checksum does not match[\s\S]*try again \(2 attempt\(s\) left\)/);
    expect(out).toMatch(/share 1 of 3 read \(1 of the 2 needed\)/);
    expect(out).toMatch(/share 3 of 3 read \(2 of the 2 needed\)/);
    // The terminal never showed a share: neither the line discipline's echo nor trellis printed one back.
    for (const f of s.shares) expect(out).not.toContain(dataOf(f).slice(0, 24));
    expect(out).not.toMatch(/AGE-SECRET-KEY/);
    expect(fs.readFileSync(path.join(s.store, 'bundles/root/crl.pem'), 'utf8')).not.toBe(crlBefore);
  });

  it('piped: share blocks on stdin, also beside a share file; one share alone is refused (exit 3, store unchanged)', async () => {
    const s = await splitMesh('2-of-3');
    const both = await trellisRoot(['crl', '--shares-stdin'], {
      cwd: s.store,
      input: [s.shares[1]!, s.shares[2]!].map((f) => fs.readFileSync(f, 'utf8')).join('\n'),
    });
    expect(both.code, both.stderr).toBe(0);
    const mixed = await trellisRoot(['crl', '--shares-from', s.shares[0]!, '--shares-stdin'], {
      cwd: s.store,
      input: fs.readFileSync(s.shares[2]!, 'utf8'),
    });
    expect(mixed.code, mixed.stderr).toBe(0);
    const snap = snapshotStore(s.store);
    const one = await trellisRoot(['crl', '--shares-stdin'], {
      cwd: s.store,
      input: fs.readFileSync(s.shares[0]!, 'utf8'),
    });
    expectRefused(one, 'custody-missing-identity');
    expect(one.stderr, 'counts the distinct shares').toMatch(
      /1 distinct share\(s\) of 3 given \(1\); the offline identity needs 2/,
    );
    expect(snap.now()).toEqual(snap.before);
    const none = await trellisRoot(['crl', '--shares-stdin'], { cwd: s.store, input: 'nothing here\n' });
    expectRefused(none, 'bad-identity');
    expect(none.stderr, 'names stdin').toMatch(/bad-identity: stdin: /);
  });

  it('rekey --shares 3-of-4 hands the root key to new share holders: the old shares open nothing, any 3 new ones do', async () => {
    const s = await splitMesh('2-of-3');
    const r = await trellisRoot(
      ['rekey', '--shares', '3-of-4', '--shares-from', s.shares[0]!, s.shares[1]!, '--confirm-recipients'],
      { cwd: s.store },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/AGE-SECRET-KEY/);
    expect(r.stdout + r.stderr).toMatch(
      new RegExp(
        /the 4 shares written to stdout \(the terminal, or the file it was redirected to\) are now the /.source +
          /only way into the root key/.source,
      ),
    );
    const fresh = r.stdout.split(/\n(?=# trellis offline root identity, share )/).map((b, i) => {
      const f = path.join(s.base, `new-share-${i + 1}`);
      fs.writeFileSync(f, b.endsWith('\n') ? b : `${b}\n`);
      return f;
    });
    expect(fresh).toHaveLength(4);
    expect(fs.readFileSync(fresh[0]!, 'utf8')).toMatch(/^of: 4$\n^threshold: 3$/m);
    const ledger = fs.readFileSync(path.join(s.store, 'bundles/root/ledger.jsonl'), 'utf8');
    expect(ledger).toMatch(/rekey-root/);
    const old = await trellisRoot(['crl', '--shares-from', s.shares[0]!, s.shares[1]!], { cwd: s.store });
    expectRefused(old, 'custody-wrong-identity');
    const two = await trellisRoot(['crl', '--shares-from', fresh[0]!, fresh[3]!], { cwd: s.store });
    expectRefused(two, 'custody-missing-identity');
    const three = await trellisRoot(['crl', '--shares-from', fresh[0]!, fresh[2]!, fresh[3]!], { cwd: s.store });
    expect(three.code, three.stderr).toBe(0);
    const v = await trellisRoot(['verify'], { cwd: s.store });
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it('rekey --shares whose stdout is a full device rekeys nothing (exit 1, store unchanged, no share printed anywhere)', async () => {
    const s = await splitMesh('2-of-3');
    const snap = snapshotStore(s.store);
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(
        'node',
        [ROOT_BIN, 'rekey', '--shares', '2-of-3', '--shares-from', s.shares[0]!, s.shares[2]!, '--confirm-recipients'],
        {
          cwd: s.store,
          env: baseEnv({ TRELLIS_ALLOW_ONLINE: '1' }) as NodeJS.ProcessEnv,
          stdio: ['ignore', fs.openSync('/dev/full', 'w'), 'pipe'],
        },
      );
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /cannot write the shares of the offline root identity to stdout \(ENOSPC\); the root key was not rekeyed/,
    );
    expect(r.stderr).not.toMatch(/data: [0-9a-f]{8}|AGE-SECRET-KEY/);
    expect(snap.now()).toEqual(snap.before);
    const still = await trellisRoot(['crl', '--shares-from', s.shares[1]!, s.shares[2]!], { cwd: s.store });
    expect(still.code, still.stderr).toBe(0);
  });
});
