/**
 * Reads without a bound, closed by one function (readBounded, store.ts): every
 * store file, identity file, pinned roots file, host state and sealed release
 * is a regular file under its documented limit, refused before it is read;
 * store files are never read through a symbolic link. Each case must end fast
 * (a read of /dev/zero used to never end), with its documented exit code, and
 * leave the store as it was.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { baseEnv, AGENT_BIN, CI_BIN, DRILL_BIN, ROOT_BIN, expectRefused } from './helpers/cli.js';
import { snapshotStore } from './helpers/store-hash.js';
import { newIdentity } from '@trellis/core';

let pristine: FakeMesh;
beforeAll(async () => {
  pristine = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api'] } });
});

const timed = async <T>(fn: () => Promise<T>): Promise<{ r: T; ms: number }> => {
  const t0 = Date.now();
  const r = await fn();
  return { r, ms: Date.now() - t0 };
};

/** trellis-agent install with a throwaway identity: each case here is refused before any identity matters. */
async function agentInstall(bundle: string, dir: string, roots: string) {
  return execa('node', [AGENT_BIN, 'install', '--bundle', bundle, '--dir', dir, '--roots', roots], {
    env: baseEnv({ TRELLIS_AGENT_IDENTITY: (await newIdentity()).identity }) as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 30_000,
  });
}

describe('every read is bounded and of a regular file', () => {
  it.each([
    [
      'a committed crl.pem linked to /dev/zero',
      'bundles/us-east-1/crl.pem',
      (f: string) => fs.symlinkSync('/dev/zero', f),
      /symbolic link/,
    ],
    [
      'a committed crl.pem linked to a file outside the store',
      'bundles/us-east-1/crl.pem',
      (f: string) => fs.symlinkSync('/etc/hostname', f),
      /symbolic link/,
    ],
    [
      'a leaves.yaml of 300 MB (sparse)',
      'bundles/us-east-1/leaves.yaml',
      (f: string) => {
        fs.writeFileSync(f, '');
        fs.truncateSync(f, 300 * 1024 * 1024);
      },
      /over the limit/,
    ],
    [
      'a scope file that is a FIFO',
      'scopes/us-east-1.yaml',
      (f: string) => void execa('mkfifo', [f]).catch(() => undefined),
      /not a regular file/,
    ],
  ])(
    '%s: verify (no identity, as on a pull request) refuses it at once, naming it, the store unchanged',
    async (_, rel, damage, says) => {
      const m = pristine.clone();
      fs.rmSync(m.path(rel));
      await damage(m.path(rel));
      await new Promise((r) => setTimeout(r, 50));
      const snap = snapshotStore(m.dir);
      const { r, ms } = await timed(() => m.ci(['verify'], { TRELLIS_CI_IDENTITY_FILE: undefined }));
      expect(ms).toBeLessThan(20_000);
      expectRefused(r, 'corrupt-store');
      expect(r.stderr, 'names the file').toContain(`corrupt-store: ${rel}: `);
      // Which bound held (a link, a size, a non-regular file): the point of this suite.
      expect(r.stderr).toMatch(says);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
      expect(snap.now()).toEqual(snap.before);
    },
    30_000,
  );

  it.each([['/dev/zero'], ['/dev/urandom']])(
    'TRELLIS_CI_IDENTITY_FILE=%s is refused at once (exit 2)',
    async (dev) => {
      const m = pristine.clone();
      const { r, ms } = await timed(() => m.ci(['renew', '--force'], { TRELLIS_CI_IDENTITY_FILE: dev }));
      expect(ms).toBeLessThan(20_000);
      expectRefused(r, 'bad-identity');
      expect(r.stderr, 'names the file and which bound').toMatch(new RegExp(`${dev}: .*not a regular file`));
    },
    30_000,
  );

  it('an identity file over its limit is refused before it is read', async () => {
    const m = pristine.clone();
    const big = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-big-')), 'id');
    fs.writeFileSync(big, '');
    fs.truncateSync(big, 2 * 1024 * 1024);
    const r = await m.ci(['renew', '--force'], { TRELLIS_CI_IDENTITY_FILE: big });
    expectRefused(r, 'bad-identity');
    expect(r.stderr, 'which bound').toMatch(/over the limit/);
  });

  it.each([
    ['--bundle', '/dev/zero'],
    ['--roots', '/dev/zero'],
  ])(
    'trellis-agent install %s %s is refused at once (exit 2)',
    async (flag, dev) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-agent-bounded-'));
      const args = {
        '--bundle': path.join(dir, 'none.age'),
        '--roots': pristine.path('bundles/root/roots.pem'),
        [flag]: dev,
      };
      fs.writeFileSync(args['--bundle'] === dev ? path.join(dir, 'unused') : args['--bundle'], 'not a bundle\n');
      const { r, ms } = await timed(() => agentInstall(args['--bundle'], path.join(dir, 'svc'), args['--roots']));
      expect(ms).toBeLessThan(20_000);
      expectRefused({ code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }, 'usage');
      // The agent names the file it could not read, the flag as the field at fault, and which bound held.
      expect(String(r.stderr)).toMatch(
        new RegExp(`: /dev/zero: ${flag}: cannot read .*/dev/zero is not a regular file`),
      );
    },
    40_000,
  );

  it('trellis-agent install with a --roots file that holds no certificate names the file and --roots (exit 2)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-agent-roots-'));
    const [bundle, roots] = [path.join(dir, 'api.age'), path.join(dir, 'roots.pem')];
    fs.writeFileSync(bundle, 'not a bundle\n');
    fs.writeFileSync(roots, '');
    const r = await agentInstall(bundle, path.join(dir, 'svc'), roots);
    expectRefused({ code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }, 'usage');
    expect(String(r.stderr)).toContain(`: ${roots}: --roots: holds no root certificate`);
    expect(fs.existsSync(path.join(dir, 'svc')), 'nothing installed').toBe(false);
  });
});

describe('a CLI reads nothing above its working directory', () => {
  // yargs looked up the tree for a package.json at every start (shell/no-find-up.release.ts): a FIFO never ended.
  it.each([ROOT_BIN, CI_BIN, AGENT_BIN, DRILL_BIN].map((bin) => [path.basename(bin), bin]))(
    '%s version, below a package.json that is a FIFO, ends at once',
    async (_name, bin) => {
      const top = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-fifo-up-'));
      await execa('mkfifo', [path.join(top, 'package.json')]);
      const cwd = path.join(top, 'work', 'here');
      fs.mkdirSync(cwd, { recursive: true });
      const { r, ms } = await timed(() =>
        execa('node', [bin, 'version'], {
          cwd,
          env: baseEnv() as NodeJS.ProcessEnv,
          extendEnv: false,
          reject: false,
          stdin: 'ignore',
          timeout: 20_000,
        }),
      );
      expect([r.exitCode, r.timedOut, String(r.stderr)]).toEqual([0, false, '']);
      expect(ms).toBeLessThan(15_000);
    },
    30_000,
  );
});

describe('no secret in the committed tree', () => {
  it.each([
    [
      'a leaf key renew wrote into bundles/',
      'bundles/us-east-1/leak/key.pem',
      (m: FakeMesh) => m.read('.trellis/out/us-east-1/api/key.pem'),
      /a PEM private key/,
    ],
    [
      'the CI identity at the top level',
      'ci.identity',
      (m: FakeMesh) => fs.readFileSync(m.ciIdentityFile, 'utf8'),
      /an age identity/,
    ],
    [
      'an identity pasted into a scope file comment',
      'scopes/us-east-1.yaml',
      (m: FakeMesh) =>
        `# ${fs
          .readFileSync(m.rootIdentityFile, 'utf8')
          .split('\n')
          .find((l) => l.startsWith('AGE-SECRET-KEY'))}\n${m.read('scopes/us-east-1.yaml')}`,
      /an age identity/,
    ],
  ])('verify without any identity names %s (exit 1)', async (_, rel, content, says) => {
    const m = pristine.clone();
    m.write(rel, content(m));
    const r = await m.ci(['verify'], { TRELLIS_CI_IDENTITY_FILE: undefined });
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toContain(rel);
    expect(r.stdout).toMatch(says);
    expect(r.stdout + r.stderr).not.toMatch(
      /AGE-SECRET-KEY-1[0-9A-Z]{20}|BEGIN [A-Z ]*PRIVATE KEY-----\n[A-Za-z0-9+/]/,
    );
  });
  it('the shape of an identity in a document is no identity: the example store verifies clean of secrets', async () => {
    const m = pristine.clone();
    m.write(
      'NOTES.md',
      'the CI identity looks like AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n',
    );
    const r = await m.ci(['verify'], { TRELLIS_CI_IDENTITY_FILE: undefined });
    expect(r.code, r.stdout).toBe(0);
  });
});

describe('plaintext keys go nowhere git commits', () => {
  it.each([
    ['bundles/leak', (m: FakeMesh) => m.path('bundles/leak')],
    ['scopes', (m: FakeMesh) => m.path('scopes')],
    ['the store itself', (m: FakeMesh) => m.dir],
    [
      'a link under .trellis/ that points into bundles/',
      (m: FakeMesh) => {
        fs.mkdirSync(m.path('bundles/leak2'), { recursive: true });
        fs.symlinkSync('../bundles/leak2', m.path('.trellis/elsewhere'));
        return m.path('.trellis/elsewhere/out');
      },
    ],
  ])('renew --out into %s is refused (exit 3), no key written, the store unchanged', async (_, where) => {
    const m = pristine.clone();
    const out = where(m);
    const snap = snapshotStore(m.dir);
    const r = await m.ci(['renew', '--force', '--out', out]);
    expectRefused(r, 'custody-out-dir');
    expect(r.stderr, 'names why').toMatch(/tracked tree/);
    expect(snap.now()).toEqual(snap.before);
  });
  it('renew --out under .trellis/ or outside the store is allowed', async () => {
    const m = pristine.clone();
    expect((await m.ci(['renew', '--force', '--out', m.path('.trellis/other')])).code).toBe(0);
    expect(
      (await m.ci(['renew', '--force', '--out', fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-out-'))])).code,
    ).toBe(0);
  });
});
