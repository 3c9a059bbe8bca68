/**
 * One class of hostile input, closed by one mechanism (core's out-path.ts),
 * checked as a property over generated path shapes through the real commands:
 * a write that follows a link. For every path trellis writes on a user's
 * behalf, a link (at the file, at a directory below the store or the
 * allow-listed directory), a FIFO, a device, a directory where a file goes,
 * and for plaintext keys the store's tracked tree, are refused with the
 * documented exit code: nothing is written where the link points, the store
 * is byte-identical. And a umask of 000 widens no mode trellis creates.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { newIdentity } from '@trellis/core';
import { baseEnv, CI_BIN, ROOT_BIN, expectRefused, trellisRoot, type Reason, type Run } from './helpers/cli.js';
import { FakeMesh } from './helpers/fake-mesh.js';
import { hashTree } from './helpers/store-hash.js';

const RUNS = Number(process.env.TRELLIS_FUZZ_RUNS ?? 4);
/** mknod needs root; the CI runs as root (as the sshd tests do). */
const ROOT = process.getuid?.() === 0;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-out-writes-'));
const mode = (p: string) => fs.statSync(p).mode & 0o777;

type Shape =
  | 'link-to-file'
  | 'link-to-dir'
  | 'dangling-link'
  | 'fifo'
  | 'device'
  | 'directory'
  | 'regular-file'
  | 'linked-parent-in-store'
  | 'linked-child'
  | 'tracked-tree';

/** What a shape planted: the path to hand the flag, and a check that nothing reached what it points at. */
interface Planted {
  at: string;
  untouched: () => void;
}

/**
 * Plants `shape` for a flag that takes a file (`kind` file) or a directory.
 * The victim is a directory elsewhere holding one file: afterwards it must
 * hold exactly that file, unchanged.
 */
function plant(shape: Shape, storeDir: string, name: string, kind: 'file' | 'dir'): Planted {
  const base = fs.mkdtempSync(path.join(work, 'case-'));
  const victim = fs.mkdtempSync(path.join(work, 'victim-'));
  fs.writeFileSync(path.join(victim, 'file'), 'victim\n');
  const victimSame = () => {
    expect(fs.readdirSync(victim)).toEqual(['file']);
    expect(fs.readFileSync(path.join(victim, 'file'), 'utf8')).toBe('victim\n');
  };
  const at = path.join(base, name);
  switch (shape) {
    case 'link-to-file':
      fs.symlinkSync(path.join(victim, 'file'), at);
      return { at, untouched: victimSame };
    case 'link-to-dir':
      fs.symlinkSync(victim, at);
      return { at, untouched: victimSame };
    case 'dangling-link':
      fs.symlinkSync(path.join(victim, 'gone'), at);
      return {
        at,
        untouched: () => {
          victimSame();
          expect(fs.lstatSync(at).isSymbolicLink()).toBe(true);
        },
      };
    case 'fifo':
      execFileSync('mkfifo', [at]);
      return { at, untouched: () => expect(fs.lstatSync(at).isFIFO()).toBe(true) };
    case 'device':
      execFileSync('mknod', [at, 'c', '1', '3']); // what /dev/null is
      return { at, untouched: () => expect(fs.lstatSync(at).isCharacterDevice()).toBe(true) };
    case 'directory':
      fs.mkdirSync(at);
      return { at, untouched: () => expect(fs.readdirSync(at)).toEqual([]) };
    case 'regular-file':
      fs.writeFileSync(at, 'mine\n');
      return { at, untouched: () => expect(fs.readFileSync(at, 'utf8')).toBe('mine\n') };
    case 'linked-parent-in-store': {
      // A link a pull request could commit: the path is inside the store, and leaves it through the link.
      fs.mkdirSync(storeDir, { recursive: true });
      fs.symlinkSync(victim, path.join(storeDir, `l-${name}`));
      return { at: path.join(storeDir, `l-${name}`, kind === 'file' ? 'out' : 'out-dir'), untouched: victimSame };
    }
    case 'linked-child': {
      // A directory the flag names, with the scope's directory inside it a link elsewhere.
      fs.mkdirSync(at);
      fs.symlinkSync(victim, path.join(at, 'us-east-1'));
      return { at, untouched: victimSame };
    }
    case 'tracked-tree': {
      const dir = path.join(storeDir, `t-${name}`);
      return {
        at: kind === 'file' ? path.join(dir, 'id') : dir,
        untouched: () => expect(fs.existsSync(dir)).toBe(false),
      };
    }
  }
}

const NAME = fc.stringMatching(/^[a-z][a-z0-9._-]{0,11}$/);
const FILE_SHAPES: Shape[] = [
  'link-to-file',
  'link-to-dir',
  'dangling-link',
  'fifo',
  'directory',
  'linked-parent-in-store',
  ...(ROOT ? ['device' as const] : []),
];
const DIR_SHAPES: Shape[] = [
  'link-to-dir',
  'dangling-link',
  'fifo',
  'regular-file',
  'linked-parent-in-store',
  'linked-child',
  ...(ROOT ? ['device' as const] : []),
];
const NO_TRACE = /internal error|\n\s+at \S/;

/**
 * The property: for every shape (each one a fixed example, kept whatever
 * fast-check draws) and generated names, the command is refused for
 * `refusal(shape)` (a reason, or a bare exit code where the command reports
 * instead of failing: check's UNKNOWN), names the flag (`says`), leaves the victim and the store as they were.
 */
async function refusesEveryShape(
  shapes: Shape[],
  kind: 'file' | 'dir',
  fresh: () => FakeMesh,
  refusal: (s: Shape) => Reason | 3,
  run: (m: FakeMesh, at: string) => Promise<Run>,
  says: RegExp,
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...shapes), NAME, async (shape, name) => {
      const m = fresh();
      const p = plant(shape, m.dir, name, kind);
      const snap = () => (fs.existsSync(m.dir) ? hashTree(m.dir) : null);
      const before = snap();
      const r = await run(m, p.at);
      const want = refusal(shape);
      if (want === 3) expect(r.code, `${shape} ${name}: ${r.stdout}${r.stderr}`).toBe(3);
      else expectRefused(r, want);
      expect(r.stdout + r.stderr).toMatch(says);
      expect(r.stdout + r.stderr).not.toMatch(NO_TRACE);
      p.untouched();
      expect(snap()).toEqual(before);
    }),
    { numRuns: RUNS + shapes.length, examples: shapes.map((s) => [s, 'a']) },
  );
}

let pristine: FakeMesh;
let hostRecipient: string;
beforeAll(async () => {
  pristine = await FakeMesh.create({ scopes: { global: [], 'us-east-1': ['api', 'web'] } });
  hostRecipient = (await newIdentity()).recipient;
});

/**
 * A clone whose us-east-1/web deploys sealed to web-1 (allow-listed and confirmed), us-east-1/api to a Kubernetes
 * manifest.
 */
async function withDeployTargets(extra: Record<string, unknown>[] = []): Promise<FakeMesh> {
  const m = pristine.clone();
  await m.allow({ sealed: { 'web-1': { recipient: hostRecipient } }, dir: { paths: [work] } });
  m.writeScope('us-east-1', [
    { api: { deploy: [{ type: 'kubernetes', name: 'api-tls', namespace: 'mesh' }, ...extra] } },
    { web: { deploy: [{ type: 'sealed', host: 'web-1' }] } },
  ]);
  return m;
}

describe('a write that follows a link: every writing flag refuses every shape', () => {
  it('report --out: exit 2, the file not written', async () => {
    await refusesEveryShape(
      FILE_SHAPES,
      'file',
      () => pristine.clone(),
      () => 'usage',
      (m, at) => m.ci(['report', '--out', at]),
      /cannot write .*: it is|on the way to it is a symbolic link/,
    );
  }, 240_000);

  it('check --metrics (trellis-ci and trellis-root): UNKNOWN (3), the previous file left', async () => {
    await refusesEveryShape(
      FILE_SHAPES,
      'file',
      () => pristine.clone(),
      () => 3, // check reports UNKNOWN on stdout: no error line
      (m, at) => m.ci(['check', '--metrics', at]),
      /^TRELLIS UNKNOWN .*cannot write the metrics file/m,
    );
    const m = pristine.clone();
    const p = plant('link-to-file', m.dir, 'trellis.prom', 'file');
    const r = await m.root(['check', '--metrics', p.at]);
    expect(r.code, r.stdout).toBe(3);
    p.untouched();
  }, 240_000);

  it('renew --metrics: exit 2 before anything is minted', async () => {
    await refusesEveryShape(
      FILE_SHAPES,
      'file',
      () => pristine.clone(),
      () => 'usage',
      (m, at) => m.ci(['renew', '--force', '--metrics', at]),
      /--metrics: cannot write/,
    );
  }, 240_000);

  it('deploy --sealed-out: exit 2, nothing sealed or delivered', async () => {
    const m0 = await withDeployTargets();
    await refusesEveryShape(
      DIR_SHAPES,
      'dir',
      () => m0.clone(),
      () => 'usage',
      (m, at) => m.ci(['deploy', '--type', 'sealed', '--sealed-out', at]),
      /--sealed-out: cannot write/,
    );
  }, 240_000);

  it('deploy --manifests (plaintext tls.key): a link or the tracked tree exit 3, a non-directory exit 2', async () => {
    const m0 = await withDeployTargets();
    const code = (s: Shape): Reason => (['fifo', 'regular-file', 'device'].includes(s) ? 'usage' : 'custody-out-dir');
    await refusesEveryShape(
      [...DIR_SHAPES, 'tracked-tree'],
      'dir',
      () => m0.clone(),
      code,
      (m, at) => m.ci(['deploy', '--type', 'kubernetes', '--manifests', at]),
      /--manifests/,
    );
  }, 240_000);

  it('bundle --out: exit 2, no trust file written', async () => {
    // spiffe is the format that writes to --out (nginx and haproxy point at a release directory instead).
    await refusesEveryShape(
      DIR_SHAPES.filter((x) => x !== 'linked-child'),
      'dir',
      () => pristine.clone(),
      () => 'usage',
      (m, at) => m.ci(['bundle', 'us-east-1', '--format', 'spiffe', '--out', at]),
      /--out: cannot write/,
    );
  }, 240_000);

  it('trellis-root rekey --identity-out: a link or the tracked tree exit 3, nothing rekeyed', async () => {
    for (const shape of ['link-to-file', 'dangling-link', 'tracked-tree', 'linked-parent-in-store'] as const) {
      const m = pristine.clone();
      const p = plant(shape, m.dir, 'new.identity', 'file');
      const before = hashTree(m.dir);
      const r = await m.root(['rekey', '--identity-out', p.at]);
      expectRefused(r, 'custody-out-dir');
      expect(r.stderr, `${shape}: names the flag`).toMatch(/--identity-out: /);
      p.untouched();
      expect(hashTree(m.dir)).toEqual(before);
    }
  }, 120_000);

  it('trellis-root init --ci-identity-out: a link or the tracked tree exit 3, a non-file exit 2; no store is made', async () => {
    const code = (s: Shape): Reason => (['fifo', 'directory', 'device'].includes(s) ? 'usage' : 'custody-out-dir');
    const stores: string[] = [];
    // The store to be: init's "store byte-identical" is "not made" (a planted link aside).
    const fresh = () => {
      const dir = path.join(fs.mkdtempSync(path.join(work, 'init-')), 'store');
      stores.push(dir);
      return {
        dir,
        clone: () => {
          throw new Error('unused');
        },
      } as unknown as FakeMesh;
    };
    await refusesEveryShape(
      [...FILE_SHAPES, 'tracked-tree'],
      'file',
      fresh,
      code,
      (m, at) =>
        trellisRoot([
          'init',
          '--store',
          m.dir,
          '--mesh',
          'w',
          '--trust-domain',
          'mesh.example',
          '--ci-identity-out',
          at,
        ]),
      /--ci-identity-out/,
    );
    for (const s of stores) expect(fs.existsSync(path.join(s, 'trellis.yaml'))).toBe(false);
  }, 240_000);
});

describe('deploy dir targets: no link below the allow-listed directory', () => {
  /** A clone whose us-east-1/api deploys to `target`, with `root` allow-listed and confirmed. */
  const withDir = async (root: string, target: string) => {
    const m = pristine.clone();
    await m.allow({ dir: { paths: [root] } });
    m.writeScope('us-east-1', [{ api: { deploy: [{ type: 'dir', path: target }] } }, 'web']);
    return m;
  };

  it('a link anywhere below the allowed directory, at the target or its releases/: exit 3, nothing delivered, the store byte-identical', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('parent', 'target', 'releases'), NAME, async (where, name) => {
        const root = fs.mkdtempSync(path.join(work, 'allowed-'));
        const victim = fs.mkdtempSync(path.join(work, 'victim-'));
        const target = where === 'parent' ? path.join(root, name, 'api') : path.join(root, name);
        if (where === 'parent') fs.symlinkSync(victim, path.join(root, name));
        if (where === 'target') fs.symlinkSync(victim, target);
        if (where === 'releases') {
          fs.mkdirSync(target);
          fs.symlinkSync(victim, path.join(target, 'releases'));
        }
        const m = await withDir(root, target);
        const before = hashTree(m.dir);
        const r = await m.ci(['deploy']);
        expectRefused(r, 'custody-not-allowed');
        expect(r.stderr, 'names the file and field').toMatch(
          /scopes\/us-east-1\.yaml: services\.api\.deploy\[0\]\.path: cannot write .* is a symbolic link/,
        );
        expect(fs.readdirSync(victim)).toEqual([]);
        expect(hashTree(m.dir)).toEqual(before);
      }),
      {
        numRuns: RUNS,
        examples: [
          ['parent', 'a'],
          ['target', 'a'],
          ['releases', 'a'],
        ],
      },
    );
  }, 240_000);

  it('a target that is a file or a FIFO: exit 2, left as it was', async () => {
    for (const shape of ['regular-file', 'fifo'] as const) {
      const root = fs.mkdtempSync(path.join(work, 'allowed-'));
      const p = plant(shape, '', 'x', 'dir');
      fs.renameSync(p.at, path.join(root, 'api'));
      const m = await withDir(root, path.join(root, 'api'));
      const r = await m.ci(['deploy']);
      expectRefused(r, 'usage');
      expect(r.stderr, 'names the field').toMatch(/services\.api\.deploy\[0\]\.path: /);
    }
  }, 120_000);

  it("a link to the allowed directory itself is the custodian's: followed", async () => {
    const real = fs.mkdtempSync(path.join(work, 'real-'));
    const root = path.join(work, `root-link-${path.basename(real)}`);
    fs.symlinkSync(real, root);
    const m = await withDir(root, root);
    const r = await m.ci(['deploy']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fs.existsSync(path.join(real, 'current', 'key.pem'))).toBe(true);
  }, 120_000);
});

describe('a file where a directory goes', () => {
  it('report --out and check --metrics under a regular file: exit 2 and UNKNOWN, naming it, no stack', async () => {
    const m = pristine.clone();
    const file = path.join(fs.mkdtempSync(path.join(work, 'case-')), 'plain');
    fs.writeFileSync(file, 'mine\n');
    const r = await m.ci(['report', '--out', path.join(file, 'sub', 'report.html')]);
    expectRefused(r, 'usage');
    expect(r.stderr, 'names the flag and the path').toMatch(/--out: cannot write under .*plain\/sub: /);
    const c = await m.ci(['check', '--metrics', path.join(file, 'trellis.prom')]);
    expect(c.code, c.stdout).toBe(3);
    expect(c.stdout).toMatch(
      /cannot write the metrics file .*: --metrics: cannot write under .*plain: it is a regular file, not a directory/,
    );
    expect(`${r.stderr}${c.stdout}`).not.toMatch(NO_TRACE);
    expect(fs.readFileSync(file, 'utf8')).toBe('mine\n');
  }, 60_000);
});

describe('what the policy still allows', () => {
  it("re-writing its own regular file, through a link above the store (the operator's filesystem)", async () => {
    const m = pristine.clone();
    const real = fs.mkdtempSync(path.join(work, 'served-'));
    const via = path.join(work, `via-${path.basename(real)}`);
    fs.symlinkSync(real, via);
    for (let i = 0; i < 2; i++) {
      const r = await m.ci(['report', '--out', path.join(via, 'report.html')]);
      expect(r.code, r.stderr).toBe(0);
    }
    expect(fs.lstatSync(path.join(real, 'report.html')).isFile()).toBe(true);
    const c = await m.ci(['check', '--metrics', path.join(real, 'trellis.prom')]);
    expect(c.code, c.stdout).toBe(0);
    const again = await m.ci(['check', '--metrics', path.join(real, 'trellis.prom')]);
    expect(again.code, again.stdout).toBe(0);
  }, 120_000);

  it("a plaintext identity under the store's git-ignored .trellis/", async () => {
    const store = path.join(fs.mkdtempSync(path.join(work, 'init-')), 'store');
    const r = await trellisRoot([
      'init',
      '--store',
      store,
      '--mesh',
      'w',
      '--trust-domain',
      'mesh.example',
      '--ci-identity-out',
      path.join(store, '.trellis', 'ci.identity'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(mode(path.join(store, '.trellis', 'ci.identity'))).toBe(0o600);
    expect(fs.readFileSync(path.join(store, '.gitignore'), 'utf8')).toContain('.trellis/');
  }, 120_000);
});

/** Runs a CLI under `umask 000`, as a careless cron job or container might. */
async function underUmask0(bin: string, args: string[], env: Record<string, string | undefined>): Promise<Run> {
  const r = await execa('sh', ['-c', 'umask 000; exec node "$@"', 'sh', bin, ...args], {
    env: baseEnv(env) as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe('umask 000 widens nothing trellis creates', () => {
  it("report and metrics 0644 in 0755 directories; renew's output 0700/0600; sealed 0755/0644; manifests 0700/0600; a dir target 0755", async () => {
    const target = path.join(work, 'umask-target', 'api');
    const m = await withDeployTargets([{ type: 'dir', path: target }]);
    const out = path.join(work, 'umask-out');
    const ci = (args: string[]) =>
      underUmask0(CI_BIN, ['--store', m.dir, ...args], { CI: 'true', TRELLIS_CI_IDENTITY_FILE: m.ciIdentityFile });
    const report = path.join(work, 'umask-report', 'sub', 'report.html');
    expect((await ci(['report', '--out', report])).code).toBe(0);
    expect([mode(report), mode(path.dirname(report)), mode(path.dirname(path.dirname(report)))]).toEqual([
      0o644, 0o755, 0o755,
    ]);
    const prom = path.join(work, 'umask-prom', 'trellis.prom');
    expect((await ci(['check', '--metrics', prom])).code).toBe(0);
    expect([mode(prom), mode(path.dirname(prom))]).toEqual([0o644, 0o755]);
    const renewed = await ci([
      'renew',
      '--force',
      '--out',
      path.join(out, 'leaves'),
      '--metrics',
      path.join(work, 'umask-renew-prom', 'renew.prom'),
    ]);
    expect(renewed.code, renewed.stderr).toBe(0);
    expect(mode(path.join(work, 'umask-renew-prom', 'renew.prom'))).toBe(0o644);
    expect([
      mode(out),
      mode(path.join(out, 'leaves')),
      mode(path.join(out, 'leaves', 'us-east-1')),
      mode(path.join(out, 'leaves', 'us-east-1', 'api')),
      mode(path.join(out, 'leaves', 'us-east-1', 'api', 'key.pem')),
    ]).toEqual([0o700, 0o700, 0o700, 0o700, 0o600]);
    const sealed = path.join(work, 'umask-sealed');
    const manifests = path.join(work, 'umask-k8s');
    const d = await ci([
      'deploy',
      '--from',
      path.join(out, 'leaves'),
      '--sealed-out',
      sealed,
      '--manifests',
      manifests,
    ]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect([
      mode(sealed),
      mode(path.join(sealed, 'us-east-1')),
      mode(path.join(sealed, 'us-east-1', 'web')),
      mode(path.join(sealed, 'us-east-1', 'web', 'web-1.age')),
    ]).toEqual([0o755, 0o755, 0o755, 0o644]);
    expect([
      mode(manifests),
      mode(path.join(manifests, 'us-east-1')),
      mode(path.join(manifests, 'us-east-1', 'api', 'mesh')),
      mode(path.join(manifests, 'us-east-1', 'api', 'mesh', 'api-tls.yaml')),
    ]).toEqual([0o700, 0o700, 0o700, 0o600]);
    expect([mode(path.dirname(target)), mode(target), mode(path.join(target, 'current', 'key.pem'))]).toEqual([
      0o755, 0o755, 0o600,
    ]);
  }, 240_000);

  it('trellis-root init: the identity 0600 in new 0700 directories', async () => {
    const base = fs.mkdtempSync(path.join(work, 'umask-init-'));
    const id = path.join(base, 'media', 'ci.identity');
    const r = await underUmask0(
      ROOT_BIN,
      [
        'init',
        '--store',
        path.join(base, 'store'),
        '--mesh',
        'w',
        '--trust-domain',
        'mesh.example',
        '--ci-identity-out',
        id,
      ],
      { TRELLIS_ALLOW_ONLINE: '1' },
    );
    expect(r.code, r.stderr).toBe(0);
    expect([mode(id), mode(path.dirname(id))]).toEqual([0o600, 0o700]);
  }, 120_000);
});
