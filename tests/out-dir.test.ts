/**
 * Renew's output directory holds plaintext leaf keys: created 0700, a looser
 * one of ours tightened, a link or a file refused with the store unchanged;
 * deploy --wipe-out removes what it delivered once every target succeeded.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { expectRefused, type Reason } from './helpers/cli.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-out-dir-'));
const mode = (p: string) => fs.statSync(p).mode & 0o777;
/** The store's files outside the .trellis work area (which a case below turns into a link). */
const storeFiles = (m: FakeMesh) =>
  Object.fromEntries(
    fs
      .readdirSync(m.dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && !path.relative(m.dir, e.parentPath).startsWith('.trellis'))
      .map((e) => [
        path.relative(m.dir, path.join(e.parentPath, e.name)),
        fs.readFileSync(path.join(e.parentPath, e.name), 'utf8'),
      ]),
  );
let pristine: FakeMesh;

beforeAll(async () => {
  pristine = await FakeMesh.create({ scopes: { global: [], 'us-east-1': ['api', 'web'] } });
});

describe('renew output directory', () => {
  it('the default .trellis/out is created 0700', () => {
    expect(mode(pristine.path('.trellis/out'))).toBe(0o700);
    expect(mode(pristine.out('us-east-1', 'api', 'key.pem'))).toBe(0o600);
  });

  it("a new --out directory is created 0700, and so is revoke's", async () => {
    const m = pristine.clone();
    const out = path.join(work, 'fresh', 'out');
    expect((await m.ci(['renew', '--force', '--out', out])).code).toBe(0);
    expect(mode(out)).toBe(0o700);
    const rev = path.join(work, 'revoke-out');
    expect((await m.ci(['revoke', 'us-east-1/api', '--out', rev])).code).toBe(0);
    expect(mode(rev)).toBe(0o700);
  });

  it('an existing looser directory of ours is tightened to 0700, and renew says so', async () => {
    const m = pristine.clone();
    fs.chmodSync(m.path('.trellis/out'), 0o755);
    const r = await m.ci(['renew', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tightened .*\.trellis\/out from 0755 to 0700: it holds plaintext leaf keys$/m);
    expect(mode(m.path('.trellis/out'))).toBe(0o700);
  });

  it.each([
    [
      '--out that is a symbolic link',
      'custody-out-dir',
      (_m: FakeMesh) => {
        const elsewhere = fs.mkdtempSync(path.join(work, 'elsewhere-'));
        const link = path.join(work, `link-${path.basename(elsewhere)}`);
        fs.symlinkSync(elsewhere, link);
        return { args: ['--out', link], untouched: elsewhere };
      },
      new RegExp(
        /cannot write leaves under .*: it is a symbolic link, and leaf keys would be written wherever it /.source +
          /points\n  → remove the link, or point --out at a real directory/.source,
      ),
    ],
    [
      'a default whose .trellis is a symbolic link out of the store',
      'custody-out-dir',
      (m: FakeMesh) => {
        const elsewhere = fs.mkdtempSync(path.join(work, 'served-'));
        fs.rmSync(m.path('.trellis'), { recursive: true });
        fs.symlinkSync(elsewhere, m.path('.trellis'));
        return { args: [], untouched: elsewhere };
      },
      new RegExp(
        /cannot write leaves under .*\.trellis\/out: it resolves to .* through a symbolic link inside the /.source +
          /store, and leaf keys would leave it/.source,
      ),
    ],
    [
      'a scope directory in the output that links into bundles/ (keys git would commit)',
      'custody-out-dir',
      (m: FakeMesh) => {
        fs.rmSync(m.path('.trellis/out/us-east-1'), { recursive: true, force: true });
        fs.symlinkSync('../../bundles/us-east-1', m.path('.trellis/out/us-east-1'));
        return { args: [], untouched: undefined }; // the store, bundles/ included, stays byte-identical
      },
      new RegExp(
        /cannot write leaves under .*\.trellis\/out: us-east-1 in it is a symbolic link, and leaf keys /.source +
          /would be written wherever it points/.source,
      ),
    ],
    [
      'a service directory in the output that links elsewhere',
      'custody-out-dir',
      (m: FakeMesh) => {
        const elsewhere = fs.mkdtempSync(path.join(work, 'service-'));
        fs.rmSync(m.path('.trellis/out/us-east-1/api'), { recursive: true, force: true });
        fs.symlinkSync(elsewhere, m.path('.trellis/out/us-east-1/api'));
        return { args: [], untouched: elsewhere };
      },
      /cannot write leaves under .*\.trellis\/out: us-east-1\/api in it is a symbolic link/,
    ],
    [
      '--out owned by another user',
      'custody-out-dir',
      () => {
        // The suite runs as root (as the sshd tests do), so it can hand the directory to nobody.
        const theirs = fs.mkdtempSync(path.join(work, 'theirs-'));
        fs.chownSync(theirs, 65534, 65534);
        return { args: ['--out', theirs], untouched: theirs };
      },
      new RegExp(
        /cannot write leaves under .*theirs-\w+: it belongs to uid 65534, not to this user \(uid \d+\), /.source +
          /and its owner could read the leaf keys/.source,
      ),
    ],
    [
      '--out at a file',
      'usage',
      () => {
        const file = path.join(work, 'a-file');
        fs.writeFileSync(file, 'x');
        return { args: ['--out', file], untouched: undefined };
      },
      /cannot write leaves under .*a-file: it is not a directory\n  → point --out at a directory/,
    ],
  ] as [string, Reason, (m: FakeMesh) => { args: string[]; untouched?: string }, RegExp][])(
    'renew refuses %s (%s), the store byte-identical and no key written',
    async (_name, reason, setup, message) => {
      const m = pristine.clone();
      const { args, untouched } = setup(m);
      const before = storeFiles(m);
      expect(Object.keys(before)).toContain(path.join('bundles', 'us-east-1', 'leaves.yaml'));
      const r = await m.ci(['renew', '--force', ...args]);
      expectRefused(r, reason);
      // Which link or owner, and where: the case the reason's sentence is about.
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at .*\.js:\d+/);
      expect(storeFiles(m)).toEqual(before);
      if (untouched)
        expect(fs.readdirSync(untouched, { recursive: true }).filter((f) => String(f).endsWith('.pem'))).toEqual([]);
    },
  );
});

describe("the output directory holds the scope's release", () => {
  const scopeFile = (m: FakeMesh, scope: string, f: string) =>
    fs.readFileSync(m.path(`.trellis/out/${scope}/${f}`), 'utf8');
  /** What deploy would ship for the scope: composed by releaseFor from the store as it stands. */
  const release = async (m: FakeMesh, scope: string) => {
    const { releaseFor } = await import('@trellis/core');
    const { loadMesh } = await import('@trellis/core/store');
    const { openStore } = await import('@trellis/core/shell');
    return releaseFor(loadMesh(openStore(m.dir)), scope);
  };
  const expectRelease = async (m: FakeMesh, scope: string) => {
    const r = await release(m, scope);
    for (const f of ['trust.pem', 'trust.openssl.pem', 'crl.pem'] as const)
      expect(scopeFile(m, scope, f), `${scope}/${f}`).toBe(r[f]);
  };

  it("after a rotation's publish, the next renew brings trust.pem and crl.pem to the release (3 certificates, as bundles/ holds)", async () => {
    const m = pristine.clone();
    expect((await m.root(['rotate', 'intermediate', 'us-east-1'])).code).toBe(0);
    expect(m.read('bundles/us-east-1/trust.pem').match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    const r = await m.ci(['renew']);
    expect(r.code, r.stderr).toBe(0);
    expect(scopeFile(m, 'us-east-1', 'trust.pem').match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    await expectRelease(m, 'us-east-1');
  });

  it("revoke writes the release's CRLs (every trusted scope's, the new revocation included)", async () => {
    const m = pristine.clone();
    expect((await m.ci(['revoke', 'us-east-1/api'])).code).toBe(0);
    await expectRelease(m, 'us-east-1');
  });
});

describe('deploy --wipe-out', () => {
  /**
   * us-east-1/api deployed to a fresh dir target, the directory (and a failing reload, when asked) confirmed in the
   * allow-list.
   */
  const withDir = async (reload?: string) => {
    const m = pristine.clone();
    const dir = fs.mkdtempSync(path.join(work, 'target-'));
    await m.allow({ dir: { paths: [dir] }, ...(reload ? { reload: { failing: reload } } : {}) });
    m.writeScope('us-east-1', [
      { api: { deploy: [{ type: 'dir', path: dir, ...(reload ? { reload: 'failing' } : {}) }] } },
      'web',
    ]);
    return { m, dir };
  };

  it("refuses a leaf whose key is not its certificate's (a write cut short by a power loss): exit 1, naming the file, nothing installed", async () => {
    const { m, dir } = await withDir();
    const key = m.out('us-east-1', 'api', 'key.pem');
    fs.writeFileSync(key, Buffer.alloc(fs.statSync(key).size)); // what a zeroed spare would read as
    const d = await m.ci(['deploy']);
    // Not a refusal: the deploy ran and reports the failed target in its table (stdout), exit 1.
    expect(d.code, d.stdout + d.stderr).toBe(1);
    expect(d.stdout + d.stderr).toMatch(/us-east-1\/api\/key\.pem is not the key of the certificate beside it/);
    expect(d.stdout + d.stderr).toMatch(/renew --force --scope us-east-1/);
    expect(fs.existsSync(path.join(dir, 'current'))).toBe(false);
  });

  it('removes the leaves it delivered once every target succeeded, and keeps the others', async () => {
    const { m, dir } = await withDir();
    const d = await m.ci(['deploy', '--wipe-out']);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^wiped 1 delivered leaf directory from .*\.trellis\/out$/m);
    expect(fs.existsSync(path.join(dir, 'current', 'key.pem'))).toBe(true);
    expect(fs.existsSync(m.path('.trellis/out/us-east-1/api'))).toBe(false);
    // web has no deploy target: its leaf was not delivered, so it stays.
    expect(fs.existsSync(m.out('us-east-1', 'web', 'key.pem'))).toBe(true);
    // The next deploy ships trust and CRLs and keeps the installed leaf.
    const again = await m.ci(['deploy', '--wipe-out']);
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).toMatch(/^unchanged .*no new leaf/m);
  });

  it('keeps everything when a target failed, so a rerun can deliver it', async () => {
    const { m } = await withDir('false');
    const d = await m.ci(['deploy', '--wipe-out']);
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/^kept .*\.trellis\/out: a target failed, and a rerun of deploy needs the leaves$/m);
    expect(fs.existsSync(m.out('us-east-1', 'api', 'key.pem'))).toBe(true);
  });

  it('without the flag, deploy leaves the output alone', async () => {
    const { m } = await withDir();
    expect((await m.ci(['deploy'])).code).toBe(0);
    expect(fs.existsSync(m.out('us-east-1', 'api', 'key.pem'))).toBe(true);
  });
});
