/**
 * The large-renew path through the real CLI: worker threads sign and write a
 * batch big enough to use them (from the built dist), OpenSSL and Go judge
 * every leaf, the per-scope output layout, and progress on stderr: a line
 * mode for logs, a bar on a terminal, nothing when quiet.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCertificate, releaseFor } from '@trellis/core';
import { loadMesh } from '@trellis/core/store';
import { openStore } from '@trellis/core/shell';
import os from 'node:os';
import { wipeOutDir } from '../packages/ci/src/out-dir.js';
import { outputBarrier } from '../packages/ci/src/out-write.js';
import {
  LineProgress,
  NO_PROGRESS,
  PROGRESS_MIN_LEAVES,
  progressFor,
  progressMode,
} from '../packages/ci/src/progress.js';
import { FakeMesh } from './helpers/fake-mesh.js';
import { RUN_NOW, at } from './helpers/clock.js';

const REPO = path.resolve(__dirname, '..');
const GOBATCH = path.join(REPO, 'scripts/gobatch/gobatch');
const NOW = at(RUN_NOW);
/** Past the threshold above which renew signs on worker threads (renew.ts WORKER_MIN_LEAVES). */
const N = 300;
const names = Array.from({ length: N }, (_, i) => `svc-${String(i).padStart(4, '0')}`);
let m: FakeMesh;

beforeAll(async () => {
  m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': names }, now: NOW, leaves: false });
}, 120_000);

describe('a renew of a few hundred leaves', () => {
  let renew: Awaited<ReturnType<FakeMesh['ci']>>;
  beforeAll(async () => {
    renew = await m.ci(['renew', '--now', NOW, '--now-ahead', '--progress']);
  }, 120_000);

  it('mints every leaf, each directory holding its key (0600), cert and chain, the trust and CRL once per scope', () => {
    expect(renew.code, renew.stderr).toBe(0);
    expect(renew.stdout).toContain(`minted ${N + 1} leaves`);
    const inter = m.read('bundles/us-east-1/intermediate.pem');
    for (const s of names) {
      const dir = m.path(`.trellis/out/us-east-1/${s}`);
      expect(fs.readdirSync(dir).sort()).toEqual(['cert.pem', 'chain.pem', 'key.pem']);
      expect(fs.statSync(path.join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(path.join(dir, 'chain.pem'), 'utf8')).toBe(
        fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') + inter,
      );
    }
    expect(fs.readFileSync(m.path('.trellis/out/us-east-1/trust.pem'), 'utf8')).toBe(
      m.read('bundles/us-east-1/trust.pem'),
    );
    // The release's crl.pem: the CRLs of every scope it trusts, its own included.
    expect(fs.readFileSync(m.path('.trellis/out/us-east-1/crl.pem'), 'utf8')).toBe(
      releaseFor(loadMesh(openStore(m.dir)), 'us-east-1')['crl.pem'],
    );
    expect(fs.readFileSync(m.path('.trellis/out/us-east-1/crl.pem'), 'utf8')).toContain(
      m.read('bundles/us-east-1/crl.pem'),
    );
    // No temp file of the workers is left behind.
    expect(
      fs.readdirSync(m.path('.trellis/out/us-east-1'), { recursive: true }).filter((f) => String(f).includes('.tmp')),
    ).toEqual([]);
  });

  it('verify accepts the store the workers wrote (records proven by the ledger)', async () => {
    const v = await m.ci(['verify', '--now', NOW, '--now-ahead']);
    expect(v.code, v.stdout).toBe(0);
  });

  it("Go accepts every leaf against its scope's bundle, and OpenSSL -x509_strict a sample as client and as server", () => {
    const bundle = m.path('bundles/us-east-1/trust.pem');
    const root = m.path('bundles/root/roots.pem');
    const lines = names.map((s) => `${bundle}\t${m.out('us-east-1', s, 'chain.pem')}\t${NOW}`);
    const go = execFileSync(GOBATCH, { input: `${lines.join('\n')}\n`, encoding: 'utf8' })
      .trim()
      .split('\n');
    expect(go.filter((l) => l !== 'OK')).toEqual([]);
    expect(go).toHaveLength(N);
    const at = String(Math.floor(Date.parse(NOW) / 1000));
    for (const s of [names[0]!, names[150]!, names[N - 1]!]) {
      for (const purpose of ['sslclient', 'sslserver']) {
        const r = spawnSync(
          'openssl',
          [
            'verify',
            '-x509_strict',
            '-purpose',
            purpose,
            '-attime',
            at,
            '-CAfile',
            root,
            '-untrusted',
            m.path('bundles/us-east-1/intermediate.pem'),
            m.out('us-east-1', s, 'cert.pem'),
          ],
          { encoding: 'utf8' },
        );
        expect(r.status, `${s} ${purpose}: ${r.stdout}${r.stderr}`).toBe(0);
      }
    }
  });

  it('every leaf has its own key and serial', () => {
    const keys = new Set(names.map((s) => fs.readFileSync(m.out('us-east-1', s, 'key.pem'), 'utf8')));
    const serials = new Set(
      names.map((s) => parseCertificate(fs.readFileSync(m.out('us-east-1', s, 'cert.pem'), 'utf8')).serialNumber),
    );
    expect([keys.size, serials.size]).toEqual([N, N]);
  });

  it('--progress off a terminal prints progress lines on stderr, stdout keeps the plan and the result', () => {
    expect(renew.stderr).toMatch(
      new RegExp(`^renew: signed ${N + 1}/${N + 1} leaves \\(100%\\) in \\d+\\.\\d s, \\d+ leaves/s$`, 'm'),
    );
    expect(renew.stdout).not.toMatch(/renew: signed/);
  });

  it('--quiet prints nothing on stderr; --quiet with --progress is refused (exit 2) and writes nothing', async () => {
    const q = await m.ci(['renew', '--now', NOW, '--now-ahead', '--force', '--scope', 'us-east-1', '--quiet']);
    expect(q.code, q.stderr).toBe(0);
    expect(q.stderr).toBe('');
    const before = m.read('bundles/us-east-1/leaves.yaml');
    const both = await m.ci(['renew', '--now', NOW, '--now-ahead', '--force', '--quiet', '--progress']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--quiet and --progress contradict each other/);
    expect(m.read('bundles/us-east-1/leaves.yaml')).toBe(before);
  });

  it('a small renew shows no progress unless asked', async () => {
    const r = await m.ci(['renew', '--now', NOW, '--now-ahead', '--force', '--scope', 'global']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });
});

describe('progress', () => {
  it('off a terminal, one line every interval while signing and one at the end', () => {
    const out: string[] = [];
    let t = 0;
    const p = new LineProgress({ write: (s: string) => out.push(s) }, 5000, () => t);
    p.start(1000);
    for (let i = 0; i < 10; i++) {
      t += 1500;
      p.tick(100);
    }
    p.stop();
    // Ticks at 1.5 s steps: lines once 5 s have passed since the last (at 6 s and 12 s), none at 15 s when all is done
    // but stop's.
    expect(out).toEqual([
      'renew: signed 400/1000 leaves (40%) in 6.0 s, 67 leaves/s\n',
      'renew: signed 800/1000 leaves (80%) in 12.0 s, 67 leaves/s\n',
      'renew: signed 1000/1000 leaves (100%) in 15.0 s, 67 leaves/s\n',
    ]);
  });

  it.each([
    ['quiet', { quiet: true, isTTY: true }, 'none'],
    ['a terminal', { isTTY: true }, 'bar'],
    ['a log (not a terminal)', { isTTY: false }, 'lines'],
  ] as const)('on %s the mode is %s', (_, o, want) => expect(progressMode(o)).toBe(want));

  it('a run below the threshold shows none unless forced; quiet shows none even when forced', () => {
    expect(progressFor('lines', PROGRESS_MIN_LEAVES - 1, false)).toBe(NO_PROGRESS);
    expect(progressFor('lines', PROGRESS_MIN_LEAVES - 1, true)).toBeInstanceOf(LineProgress);
    expect(progressFor('none', 10 * PROGRESS_MIN_LEAVES, true)).toBe(NO_PROGRESS);
  });

  it('on a terminal, a live bar (cli-progress) redrawn in place', () => {
    const tty = Object.assign(new PassThrough(), { isTTY: true, columns: 100 });
    let text = '';
    tty.on('data', (c) => (text += String(c)));
    const p = progressFor('bar', 2000, false, tty as unknown as NodeJS.WritableStream);
    p.start(2000);
    p.tick(1000);
    p.tick(1000);
    p.stop();
    expect(text).toMatch(/renew \[[█░]+\] 100% \| 2000\/2000 leaves/);
    expect(text).toMatch(/\x1b\[/); // cursor control: the bar redraws its line
  });
});

describe('the output directory', () => {
  const scratch = () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'renew-scale-out-'));
    fs.mkdirSync(path.join(out, 's'));
    for (const f of ['trust.pem', 'trust.openssl.pem', 'crl.pem']) fs.writeFileSync(path.join(out, 's', f), 'x');
    for (const svc of ['a', 'b']) {
      fs.mkdirSync(path.join(out, 's', svc));
      fs.writeFileSync(path.join(out, 's', svc, 'key.pem'), 'k');
    }
    return out;
  };

  it("deploy --wipe-out keeps a scope's trust and CRL while a leaf is left, and removes them with its last leaf", () => {
    const out = scratch();
    expect(wipeOutDir(out, ['s/a'])).toBe(1);
    expect(fs.readdirSync(path.join(out, 's')).sort()).toEqual(['b', 'crl.pem', 'trust.openssl.pem', 'trust.pem']);
    expect(wipeOutDir(out, ['s/b'])).toBe(1);
    expect(fs.existsSync(path.join(out, 's'))).toBe(false);
  });

  it('deploy --wipe-out leaves a scope directory holding a file that is not ours', () => {
    const out = scratch();
    fs.writeFileSync(path.join(out, 's', 'notes.txt'), 'mine');
    wipeOutDir(out, ['s/a', 's/b']);
    expect(fs.readdirSync(path.join(out, 's'))).toEqual(['notes.txt']);
  });

  it('without sync -f, the barrier fsyncs every file it is given (a missing one fails it)', () => {
    const out = scratch();
    const saved = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(() =>
        outputBarrier(out, [path.join(out, 's', 'a', 'key.pem'), path.join(out, 's', 'trust.pem')]),
      ).not.toThrow();
      expect(() => outputBarrier(out, [path.join(out, 's', 'gone.pem')])).toThrow(/ENOENT/);
    } finally {
      process.env.PATH = saved;
    }
  });
});
