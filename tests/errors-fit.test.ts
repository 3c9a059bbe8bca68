/**
 * Errors that fit where they run: a host has no git, a reserved name is named
 * reserved, two commands never point at each other, a path a user named that
 * cannot be used is bad input (exit 2) and never "internal error", and a
 * directory named on purpose that does not exist is refused, not read as empty.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { newIdentity } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { tool, AGENT_BIN, expectRefused } from './helpers/cli.js';
import { snapshotStore } from './helpers/store-hash.js';
import { at, RUN_NOW } from './helpers/clock.js';

const T0 = at(RUN_NOW);
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-errors-'));
let pristine: FakeMesh;

beforeAll(async () => {
  pristine = await FakeMesh.create({ scopes: { global: [], 'us-east-1': ['api'] }, now: T0 });
});

const noBug = (out: string) =>
  expect(out, 'no internal error, no stack trace').not.toMatch(/internal error|\n\s+at \S/);

describe('errors that fit where they run', () => {
  it('a truncated sealed release: exit 2 on the host, and no word of git (a host has none)', async () => {
    const host = await newIdentity();
    const idFile = path.join(scratch, 'host.identity');
    fs.writeFileSync(idFile, `${host.identity}\n`, { mode: 0o600 });
    const sealed = (await tool('age', ['-a', '-r', host.recipient], { input: '{"release":{}}' })).stdout;
    const bundle = path.join(scratch, 'truncated.age');
    fs.writeFileSync(bundle, `${sealed.slice(0, Math.floor(sealed.length / 2))}\n-----END AGE ENCRYPTED FILE-----\n`);
    const r = await execa(
      'node',
      [
        AGENT_BIN,
        'install',
        '--bundle',
        bundle,
        '--dir',
        path.join(scratch, 'releases'),
        '--roots',
        pristine.path('bundles/root/roots.pem'),
      ],
      {
        env: { PATH: process.env.PATH, TRELLIS_AGENT_IDENTITY_FILE: idFile },
        extendEnv: false,
        reject: false,
        stdin: 'ignore',
      },
    );
    expectRefused({ code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }, 'bad-release');
    expect(r.stderr).not.toMatch(/git/);
    noBug(r.stderr);
  });

  it('scopes/root.yaml is named reserved (bundles/root is the root CA), and no ceremony writes over the root', async () => {
    const m = pristine.clone();
    m.writeScope('root', ['api']);
    const snap = snapshotStore(m.dir);
    const cer = await m.root(['intermediate', '--pending', '--now', T0]);
    expectRefused(cer, 'bad-scope');
    expect(cer.stderr, 'names the file and why').toMatch(/scopes\/root\.yaml: "root" is reserved/);
    expect(snap.now()).toEqual(snap.before);
    const v = await m.ci(['verify', '--now', T0]);
    expectRefused(v, 'bad-scope');
    expect(v.stderr, 'names the file').toMatch(/scopes\/root\.yaml: /);
    const add = await m.ci(['scope', 'add', 'root', '--service', 'api']);
    expectRefused(add, 'bad-scope');
    expect(snap.now()).toEqual(snap.before);
  });

  it('a lost intermediate.pem: intermediate and recover both say to restore it from git, neither sends to the other', async () => {
    const m = pristine.clone();
    fs.rmSync(m.path('bundles/us-east-1/intermediate.pem'));
    const inter = await m.root(['intermediate', 'us-east-1', '--now', T0]);
    const rec = await m.root(['recover', 'us-east-1', '--now', T0]);
    for (const r of [inter, rec]) {
      expectRefused(r, 'corrupt-store');
      expect(r.stderr, 'the hint').toMatch(/git log -- bundles\/us-east-1\/intermediate\.pem/);
      noBug(r.stderr);
    }
    expect(rec.stderr).not.toMatch(/→ trellis-root intermediate/);
  });

  it('deploy with TMPDIR missing: exit 2 naming the path, never "internal error"', async () => {
    const m = pristine.clone();
    const srv = path.join(scratch, 'srv');
    await m.allow({ dir: { paths: [srv] } });
    m.writeScope('us-east-1', [{ api: { deploy: [{ type: 'dir', path: path.join(srv, 'api') }] } }]);
    const r = await m.ci(['deploy', '--type', 'dir', '--now', T0], { TMPDIR: path.join(scratch, 'no-such-tmp') });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/no-such-tmp.*no such file or directory/);
    noBug(r.stdout + r.stderr);
  });

  it('deploy --from a directory that does not exist is refused (exit 2), not read as "no new leaf"', async () => {
    const m = pristine.clone();
    const srv = path.join(scratch, 'srv2');
    await m.allow({ dir: { paths: [srv] } });
    m.writeScope('us-east-1', [{ api: { deploy: [{ type: 'dir', path: path.join(srv, 'api') }] } }]);
    const r = await m.ci(['deploy', '--type', 'dir', '--from', path.join(scratch, 'ouf'), '--now', T0]);
    expectRefused(r, 'usage');
    expect(r.stderr, 'names the flag and the path').toMatch(/--from .*ouf/);
    expect(fs.existsSync(srv), 'nothing shipped').toBe(false);
  });

  it('renew without the CI identity says only that (exit 3): no "mint …" line that reads as done', async () => {
    const m = pristine.clone();
    const r = await m.ci(['renew', '--force', '--now', T0], { TRELLIS_CI_IDENTITY_FILE: undefined });
    expectRefused(r, 'custody-missing-identity');
    expect(r.stdout).not.toMatch(/^mint /m);
    const dry = await m.ci(['renew', '--force', '--dry-run', '--now', T0], { TRELLIS_CI_IDENTITY_FILE: undefined });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^mint us-east-1\/api/m);
  });

  it('after a ceremony the CLI says commit and push, as the README does, and its summary names the command as run', async () => {
    const m = pristine.clone();
    m.writeScope('eu-west-1', ['api']);
    const r = await m.root(['intermediate', 'eu-west-1', '--now', T0]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/commit and push the store/);
    expect(r.stdout, 'the summary names the command as run').toMatch(
      /The ceremony \(`trellis-root intermediate eu-west-1`\) will sign 1 intermediate/,
    );
    expect(r.stdout).not.toMatch(/open a pull request/);
  });

  it('a Kubernetes object name of 247 characters is written (one directory per name part), not "internal error"', async () => {
    const m = pristine.clone();
    const name = `a${'b'.repeat(245)}c`;
    m.writeScope('us-east-1', [{ api: { deploy: [{ type: 'kubernetes', name, namespace: 'mesh' }] } }]);
    const manifests = path.join(scratch, 'k8s');
    const r = await m.ci(['deploy', '--type', 'kubernetes', '--manifests', manifests, '--now', T0]);
    noBug(r.stdout + r.stderr);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fs.existsSync(path.join(manifests, 'us-east-1', 'api', 'mesh', `${name}.yaml`))).toBe(true);
  });
});
