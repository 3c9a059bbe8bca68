/**
 * The self-contained release (pnpm dist, docs/installing.md): each CLI runs
 * with node alone; two builds of one commit in two directories at two times
 * are byte-identical (and the Action's committed bundle is that build); the
 * SBOM names what went into each bundle; verify-release.sh and the raw
 * ssh-keygen + sha256sum steps accept the signed release and refuse a changed
 * file or another signer; and docs/installing.md's Workstation steps run as written.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as CDX from '@cyclonedx/cyclonedx-library';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/cli.js';
import { buildRelease, noNodeModulesAbove, readManifest, releaseKey, type Manifest } from './helpers/release.js';
import { withoutFaultSeam } from '../scripts/dist/build.mjs';

const isRoot = process.getuid?.() === 0;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-dist-'));
const rel = path.join(work, 'release');
const CLIS = ['trellis-root.mjs', 'trellis-ci.mjs', 'trellis-agent.mjs', 'trellis-drill.mjs'];
let manifest: Manifest;
let release: { key: string; allowed: string };
let stranger: { key: string; allowed: string };
let allowedFile: string;

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const run = async (
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; input?: string } = {},
) => {
  const r = await execa(cmd, args, {
    cwd: opts.cwd ?? work,
    env: { PATH: process.env.PATH!, HOME: work, ...opts.env },
    extendEnv: false,
    reject: false,
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : 'pipe',
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
};
const verifyRelease = (dir: string, allowed = allowedFile) =>
  run('sh', [path.join(REPO, 'scripts/dist/verify-release.sh'), dir, allowed]);

/** A copy of the signed release to damage. */
function copyOfRelease(name: string): string {
  const dir = path.join(work, name);
  fs.cpSync(rel, dir, { recursive: true });
  return dir;
}

beforeAll(() => {
  release = releaseKey(work, 'release-key');
  stranger = releaseKey(work, 'stranger-key');
  allowedFile = path.join(work, 'allowed_signers');
  fs.writeFileSync(allowedFile, release.allowed);
  manifest = buildRelease(rel, { key: release.key });
});

describe('the release pnpm dist writes', () => {
  it('holds the three CLIs, installer.sh, the SBOM, and manifest.json and SHA256SUMS, both signed', () => {
    expect(fs.readdirSync(rel).sort()).toEqual(
      [
        'SHA256SUMS',
        'SHA256SUMS.sig',
        'installer.sh',
        'manifest.json',
        'manifest.json.sig',
        'mint-worker.mjs',
        'drill-probe.mjs',
        'sbom.cdx.json',
        ...CLIS,
      ].sort(),
    );
    expect(manifest.format).toBe('trellis-release/1');
    for (const a of manifest.artifacts) {
      expect(a.sha256, a.file).toBe(sha256(path.join(rel, a.file)));
      expect(a.bytes, a.file).toBe(fs.statSync(path.join(rel, a.file)).size);
    }
    expect(manifest.artifacts.map((a) => a.file).sort()).toEqual(
      ['installer.sh', 'mint-worker.mjs', 'drill-probe.mjs', 'sbom.cdx.json', ...CLIS].sort(),
    );
    expect(manifest.artifacts.find((a) => a.file === 'trellis-ci.mjs')!.needs).toEqual([
      'installer.sh',
      'mint-worker.mjs',
    ]);
    // SHA256SUMS: the same hashes for sha256sum -c, and the manifest's own.
    const sums = fs.readFileSync(path.join(rel, 'SHA256SUMS'), 'utf8');
    expect(sums).toBe(
      [...manifest.artifacts, { file: 'manifest.json', sha256: sha256(path.join(rel, 'manifest.json')) }]
        .map((a) => `${a.sha256}  ${a.file}\n`)
        .join(''),
    );
  });

  it('carries no test-only fault seam: no shipped file reads TRELLIS_FAULT (the inert twin and the stripped installer take its place)', () => {
    for (const f of fs.readdirSync(rel).filter((x) => /\.(mjs|sh)$/.test(x)))
      expect(fs.readFileSync(path.join(rel, f), 'utf8'), f).not.toMatch(/TRELLIS_FAULT/);
    // The seam is still in what the tests run (the tsc build and the installer in the tree), else the crash sweep would
    // test nothing.
    expect(fs.readFileSync(path.join(REPO, 'packages/agent/installer.sh'), 'utf8')).toMatch(/TRELLIS_FAULT/);
    expect(fs.readFileSync(path.join(REPO, 'packages/core/dist/store/fault-seam.js'), 'utf8')).toMatch(/TRELLIS_FAULT/);
    // A fault hook outside the markers fails the build instead of shipping.
    expect(() => withoutFaultSeam('#!/bin/sh\necho "$TRELLIS_FAULT"\n')).toThrow(/outside its fault-seam markers/);
  });

  it('--out replaces an earlier release but refuses to empty any other directory', async () => {
    const precious = path.join(work, 'precious');
    fs.mkdirSync(precious);
    fs.writeFileSync(path.join(precious, 'notes.txt'), 'keep');
    const r = await run('node', [path.join(REPO, 'scripts/dist/build.mjs'), '--out', precious], { cwd: REPO });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${precious}: not empty and not a release (no manifest.json)`);
    expect(fs.readdirSync(precious)).toEqual(['notes.txt']);
  });

  it('names the commit whose sources it was built from: HEAD, or the newest commit before it that changed them', () => {
    const commit = manifest.commit.replace(/-dirty$/, '');
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
    const git = (...a: string[]) => execFileSync('git', a, { cwd: REPO, encoding: 'utf8' });
    git('merge-base', '--is-ancestor', commit, 'HEAD'); // throws if not
    expect(
      git(
        'diff',
        '--name-only',
        commit,
        'HEAD',
        '--',
        'packages',
        ':(exclude)packages/*/test',
        'pnpm-lock.yaml',
        'tsconfig.base.json',
        'scripts/dist/build.mjs',
      ),
    ).toBe('');
    expect(manifest.date).toBe(
      new Date(git('log', '-1', '--format=%cI', commit).trim()).toISOString().replace('.000Z', 'Z'),
    );
  });

  it('each CLI runs with node alone from a scratch directory with no node_modules above it; version prints what the manifest lists', async () => {
    const scratch = path.join(work, 'scratch');
    fs.mkdirSync(scratch);
    for (const f of [...CLIS, 'installer.sh']) fs.copyFileSync(path.join(rel, f), path.join(scratch, f));
    expect(noNodeModulesAbove(scratch)).toBe(true);
    for (const cli of ['trellis-ci.mjs', 'trellis-agent.mjs', 'trellis-drill.mjs']) {
      const help = await run('node', [cli, '--help'], { cwd: scratch });
      expect(help.code, `${cli}: ${help.stderr}`).toBe(0);
      expect(help.stdout).toMatch(/version/);
    }
    for (const cli of CLIS) {
      // version opens no key: trellis-root answers it online too (tests/help.test.ts); the drill runs outside CI.
      const v = await run('node', [cli, 'version'], {
        cwd: scratch,
        env: cli === 'trellis-ci.mjs' || cli === 'trellis-agent.mjs' ? { CI: 'true' } : {},
      });
      expect(v.code, `${cli}: ${v.stderr}`).toBe(0);
      expect(v.stdout).toContain(`commit  ${manifest.commit}`);
      expect(v.stdout).toContain(`sha256  ${manifest.artifacts.find((a) => a.file === cli)!.sha256}`);
      expect(v.stdout).toContain(`file    ${path.join(scratch, cli)}`);
    }
    const refused = await run('node', ['trellis-root.mjs', 'version'], {
      cwd: scratch,
      env: { CI: 'true', TRELLIS_ALLOW_ONLINE: '1' },
    });
    expect(refused.code).toBe(3);
    // Run from the workspace, version says it is no release build rather than invent a digest.
    const dev = await run('node', [path.join(REPO, 'packages/offline/dist/main.js'), 'version'], {
      cwd: scratch,
      env: { TRELLIS_ALLOW_ONLINE: '1' },
    });
    expect(dev.stdout).toBe(
      'trellis-root: not a self-contained build (run from the workspace); build one with pnpm dist',
    ); // execa drops the final newline
  });

  it('trellis-drill.mjs rehearses a recovery with the trellis-root.mjs, trellis-ci.mjs and drill-probe.mjs beside it, no workspace above', async () => {
    const scratch = path.join(work, 'drill');
    fs.mkdirSync(scratch);
    for (const f of [
      'trellis-drill.mjs',
      'trellis-root.mjs',
      'trellis-ci.mjs',
      'drill-probe.mjs',
      'mint-worker.mjs',
      'installer.sh',
    ])
      fs.copyFileSync(path.join(rel, f), path.join(scratch, f));
    expect(noNodeModulesAbove(scratch)).toBe(true);
    const root = path.join(REPO, 'packages/offline/dist/main.js');
    const store = path.join(scratch, 'store');
    const init = await run(
      'node',
      [
        root,
        'init',
        '--store',
        store,
        '--mesh',
        'm',
        '--trust-domain',
        'mesh.example',
        '--ci-identity-out',
        path.join(scratch, 'ci.id'),
      ],
      { env: { TRELLIS_ALLOW_ONLINE: '1' } },
    );
    expect(init.code, init.stderr).toBe(0);
    fs.writeFileSync(path.join(store, 'scopes/us-east-1.yaml'), 'kind: region\nservices:\n  api: {}\n');
    const drill = await run('node', ['trellis-drill.mjs', 'recover', 'us-east-1', '--store', store], { cwd: scratch });
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    expect(drill.stdout).toMatch(/^OK: all \d+ checks across \d+ phases match their expectation/m);
  }, 180_000);

  it('trellis-ci.mjs signs a big renew on worker threads from mint-worker.mjs beside it, and fails loudly without it', async () => {
    const scratch = path.join(work, 'workers');
    fs.mkdirSync(scratch);
    for (const f of ['trellis-ci.mjs', 'installer.sh', 'mint-worker.mjs'])
      fs.copyFileSync(path.join(rel, f), path.join(scratch, f));
    // A 300-service store from the workspace CLIs (renew uses workers from 256 leaves).
    const store = path.join(scratch, 'store');
    const root = path.join(REPO, 'packages/offline/dist/main.js');
    const online = { TRELLIS_ALLOW_ONLINE: '1' };
    const init = await run(
      'node',
      [
        root,
        'init',
        '--store',
        store,
        '--mesh',
        'm',
        '--trust-domain',
        'mesh.example',
        '--ci-identity-out',
        path.join(scratch, 'ci.id'),
      ],
      { env: online },
    );
    expect(init.code, init.stderr).toBe(0);
    fs.writeFileSync(path.join(scratch, 'root.id'), init.stdout, { mode: 0o600 });
    fs.writeFileSync(
      path.join(store, 'scopes/global.yaml'),
      `kind: global\nservices:\n${Array.from({ length: 300 }, (_, i) => `  svc-${i}: {}\n`).join('')}`,
    );
    const cer = await run('node', [root, 'intermediate', '--pending', '--store', store], {
      env: { ...online, TRELLIS_ROOT_IDENTITY_FILE: path.join(scratch, 'root.id') },
    });
    expect(cer.code, cer.stderr).toBe(0);
    const ci = { CI: 'true', TRELLIS_CI_IDENTITY_FILE: path.join(scratch, 'ci.id') };
    const renew = await run('node', ['trellis-ci.mjs', 'renew', '--store', store], { cwd: scratch, env: ci });
    expect(renew.code, renew.stderr).toBe(0);
    expect(renew.stdout).toContain('minted 300 leaves');
    const verify = await run('node', ['trellis-ci.mjs', 'verify', '--store', store], { cwd: scratch, env: ci });
    expect(verify.code, verify.stdout).toBe(0);
    fs.rmSync(path.join(scratch, 'mint-worker.mjs'));
    const without = await run('node', ['trellis-ci.mjs', 'renew', '--force', '--store', store], {
      cwd: scratch,
      env: ci,
    });
    expect(without.code).not.toBe(0);
    expect(without.stderr).toContain('mint-worker');
  }, 120_000);

  it("the SBOM is valid CycloneDX 1.5 (the CycloneDX library's strict JSON schema validator)", async () => {
    const validator = new CDX.Validation.JsonStrictValidator(CDX.Spec.Version.v1dot5);
    expect(await validator.validate(fs.readFileSync(path.join(rel, 'sbom.cdx.json'), 'utf8'))).toBeNull();
    // and it does find fault: a licence id outside SPDX's list
    const broken = fs
      .readFileSync(path.join(rel, 'sbom.cdx.json'), 'utf8')
      .replace('"id": "MIT"', '"id": "NOT-A-LICENCE"');
    expect(await validator.validate(broken)).not.toBeNull();
  });

  it('the SBOM (CycloneDX) names every package in each bundle with the version and licence installed', () => {
    const bom = JSON.parse(fs.readFileSync(path.join(rel, 'sbom.cdx.json'), 'utf8'));
    expect(bom).toMatchObject({
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      metadata: { component: { name: 'trellis', version: manifest.commit } },
    });
    const inBundle = (file: string) =>
      new Set<string>(bom.dependencies.find((d: { ref: string }) => d.ref === file).dependsOn);
    const lib = (ref: string) => bom.components.find((c: { 'bom-ref': string }) => c['bom-ref'] === ref);
    for (const cli of CLIS) {
      // Independently of the metafile: the module paths esbuild writes into the bundle as comments.
      const text = fs.readFileSync(path.join(rel, cli), 'utf8');
      const seen = new Set(
        [...text.matchAll(/^\/\/ node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)].map(
          (m) => m[1],
        ),
      );
      const listed = new Set(
        [...inBundle(cli)].map((ref) => lib(ref).name).filter((n: string) => !n.startsWith('@trellis/')),
      );
      expect([...listed].sort(), cli).toEqual([...seen].sort());
      expect(bom.components.find((c: { name: string }) => c.name === cli).hashes).toEqual([
        { alg: 'SHA-256', content: manifest.artifacts.find((a) => a.file === cli)!.sha256 },
      ]);
    }
    // The custody split shows in the SBOM too: no offline (root-signing) package in trellis-ci or trellis-agent.
    const offline = 'pkg:npm/%40trellis/offline@0.1.0';
    expect(inBundle('trellis-root.mjs').has(offline)).toBe(true);
    expect(inBundle('trellis-ci.mjs').has(offline)).toBe(false);
    expect(inBundle('trellis-agent.mjs').has(offline)).toBe(false);
    // Versions and licences as installed.
    for (const [workspace, name] of [
      ['core', '@peculiar/x509'],
      ['core', 'age-encryption'],
      ['core', 'yaml'],
      ['offline', 'yargs'],
    ]) {
      const pkg = JSON.parse(
        fs.readFileSync(
          path.join(fs.realpathSync(path.join(REPO, 'packages', workspace, 'node_modules', name)), 'package.json'),
          'utf8',
        ),
      );
      const ref = `pkg:npm/${name.replace('@', '%40')}@${pkg.version}`;
      expect(lib(ref), ref).toMatchObject({
        type: 'library',
        name,
        version: pkg.version,
        purl: ref,
        licenses: [{ license: { id: pkg.license } }],
      });
    }
    for (const c of bom.components.filter(
      (x: { type: string; name: string }) => x.type === 'library' && !x.name.startsWith('@trellis/'),
    ))
      expect(c.licenses, c.name).toBeDefined();
  });
});

describe('verifying a release', () => {
  it('verify-release.sh accepts the signed release, naming the signer and the commit', async () => {
    const r = await verifyRelease(rel);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `manifest signed by release@example.org (trellis-release); ${manifest.artifacts.length} file(s) match; ` +
        `commit ${manifest.commit}`,
    );
  });

  const damage: [string, (dir: string) => void, RegExp][] = [
    [
      'a changed artifact',
      (d) => fs.appendFileSync(path.join(d, 'trellis-root.mjs'), '\n'),
      /trellis-root\.mjs: SHA-256 differs from the manifest/,
    ],
    ['a missing artifact', (d) => fs.rmSync(path.join(d, 'installer.sh')), /installer\.sh: missing/],
    [
      'a file the manifest does not list',
      (d) => fs.mkdirSync(path.join(d, 'node_modules')),
      /files the manifest does not list: node_modules/,
    ],
    [
      'a manifest edited after signing',
      (d) =>
        fs.writeFileSync(
          path.join(d, 'manifest.json'),
          fs.readFileSync(path.join(d, 'manifest.json'), 'utf8').replace(/"commit": "[^"]*"/, '"commit": "v9.9.9"'),
        ),
      /manifest\.json: the signature does not verify/,
    ],
    [
      'a changed artifact with SHA256SUMS and the manifest rewritten to match',
      (d) => {
        const f = path.join(d, 'trellis-ci.mjs');
        const old = sha256(f);
        fs.appendFileSync(f, '\n');
        for (const m of ['manifest.json', 'SHA256SUMS'])
          fs.writeFileSync(path.join(d, m), fs.readFileSync(path.join(d, m), 'utf8').replace(old, sha256(f)));
      },
      /the signature does not verify/,
    ],
    [
      'a release signed by another key',
      (d) => {
        for (const m of ['manifest.json', 'SHA256SUMS']) fs.rmSync(path.join(d, `${m}.sig`));
        execFileSync('ssh-keygen', [
          '-q',
          '-Y',
          'sign',
          '-f',
          stranger.key,
          '-n',
          'trellis-release',
          path.join(d, 'manifest.json'),
          path.join(d, 'SHA256SUMS'),
        ]);
      },
      /manifest\.json\.sig: not signed by any key in/,
    ],
    [
      'the release key, but signed for another purpose (namespace)',
      (d) => {
        for (const m of ['manifest.json', 'SHA256SUMS']) fs.rmSync(path.join(d, `${m}.sig`));
        execFileSync('ssh-keygen', [
          '-q',
          '-Y',
          'sign',
          '-f',
          release.key,
          '-n',
          'file',
          path.join(d, 'manifest.json'),
          path.join(d, 'SHA256SUMS'),
        ]);
      },
      /does not verify for namespace trellis-release/,
    ],
    ['an unsigned release', (d) => fs.rmSync(path.join(d, 'manifest.json.sig')), /manifest\.json\.sig: missing/],
  ];
  it.each(damage)('verify-release.sh refuses %s (exit 1, naming it)', async (name, change, why) => {
    const dir = copyOfRelease(name.replace(/\W+/g, '-'));
    change(dir);
    const r = await verifyRelease(dir);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr).toMatch(/^verify-release: REFUSED: /);
    expect(r.stderr).toMatch(why);
    expect(r.stdout).toBe('');
  });

  it('verify-release.sh refuses the genuine release against an allowed-signers file naming another key', async () => {
    const other = path.join(work, 'allowed-stranger');
    fs.writeFileSync(other, stranger.allowed);
    const r = await verifyRelease(rel, other);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not signed by any key in/);
  });

  it('the raw route (ssh-keygen -Y verify, then sha256sum -c) refuses a changed artifact and another signer too', async () => {
    const sig = [
      '-Y',
      'verify',
      '-f',
      allowedFile,
      '-I',
      'release@example.org',
      '-n',
      'trellis-release',
      '-s',
      'SHA256SUMS.sig',
    ];
    const changed = copyOfRelease('raw-changed');
    fs.appendFileSync(path.join(changed, 'trellis-agent.mjs'), '\n');
    expect(
      (await run('ssh-keygen', sig, { cwd: changed, input: fs.readFileSync(path.join(changed, 'SHA256SUMS'), 'utf8') }))
        .code,
    ).toBe(0);
    const sums = await run('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: changed });
    expect(sums.code).toBe(1);
    expect(sums.stdout).toContain('trellis-agent.mjs: FAILED');

    const resigned = copyOfRelease('raw-stranger');
    fs.rmSync(path.join(resigned, 'SHA256SUMS.sig'));
    execFileSync('ssh-keygen', [
      '-q',
      '-Y',
      'sign',
      '-f',
      stranger.key,
      '-n',
      'trellis-release',
      path.join(resigned, 'SHA256SUMS'),
    ]);
    const r = await run('ssh-keygen', sig, {
      cwd: resigned,
      input: fs.readFileSync(path.join(resigned, 'SHA256SUMS'), 'utf8'),
    });
    expect(r.code).not.toBe(0);
  });
});

describe("docs/installing.md's Workstation route", () => {
  it('runs as written: copy from removable media, verify, run (offline, in a loopback-only namespace)', async () => {
    const guide = fs.readFileSync(path.join(REPO, 'docs/installing.md'), 'utf8');
    const section = guide.slice(guide.indexOf('### Workstation'));
    const block = /```sh\n([\s\S]*?)```/.exec(section)![1];
    expect(block).toContain('/media/usb/trellis-release');
    // The guide's paths, moved into the scratch directory.
    const media = path.join(work, 'media');
    const opt = path.join(work, 'opt');
    fs.mkdirSync(path.join(opt), { recursive: true });
    fs.cpSync(rel, path.join(media, 'usb/trellis-release'), { recursive: true });
    const script = block
      .replaceAll('/media/usb/', `${media}/usb/`)
      .replaceAll('/opt/trellis', path.join(opt, 'trellis'))
      .replaceAll('/etc/trellis/allowed_signers', allowedFile);
    const argv = ['bash', '-euo', 'pipefail', '-c', script];
    // Offline as the workstation is (root makes the namespace; elsewhere the online machine opts in).
    const r = isRoot
      ? await run('unshare', ['-n', '--', ...argv])
      : await run(argv[0], argv.slice(1), { env: { TRELLIS_ALLOW_ONLINE: '1' } });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout + r.stderr).toContain('Good "trellis-release" signature for release@example.org');
    for (const a of manifest.artifacts) expect(r.stdout).toContain(`${a.file}: OK`);
    expect(r.stdout).toContain(`sha256  ${manifest.artifacts.find((a) => a.file === 'trellis-root.mjs')!.sha256}`);

    // The same block on a copy whose trellis-root.mjs was changed stops at the check: version never runs.
    fs.rmSync(path.join(opt, 'trellis'), { recursive: true });
    fs.appendFileSync(path.join(media, 'usb/trellis-release/trellis-root.mjs'), '\n');
    const bad = await run('bash', ['-euo', 'pipefail', '-c', script]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toContain('trellis-root.mjs: FAILED');
    expect(bad.stdout).not.toContain('sha256  ');
  });
});

describe('reproducible', () => {
  it('two builds of one commit, in two directories at two times, are byte-identical; the committed action/ bundle is that build', async () => {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
    const outs: string[] = [];
    for (const [i, tz] of [
      ['a', 'UTC'],
      ['b', 'Pacific/Kiritimati'],
    ] as const) {
      // Different depths and names: nothing may depend on the path.
      const clone = path.join(work, `clone-${i}`, 'trellis');
      if (i === 'b') fs.mkdirSync(path.join(work, 'clone-b', 'deeper'), { recursive: true });
      const dir = i === 'b' ? path.join(work, 'clone-b', 'deeper', 'src') : clone;
      execFileSync('git', ['clone', '--quiet', '--no-checkout', REPO, dir]);
      execFileSync('git', ['-C', dir, 'checkout', '--quiet', '--detach', head]);
      const env = { ...process.env, TZ: tz, CI: 'true' }; // pnpm install only: the bundles are made from the sources
      execFileSync('pnpm', ['install', '--offline', '--frozen-lockfile', '--reporter=silent'], {
        cwd: dir,
        env,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const out = path.join(dir, 'dist');
      buildRelease(out, { repo: dir, env: { PATH: process.env.PATH, HOME: work, TZ: tz } });
      outs.push(out);
      if (i === 'a') await new Promise((r) => setTimeout(r, 1100)); // a later second, at least
    }
    const [a, b] = outs;
    expect(
      fs.statSync(path.join(b, 'manifest.json')).mtimeMs - fs.statSync(path.join(a, 'manifest.json')).mtimeMs,
    ).toBeGreaterThan(1000);
    expect(fs.readdirSync(b).sort()).toEqual(fs.readdirSync(a).sort());
    for (const f of fs.readdirSync(a)) expect(sha256(path.join(b, f)), f).toBe(sha256(path.join(a, f)));
    expect(readManifest(a).commit).not.toMatch(/dirty/);

    // The Action runs action/trellis-ci.mjs: it must be exactly this build, or it went stale.
    const stale =
      'action/ is not the build of this commit: commit your source changes, then run `pnpm dist --action ' +
      'action` and commit action/';
    const actionFiles = ['trellis-ci.mjs', 'installer.sh', 'mint-worker.mjs'];
    for (const f of actionFiles)
      expect(sha256(path.join(REPO, 'action', f)), `${f}: ${stale}`).toBe(sha256(path.join(a, f)));
    const m = readManifest(a);
    expect(readManifest(path.join(REPO, 'action')), stale).toEqual({
      ...m,
      artifacts: m.artifacts.filter((x) => actionFiles.includes(x.file)),
    });
  });
});
