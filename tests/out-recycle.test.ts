/**
 * Re-minting into an existing output directory frees no inode: each leaf
 * file's new content goes into the spare its previous content left
 * (`.<file>.spare`), the spare takes the name atomically, and the replaced
 * inode becomes the next spare, a replaced key zeroed. Freed inodes and
 * blocks were what made a re-mint cost 2–3× a cold mint on this machine's
 * ext4 (docs/performance.md, "Re-minting an existing store").
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { replaceRecycling, spareOf, writeLeafDir } from '../packages/ci/src/leaf-files.js';
import { FakeMesh } from './helpers/fake-mesh.js';
import { RUN_NOW, at } from './helpers/clock.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-out-recycle-'));
const ino = (p: string) => fs.lstatSync(p).ino;
const zeros = (p: string) => [...fs.readFileSync(p)].every((b) => b === 0);
const dir = (name: string) => fs.mkdtempSync(path.join(work, `${name}-`));

describe('replaceRecycling', () => {
  it('a first write leaves no spare; each later one reuses the previous inode, the content always exactly the new one', () => {
    const f = path.join(dir('seq'), 'cert.pem');
    replaceRecycling(f, 'first, a long content\n', 0o644, false);
    expect(fs.readFileSync(f, 'utf8')).toBe('first, a long content\n');
    expect(fs.existsSync(spareOf(f))).toBe(false);
    const first = ino(f);

    replaceRecycling(f, 'second\n', 0o644, false);
    expect(fs.readFileSync(f, 'utf8')).toBe('second\n');
    // The replaced inode is the spare now, its content untouched (a certificate is public).
    expect(ino(spareOf(f))).toBe(first);
    expect(fs.readFileSync(spareOf(f), 'utf8')).toBe('first, a long content\n');
    const second = ino(f);

    replaceRecycling(f, 'third, longer than the second\n', 0o644, false);
    expect(fs.readFileSync(f, 'utf8')).toBe('third, longer than the second\n');
    // No inode allocated: the file took the spare's, the spare the replaced one.
    expect([ino(f), ino(spareOf(f))]).toEqual([first, second]);
    replaceRecycling(f, '4\n', 0o644, false);
    expect(fs.readFileSync(f, 'utf8')).toBe('4\n');
    expect(fs.statSync(f).size).toBe(2);
    expect(fs.readdirSync(path.dirname(f)).sort()).toEqual(['.cert.pem.spare', 'cert.pem']);
  });

  it('a replaced key is zeroed in its spare, and the key file keeps 0600', () => {
    const f = path.join(dir('key'), 'key.pem');
    replaceRecycling(f, 'KEY ONE\n', 0o600, true);
    replaceRecycling(f, 'KEY TWO\n', 0o600, true);
    expect(fs.readFileSync(f, 'utf8')).toBe('KEY TWO\n');
    expect(fs.statSync(spareOf(f)).size).toBe('KEY ONE\n'.length);
    expect(zeros(spareOf(f))).toBe(true);
    replaceRecycling(f, 'KEY THREE\n', 0o600, true);
    expect(fs.readFileSync(f, 'utf8')).toBe('KEY THREE\n');
    expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    expect(zeros(spareOf(f))).toBe(true);
  });

  it('never writes into a spare that another name shares (a hard link), nor through a symbolic link', () => {
    const d = dir('links');
    const f = path.join(d, 'key.pem');
    replaceRecycling(f, 'KEY ONE\n', 0o600, true);
    replaceRecycling(f, 'KEY TWO\n', 0o600, true);
    const other = path.join(d, 'someone-elses');
    fs.rmSync(spareOf(f));
    fs.writeFileSync(other, 'not ours to change\n');
    fs.linkSync(other, spareOf(f));
    replaceRecycling(f, 'KEY THREE\n', 0o600, true);
    expect(fs.readFileSync(f, 'utf8')).toBe('KEY THREE\n');
    expect(fs.readFileSync(other, 'utf8')).toBe('not ours to change\n');

    const target = path.join(d, 'target');
    fs.writeFileSync(target, 'untouched\n');
    const g = path.join(d, 'cert.pem');
    replaceRecycling(g, 'one\n', 0o644, false);
    fs.symlinkSync(target, spareOf(g));
    replaceRecycling(g, 'two\n', 0o644, false);
    expect(fs.readFileSync(g, 'utf8')).toBe('two\n');
    expect(fs.readFileSync(target, 'utf8')).toBe('untouched\n');
    // No temp file left behind by the fallback path either.
    expect(fs.readdirSync(d).filter((n) => /\.(tmp|old)$/.test(n))).toEqual([]);
  });

  it('a replaced key whose inode another name shares is not zeroed: its spare name is dropped instead', () => {
    const d = dir('shared');
    const f = path.join(d, 'key.pem');
    replaceRecycling(f, 'KEY ONE\n', 0o600, true);
    const other = path.join(d, 'hardlink-to-key');
    fs.linkSync(f, other);
    replaceRecycling(f, 'KEY TWO\n', 0o600, true);
    expect(fs.readFileSync(f, 'utf8')).toBe('KEY TWO\n');
    expect(fs.readFileSync(other, 'utf8')).toBe('KEY ONE\n');
    expect(fs.existsSync(spareOf(f))).toBe(false);
  });

  it('writeLeafDir writes key, cert and chain, the key spare zeroed on the next write', () => {
    const scope = dir('leafdir');
    writeLeafDir(scope, { service: 'api', certPem: 'C1\n', keyPem: 'K1\n' }, 'I\n');
    writeLeafDir(scope, { service: 'api', certPem: 'C2\n', keyPem: 'K2\n' }, 'I\n');
    const d = path.join(scope, 'api');
    expect(['key.pem', 'cert.pem', 'chain.pem'].map((n) => fs.readFileSync(path.join(d, n), 'utf8'))).toEqual([
      'K2\n',
      'C2\n',
      'C2\nI\n',
    ]);
    expect(zeros(spareOf(path.join(d, 'key.pem')))).toBe(true);
    expect(fs.readFileSync(spareOf(path.join(d, 'cert.pem')), 'utf8')).toBe('C1\n');
  });
});

describe('renew re-minting into an existing output directory (worker threads)', () => {
  const NOW = at(RUN_NOW);
  // Past the worker threshold (renew.ts WORKER_MIN_LEAVES): the workers write the files.
  const names = Array.from({ length: 300 }, (_, i) => `svc-${String(i).padStart(4, '0')}`);
  let m: FakeMesh;
  const files = ['key.pem', 'cert.pem', 'chain.pem'];
  const inodes = (which: (f: string) => string) =>
    names.flatMap((s) => files.map((f) => ino(which(m.out('us-east-1', s, f)))));

  beforeAll(async () => {
    m = await FakeMesh.create({ scopes: { global: [], 'us-east-1': names }, now: NOW, leaves: false });
    expect((await m.ci(['renew', '--now', NOW, '--now-ahead', '--quiet'])).code).toBe(0);
    expect((await m.ci(['renew', '--now', NOW, '--now-ahead', '--quiet', '--force'])).code).toBe(0);
  }, 180_000);

  it("a third renew allocates no inode: every file takes its spare's, every spare the replaced one", async () => {
    const files2 = inodes((f) => f);
    const spares2 = inodes(spareOf);
    const r = await m.ci(['renew', '--now', NOW, '--now-ahead', '--quiet', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(inodes((f) => f)).toEqual(spares2);
    expect(inodes(spareOf)).toEqual(files2);
  }, 120_000);

  it('every leaf is whole and its own: the key matches its certificate, the chain is cert + intermediate, the replaced key zeroed', () => {
    const inter = m.read('bundles/us-east-1/intermediate.pem');
    const leaves = m.read('bundles/us-east-1/leaves.yaml');
    for (const s of names) {
      const cert = fs.readFileSync(m.out('us-east-1', s, 'cert.pem'), 'utf8');
      const x = new X509Certificate(cert);
      expect(x.publicKey.export({ format: 'der', type: 'spki' })).toEqual(
        createPublicKey(fs.readFileSync(m.out('us-east-1', s, 'key.pem'), 'utf8')).export({
          format: 'der',
          type: 'spki',
        }),
      );
      expect(leaves).toContain(x.serialNumber.toLowerCase());
      expect(fs.readFileSync(m.out('us-east-1', s, 'chain.pem'), 'utf8')).toBe(cert + inter);
      expect(fs.statSync(m.out('us-east-1', s, 'key.pem')).mode & 0o777).toBe(0o600);
      expect(zeros(spareOf(m.out('us-east-1', s, 'key.pem')))).toBe(true);
      expect(fs.readdirSync(path.dirname(m.out('us-east-1', s, 'key.pem'))).sort()).toEqual([
        '.cert.pem.spare',
        '.chain.pem.spare',
        '.key.pem.spare',
        'cert.pem',
        'chain.pem',
        'key.pem',
      ]);
    }
  });

  it('verify accepts the store, and deploy --wipe-out removes a leaf directory with its spares', async () => {
    expect((await m.ci(['verify', '--now', NOW, '--now-ahead'])).code).toBe(0);
    const { wipeOutDir } = await import('../packages/ci/src/out-dir.js');
    const out = m.path('.trellis/out');
    expect(
      wipeOutDir(
        out,
        names.map((s) => `us-east-1/${s}`),
      ),
    ).toBe(names.length);
    expect(fs.existsSync(path.join(out, 'us-east-1'))).toBe(false);
  });
});
