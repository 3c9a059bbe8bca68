/**
 * Deploy targets and sealed releases carry the JVM formats (docs/jvm.md): a
 * deploy entry with `formats: [pkcs12]` adds keystore.p12, truststore.p12 and
 * crl.jvm.pem to what its target gets, under the deploy side's password. Checked
 * with the real keytool, a real JSSE handshake on the installed files, and
 * trellis-agent for a sealed host.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { newIdentity } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { AGENT_BIN, REPO, baseEnv, tool } from './helpers/cli.js';
import { jvmArgs, keytoolList } from './helpers/keytool.js';

const PASSWORD = 'deploy side only 42';
const ENV = { TRELLIS_PKCS12_PASSWORD: PASSWORD };
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-jvm-deploy-'));
const current = (dir: string, f: string) => path.join(dir, 'current', f);

let pristine: FakeMesh;
beforeAll(async () => {
  pristine = await FakeMesh.create({ scopes: { global: [], 'us-east-1': ['api', 'web'] } });
}, 120_000);

/** A copy of the mesh whose api and web deploy to `api` and `web` entries, from a confirmed allow-list. */
async function withTargets(
  api: Record<string, unknown>[],
  web: Record<string, unknown>[] = [],
  allow: Record<string, unknown> = {},
): Promise<FakeMesh> {
  const m = pristine.clone();
  m.writeScope('us-east-1', [{ api: { deploy: api } }, { web: { deploy: web } }]);
  await m.allow({ dir: { paths: [root] }, ...allow });
  return m;
}

const keytool = (file: string, extra: string[] = []) => keytoolList(file, PASSWORD, extra);

describe('a dir target with formats: [pkcs12]', () => {
  let m: FakeMesh;
  let apiDir: string;
  let webDir: string;
  let first: { code: number; stdout: string; stderr: string };
  beforeAll(async () => {
    apiDir = path.join(root, 'api');
    webDir = path.join(root, 'web');
    m = await withTargets([{ type: 'dir', path: apiDir, formats: ['pkcs12'] }], [{ type: 'dir', path: webDir }]);
    first = await m.ci(['deploy'], ENV);
  }, 60_000);

  it("installs the keystore of the very leaf and key shipped beside it, the scope's truststore and crl.jvm.pem; keytool reads them", async () => {
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect(first.stdout).toMatch(/installed\s+us-east-1\/api .*PKCS#12/);
    const ks = await keytool(current(apiDir, 'keystore.p12'));
    expect(ks.code, ks.stderr + ks.stdout).toBe(0);
    expect(ks.stdout).toMatch(/^api, .*PrivateKeyEntry/m);
    expect(fs.statSync(current(apiDir, 'keystore.p12')).mode & 0o777).toBe(0o600);
    const ts = await keytool(current(apiDir, 'truststore.p12'));
    expect(ts.code, ts.stderr + ts.stdout).toBe(0);
    expect(ts.stdout.match(/trustedCertEntry/g)).toHaveLength(2); // its own intermediate and global's
    // The keystore holds the key.pem it was shipped beside, not another.
    const pub = (args: string[], input?: string) => tool('openssl', args, input ? { input } : {});
    const fromP12 = await tool('openssl', [
      'pkcs12',
      '-in',
      current(apiDir, 'keystore.p12'),
      '-nocerts',
      '-nodes',
      '-passin',
      `pass:${PASSWORD}`,
    ]);
    expect(fromP12.code, fromP12.stderr).toBe(0);
    const a = await pub(['pkey', '-pubout'], fromP12.stdout);
    const b = await pub(['pkey', '-pubout', '-in', current(apiDir, 'key.pem')]);
    expect(a.stdout).toBe(b.stdout);
    const crl = await m.ci(['bundle', 'us-east-1', '--format', 'crl-jvm']);
    expect(fs.readFileSync(current(apiDir, 'crl.jvm.pem'), 'utf8').trim()).toBe(crl.stdout.trim());
    // Only the entry that asked gets them.
    expect(fs.existsSync(current(webDir, 'keystore.p12'))).toBe(false);
    // The password is the deploy side's: never printed, never in the store.
    expect(first.stdout + first.stderr).not.toContain(PASSWORD);
    expect(JSON.stringify(m.snapshot())).not.toContain(PASSWORD);
  });

  it('a JVM serves and calls with the installed files (JSSE mTLS, revocation on, both directions)', async () => {
    // web's keystore from the same leaf, as `bundle --service` makes it: the client side of the handshake.
    const webKs = path.join(root, 'web.p12');
    const b = await m.ci(['bundle', 'us-east-1', '--format', 'pkcs12', '--service', 'web', '--out', webKs], ENV);
    expect(b.code, b.stderr).toBe(0);
    const classes = path.join(root, 'classes');
    await execa('javac', jvmArgs('javac', ['-d', classes, path.join(REPO, 'tests/jvm/Handshake.java')]));
    const r = await tool('env', [
      `TRELLIS_PKCS12_PASSWORD=${PASSWORD}`,
      'java',
      ...jvmArgs('java', ['-cp', classes, 'Handshake']),
      current(apiDir, 'keystore.p12'),
      webKs,
      current(apiDir, 'truststore.p12'),
      current(apiDir, 'crl.jvm.pem'),
      'authz',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^server: accepted$/m);
    expect(r.stdout).toMatch(/^client: accepted$/m);
  });

  it('the same release again is unchanged: the PKCS#12 files are reproducible under one password', async () => {
    const before = fs.readlinkSync(path.join(apiDir, 'current'));
    const again = await m.ci(['deploy'], ENV);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/unchanged\s+us-east-1\/api/);
    expect(fs.readlinkSync(path.join(apiDir, 'current'))).toBe(before);
  });

  it('without a password it refuses before anything runs (exit 2, naming the scope file and field); the store is unchanged', async () => {
    const fresh = await withTargets([{ type: 'dir', path: path.join(root, 'no-password'), formats: ['pkcs12'] }]);
    const before = fresh.snapshot();
    const r = await fresh.ci(['deploy']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(
        /scopes\/us-east-1\.yaml services\.api\.deploy\[0\]\.formats: \[pkcs12\] needs a store password: /.source +
          /neither --pkcs12-password-file nor TRELLIS_PKCS12_PASSWORD gives one/.source,
      ),
    );
    expect(fs.existsSync(path.join(root, 'no-password'))).toBe(false);
    expect(fresh.snapshot()).toEqual(before);
    // From a file, its first line: the same keystore bytes as from the environment.
    const pw = path.join(root, 'password');
    fs.writeFileSync(pw, `${PASSWORD}\n`, { mode: 0o600 });
    const f = await fresh.ci(['deploy', '--pkcs12-password-file', pw]);
    expect(f.code, f.stderr).toBe(0);
    expect((await keytool(current(path.join(root, 'no-password'), 'keystore.p12'))).code).toBe(0);
  });

  it('a scope file asks only for a known format, once, and only where files land (never a new destination)', async () => {
    const bad = async (entry: Record<string, unknown>, want: RegExp) => {
      const x = pristine.clone();
      x.writeScope('us-east-1', [{ api: { deploy: [entry] } }, 'web']);
      const r = await x.ci(['deploy'], ENV);
      expect(r.code, r.stdout).toBe(2);
      expect(r.stderr).toMatch(want);
    };
    await bad(
      { type: 'dir', path: path.join(root, 'x'), formats: ['jks'] },
      /services\.api\.deploy\[0\]\.formats\[0\]/,
    );
    await bad(
      { type: 'dir', path: path.join(root, 'x'), formats: ['pkcs12', 'pkcs12'] },
      /services\.api\.deploy\[0\]\.formats: names a format twice/,
    );
    await bad({ type: 'kubernetes', name: 'api', formats: ['pkcs12'] }, /services\.api\.deploy\[0\].*formats/);
  });
});

describe('a sealed host with formats: [pkcs12]', () => {
  it('trellis-agent installs the keystore, truststore and crl.jvm.pem the sealed release carries; keytool reads them', async () => {
    const host = await newIdentity();
    const idFile = path.join(root, 'host.identity');
    fs.writeFileSync(idFile, host.identity);
    const m = await withTargets([{ type: 'sealed', host: 'jvm-1', formats: ['pkcs12'] }], [], {
      sealed: { 'jvm-1': { recipient: host.recipient } },
    });
    const out = path.join(root, 'sealed');
    const d = await m.ci(['deploy', '--sealed-out', out], ENV);
    expect(d.code, d.stderr + d.stdout).toBe(0);
    const roots = path.join(root, 'roots.pem');
    fs.writeFileSync(roots, m.read('bundles/root/roots.pem'));
    const dir = path.join(root, 'agent-jvm');
    const r = await execa(
      'node',
      [
        AGENT_BIN,
        'install',
        '--bundle',
        path.join(out, 'us-east-1', 'api', 'jvm-1.age'),
        '--dir',
        dir,
        '--roots',
        roots,
      ],
      { env: baseEnv({ TRELLIS_AGENT_IDENTITY_FILE: idFile }) as NodeJS.ProcessEnv, extendEnv: false, reject: false },
    );
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect((await keytool(current(dir, 'keystore.p12'))).stdout).toMatch(/^api, .*PrivateKeyEntry/m);
    expect((await keytool(current(dir, 'truststore.p12'))).stdout.match(/trustedCertEntry/g)).toHaveLength(2);
    expect(fs.readFileSync(current(dir, 'crl.jvm.pem'), 'utf8')).toMatch(/^-----BEGIN X509 CRL-----/);
  });
});
