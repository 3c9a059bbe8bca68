/**
 * One anchor per file: bundles/<scope>/capath/<subject-hash>.<n> (OpenSSL's
 * trusted form, for CApath) and bundles/<scope>/anchors/*.pem (plain PEM), as
 * OpenSSL's own -subject_hash, `openssl verify -CApath`, haproxy with one
 * anchor file per directive, and Go read them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_HOST_POLICY,
  decryptWith,
  newIdentity,
  openSealedRelease,
  parseCertificate,
  parseCertificates,
  releaseFor,
  sealRelease,
  subjectHash,
  trustOpensslPem,
  caKeyFromPem,
} from '@trellis/core';
import { Store, loadMesh } from '@trellis/core/store';
import { FakeMesh } from './helpers/fake-mesh.js';
import { goverify, tool } from './helpers/cli.js';
import { freePort, request, waitForPort, type Client } from './helpers/servers.js';
import { RUN_NOW, at } from './helpers/clock.js';

const NOW = at(RUN_NOW);
const ATTIME = String(Date.parse(NOW) / 1000 + 3600);
const SPEC = { global: ['control'], 'us-east-1': ['api'], 'eu-west-1': ['api'] };
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-anchors-'));
const stops: (() => void)[] = [];
let m: FakeMesh;

beforeAll(async () => {
  m = await FakeMesh.create({ scopes: SPEC, now: NOW });
});
afterAll(() => stops.forEach((s) => s()));

const ls = (mesh: FakeMesh, rel: string) =>
  fs.existsSync(mesh.path(rel)) ? fs.readdirSync(mesh.path(rel)).sort() : [];
const opensslHash = async (file: string) =>
  (await tool('openssl', ['x509', '-in', file, '-noout', '-subject_hash'])).stdout.trim();
const fp = async (file: string) =>
  (await tool('openssl', ['x509', '-in', file, '-noout', '-fingerprint', '-sha256'])).stdout.trim();
const verifyCapath = (dir: string, scope: string, service: string, purpose: 'sslclient' | 'sslserver', mesh = m) =>
  tool('openssl', [
    'verify',
    '-x509_strict',
    '-attime',
    ATTIME,
    '-purpose',
    purpose,
    '-CApath',
    dir,
    '-untrusted',
    mesh.path(`bundles/${scope}/intermediate.pem`),
    mesh.out(scope, service, 'cert.pem'),
  ]);

describe("the subject hash is OpenSSL's X509_NAME_hash", () => {
  const subjects: [string, string[]][] = [
    ['a plain name', ['-subj', '/O=trellis/CN=us-east-1 intermediate']],
    [
      'upper case, inner runs of spaces, leading and trailing spaces',
      ['-subj', '/O=  TreLLis   Mesh  /OU=US-EAST-1/CN=Intermediate   20261201T2255Z '],
    ],
    ['an IA5String emailAddress and a country', ['-subj', '/C=DE/emailAddress=Ops@Example.COM/CN=x']],
    ['a multi-valued RDN', ['-multivalue-rdn', '-subj', '/O=trellis/CN=b+OU=a']],
    ['UTF-8 text outside ASCII (not lowercased)', ['-utf8', '-subj', '/O=Ünïcode ÄÖ/CN=Straße']],
    ['a tab and a newline in a value', ['-subj', '/CN=a\tb\nc']],
  ];
  it.each(subjects)('%s', async (_, subj) => {
    const dir = fs.mkdtempSync(path.join(scratch, 'subj-'));
    const r = await tool('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      path.join(dir, 'k'),
      '-out',
      path.join(dir, 'c.pem'),
      '-days',
      '1',
      ...subj,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(subjectHash(parseCertificate(fs.readFileSync(path.join(dir, 'c.pem'), 'utf8')))).toBe(
      await opensslHash(path.join(dir, 'c.pem')),
    );
  });
  it('and of every intermediate of the store', async () => {
    for (const s of Object.keys(SPEC)) {
      const f = m.path(`bundles/${s}/intermediate.pem`);
      expect(subjectHash(parseCertificate(m.read(`bundles/${s}/intermediate.pem`)))).toBe(await opensslHash(f));
    }
  });
});

describe('each scope holds its bundle one anchor per file', () => {
  it.each(Object.keys(SPEC))(
    "%s: capath/<hash>.0 and anchors/*.pem are regular files, one anchor each, exactly trust.pem's",
    async (scope) => {
      const trustFps =
        m.read(`bundles/${scope}/trust.pem`).match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g) ??
        [];
      const want = await Promise.all(
        trustFps.map((pem, i) => {
          const f = path.join(scratch, `${scope}-${i}.pem`);
          fs.writeFileSync(f, pem);
          return fp(f);
        }),
      );
      const capath = ls(m, `bundles/${scope}/capath`);
      const anchors = ls(m, `bundles/${scope}/anchors`);
      expect(capath).toHaveLength(want.length);
      expect(anchors).toHaveLength(want.length);
      for (const name of capath) {
        const f = m.path(`bundles/${scope}/capath/${name}`);
        expect(fs.lstatSync(f).isFile()).toBe(true); // not a symlink
        expect(name).toMatch(/^[0-9a-f]{8}\.0$/);
        expect(name.split('.')[0]).toBe(await opensslHash(f));
        const text = fs.readFileSync(f, 'utf8');
        expect(text.match(/BEGIN TRUSTED CERTIFICATE/g)).toHaveLength(1);
        expect((await tool('openssl', ['x509', '-in', f, '-noout', '-ext', 'basicConstraints'])).code).toBe(0);
        // The trust trailer: OpenSSL reads it as trusted for both purposes.
        expect(
          (
            await tool('openssl', [
              'x509',
              '-in',
              f,
              '-noout',
              '-text',
              '-certopt',
              'no_pubkey,no_sigdump,no_extensions',
            ])
          ).stdout,
        ).toMatch(/Trusted Uses:\s*\n\s*TLS Web Client Authentication, TLS Web Server Authentication/);
      }
      for (const name of anchors) {
        const f = m.path(`bundles/${scope}/anchors/${name}`);
        expect(fs.lstatSync(f).isFile()).toBe(true);
        expect(fs.readFileSync(f, 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
      }
      expect((await Promise.all(capath.map((n) => fp(m.path(`bundles/${scope}/capath/${n}`))))).sort()).toEqual(
        [...want].sort(),
      );
      expect((await Promise.all(anchors.map((n) => fp(m.path(`bundles/${scope}/anchors/${n}`))))).sort()).toEqual(
        [...want].sort(),
      );
    },
  );
});

describe('openssl verify -CApath keeps the regional boundary', () => {
  const table: [string, string, string, 'sslclient' | 'sslserver', boolean][] = [
    ['us-east-1', 'us-east-1', 'api', 'sslclient', true],
    ['us-east-1', 'us-east-1', 'api', 'sslserver', true],
    ['us-east-1', 'global', 'control', 'sslclient', true],
    ['us-east-1', 'eu-west-1', 'api', 'sslclient', false],
    ['eu-west-1', 'us-east-1', 'api', 'sslserver', false],
    ['global', 'eu-west-1', 'api', 'sslclient', true],
    ['global', 'us-east-1', 'api', 'sslserver', true],
  ];
  it.each(table)("%s's capath judging %s/%s (%s): %s", async (verifier, scope, service, purpose, ok) => {
    const r = await verifyCapath(m.path(`bundles/${verifier}/capath`), scope, service, purpose);
    if (ok) expect(r.code, r.stderr).toBe(0);
    else expect(r.stderr).toMatch(/error 20 at 1 depth lookup/);
  });
  it('a CApath of the same certificates as plain PEM is refused: the trusted form is what makes an intermediate an anchor', async () => {
    const plain = path.join(scratch, 'plain-capath');
    fs.mkdirSync(plain);
    for (const n of ls(m, 'bundles/us-east-1/capath')) {
      const r = await tool('openssl', [
        'x509',
        '-in',
        m.path(`bundles/us-east-1/capath/${n}`),
        '-out',
        path.join(plain, n),
      ]);
      expect(r.code).toBe(0);
    }
    const r = await verifyCapath(plain, 'us-east-1', 'api', 'sslclient');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/error (2|20) at 1 depth lookup/);
  });
});

describe('haproxy with one anchor file per directive', () => {
  const client = (scope: string, service: string): Client => ({
    name: `${scope}/${service}`,
    key: fs.readFileSync(m.out(scope, service, 'key.pem'), 'utf8'),
    chain: fs.readFileSync(m.out(scope, service, 'chain.pem'), 'utf8'),
    ca: m.read('bundles/us-east-1/trust.openssl.pem'),
  });
  async function haproxy(name: string, anchors: string[]): Promise<number> {
    const port = freePort();
    const dir = path.join(scratch, `haproxy-${name}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, 'crt.pem'),
      fs.readFileSync(m.out('us-east-1', 'api', 'chain.pem'), 'utf8') +
        fs.readFileSync(m.out('us-east-1', 'api', 'key.pem'), 'utf8'),
    );
    const [first, ...rest] = anchors;
    const cas = `ca-file ${first}${rest.map((f) => ` ca-verify-file ${f}`).join('')}`;
    fs.writeFileSync(
      path.join(dir, 'haproxy.cfg'),
      `defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\nfrontend fe\n  ` +
        `bind 127.0.0.1:${port} ssl crt ${path.join(dir, 'crt.pem')} ${cas} verify required\n  http-request ` +
        `return status 200 content-type text/plain string "ok"\n`,
    );
    await execa('haproxy', ['-f', path.join(dir, 'haproxy.cfg'), '-D', '-p', path.join(dir, 'pid')]);
    stops.push(() => void execa('sh', ['-c', `kill $(cat ${path.join(dir, 'pid')})`], { reject: false }));
    await waitForPort(port);
    return port;
  }
  it("each of us-east-1's capath files in its own directive: the scope and global accepted, another region refused", async () => {
    const files = ls(m, 'bundles/us-east-1/capath').map((n) => m.path(`bundles/us-east-1/capath/${n}`));
    expect(files).toHaveLength(2);
    const port = await haproxy('both', files);
    expect(await request(port, 'api.us-east-1.mesh.example', client('us-east-1', 'api'))).toBe(200);
    expect(await request(port, 'api.us-east-1.mesh.example', client('global', 'control'))).toBe(200);
    expect(await request(port, 'api.us-east-1.mesh.example', client('eu-west-1', 'api'))).toBe('refused');
  });
  it("each directive counts: with only global's file, the us-east-1 client is refused", async () => {
    const globalHash = await opensslHash(m.path('bundles/global/intermediate.pem'));
    const port = await haproxy('global-only', [m.path(`bundles/us-east-1/capath/${globalHash}.0`)]);
    expect(await request(port, 'api.us-east-1.mesh.example', client('global', 'control'))).toBe(200);
    expect(await request(port, 'api.us-east-1.mesh.example', client('us-east-1', 'api'))).toBe('refused');
  });
});

describe('the plain PEM files, for stacks that anchor on any listed certificate (Go)', () => {
  it("each scope's own anchor file alone verifies its leaf; another region's does not", async () => {
    const at = new Date(Number(ATTIME) * 1000).toISOString();
    const anchorOf = (holder: string, scope: string) =>
      m.path(`bundles/${holder}/anchors/${ls(m, `bundles/${holder}/anchors`).find((n) => n.startsWith(`${scope}-`))!}`);
    const go = (roots: string, scope: string, service: string) =>
      goverify([
        '-roots',
        roots,
        '-cert',
        m.out(scope, service, 'cert.pem'),
        '-intermediates',
        m.path(`bundles/${scope}/intermediate.pem`),
        '-eku',
        'client',
        '-at',
        at,
      ]);
    expect((await go(anchorOf('us-east-1', 'us-east-1'), 'us-east-1', 'api')).stdout).toBe('OK');
    expect((await go(anchorOf('global', 'eu-west-1'), 'eu-west-1', 'api')).stdout).toBe('OK');
    expect((await go(anchorOf('us-east-1', 'global'), 'us-east-1', 'api')).stdout).not.toBe('OK');
    expect(ls(m, 'bundles/us-east-1/anchors').some((n) => n.startsWith('eu-west-1-'))).toBe(false);
  });
});

describe('during a rotation, old and new intermediates of one scope share a subject hash', () => {
  let r: FakeMesh;
  beforeAll(async () => {
    r = m.clone();
    // The same minute as the first ceremony: the new intermediate's subject is the old one's.
    const rot = await r.root(['rotate', 'intermediate', 'us-east-1', '--now', NOW, '--now-ahead']);
    expect(rot.code, rot.stderr).toBe(0);
  });
  it('capath holds <hash>.0 and <hash>.1, both regular files, and -CApath verifies the live leaf', async () => {
    const h = await opensslHash(r.path('bundles/us-east-1/intermediate.pem'));
    expect(await opensslHash(r.path('bundles/us-east-1/intermediate.next.pem'))).toBe(h);
    for (const holder of ['us-east-1', 'global']) {
      expect(ls(r, `bundles/${holder}/capath`).filter((n) => n.startsWith(h))).toEqual([`${h}.0`, `${h}.1`]);
      expect(await fp(r.path(`bundles/${holder}/capath/${h}.1`))).toBe(
        await fp(r.path('bundles/us-east-1/intermediate.next.pem')),
      );
    }
    const v = await verifyCapath(r.path('bundles/us-east-1/capath'), 'us-east-1', 'api', 'sslclient', r);
    expect(v.code, v.stderr).toBe(0);
    const verify = await r.ci(['verify', '--json', '--now', NOW, '--now-ahead']);
    expect(
      JSON.parse(verify.stdout).findings.filter((f: { level: string; check: string }) => f.level === 'error'),
    ).toEqual([]);
  });
  it('an abort drops the new intermediate: its anchor files go from every bundle, and verify stays clean', async () => {
    const h = await opensslHash(r.path('bundles/us-east-1/intermediate.pem'));
    const a = await r.root(['rotate', 'intermediate', 'us-east-1', '--abort', '--now', NOW, '--now-ahead']);
    expect(a.code, a.stderr).toBe(0);
    for (const holder of ['us-east-1', 'global']) {
      expect(ls(r, `bundles/${holder}/capath`).filter((n) => n.startsWith(h))).toEqual([`${h}.0`]);
      expect(ls(r, `bundles/${holder}/anchors`)).toHaveLength(ls(m, `bundles/${holder}/anchors`).length);
    }
    expect((await r.ci(['verify', '--now', NOW, '--now-ahead'])).code).toBe(0);
  });
});

describe('verify judges the anchor files; renew repairs them', () => {
  const errorsOf = async (mesh: FakeMesh) =>
    JSON.parse((await mesh.ci(['verify', '--json', '--now', NOW, '--now-ahead'])).stdout).findings.filter(
      (f: { level: string }) => f.level === 'error',
    ) as { file: string; message: string }[];
  it.each([
    ['missing', (d: FakeMesh, f: string) => fs.rmSync(d.path(f)), /anchor file missing/],
    [
      'stale (another anchor in it)',
      (d: FakeMesh, f: string) => {
        // An anchor file of eu-west-1's capath that us-east-1's does not hold.
        const other = ls(d, 'bundles/eu-west-1/capath').find((n) => !ls(d, 'bundles/us-east-1/capath').includes(n))!;
        fs.writeFileSync(d.path(f), d.read(`bundles/eu-west-1/capath/${other}`));
      },
      /does not hold exactly the anchor/,
    ],
  ] as const)('a %s capath file is an error naming it, and renew rewrites it', async (_, damage, message) => {
    const d = m.clone();
    const f = `bundles/us-east-1/capath/${ls(d, 'bundles/us-east-1/capath')[0]}`;
    const before = fs.existsSync(d.path(f)) ? d.read(f) : '';
    damage(d, f);
    const errs = await errorsOf(d);
    expect(errs.map((e) => e.file)).toEqual([f]);
    expect(errs[0]!.message).toMatch(message);
    expect((await d.ci(['verify', '--now', NOW, '--now-ahead'])).code).toBe(1);
    expect((await d.ci(['renew', '--now', NOW, '--now-ahead'])).code).toBe(0);
    expect(d.read(f)).toBe(before);
    expect(await errorsOf(d)).toEqual([]);
  });
  it("an extra file (another region's anchor planted in us-east-1's capath) is an error, and renew removes it", async () => {
    const d = m.clone();
    const eu = ls(d, 'bundles/eu-west-1/capath').find((n) => !ls(d, 'bundles/us-east-1/capath').includes(n))!;
    const planted = `bundles/us-east-1/capath/${eu}`;
    fs.copyFileSync(d.path(`bundles/eu-west-1/capath/${eu}`), d.path(planted));
    // The plant works on a CApath consumer, which is why it must be found.
    expect((await verifyCapath(d.path('bundles/us-east-1/capath'), 'eu-west-1', 'api', 'sslclient', d)).code).toBe(0);
    const errs = await errorsOf(d);
    expect(errs.map((e) => e.file)).toEqual([planted]);
    expect(errs[0]!.message).toMatch(/extra anchor file/);
    expect((await d.ci(['renew', '--now', NOW, '--now-ahead'])).code).toBe(0);
    expect(fs.existsSync(d.path(planted))).toBe(false);
    expect(await errorsOf(d)).toEqual([]);
  });
  it('a store written before anchor files existed is a warning, not an error; the next renew writes them', async () => {
    const d = m.clone();
    for (const s of Object.keys(SPEC))
      for (const dir of ['capath', 'anchors']) fs.rmSync(d.path(`bundles/${s}/${dir}`), { recursive: true });
    const r = await d.ci(['verify', '--json', '--now', NOW, '--now-ahead']);
    expect(r.code).toBe(0);
    const warnings = JSON.parse(r.stdout).findings.filter((f: { message: string }) =>
      /one-anchor-per-file/.test(f.message),
    );
    expect(warnings.map((w: { level: string; scope: string }) => `${w.level} ${w.scope}`).sort()).toEqual(
      Object.keys(SPEC)
        .map((s) => `warning ${s}`)
        .sort(),
    );
    expect((await d.ci(['renew', '--now', NOW, '--now-ahead'])).code).toBe(0);
    for (const s of Object.keys(SPEC)) expect(ls(d, `bundles/${s}/capath`)).toEqual(ls(m, `bundles/${s}/capath`));
  });
});

describe('each release carries the anchor files too', () => {
  let d: FakeMesh;
  const target = path.join(scratch, 'release-api');
  const cur = (rel: string) => path.join(target, 'current', rel);
  beforeAll(async () => {
    d = m.clone();
    d.writeScope('us-east-1', [{ api: { deploy: [{ type: 'dir', path: target }] } }]);
    await d.allow({ dir: { paths: [scratch] } }, { now: NOW });
    const r = await d.ci(['deploy', '--now', NOW, '--now-ahead']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
  it("current/capath and current/anchors hold exactly the scope bundle's files, as regular files", () => {
    for (const dir of ['capath', 'anchors']) {
      const names = ls(d, `bundles/us-east-1/${dir}`);
      expect(fs.readdirSync(cur(dir)).sort()).toEqual(names);
      for (const n of names) {
        expect(fs.lstatSync(cur(`${dir}/${n}`)).isFile()).toBe(true);
        expect(fs.readFileSync(cur(`${dir}/${n}`), 'utf8')).toBe(d.read(`bundles/us-east-1/${dir}/${n}`));
      }
    }
  });
  it("openssl verify -CApath on the installed release: the scope's leaf accepted, another region's refused", async () => {
    const ok = await tool('openssl', [
      'verify',
      '-x509_strict',
      '-attime',
      ATTIME,
      '-purpose',
      'sslclient',
      '-CApath',
      cur('capath'),
      cur('cert.pem'),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const eu = await tool('openssl', [
      'verify',
      '-x509_strict',
      '-attime',
      ATTIME,
      '-purpose',
      'sslclient',
      '-CApath',
      cur('capath'),
      '-untrusted',
      d.path('bundles/eu-west-1/intermediate.pem'),
      d.out('eu-west-1', 'api', 'cert.pem'),
    ]);
    expect(eu.stderr).toMatch(/error 20 at 1 depth lookup/);
  });
  it('an intermediate that leaves the bundle leaves the next release: no stale anchor file stays installed', async () => {
    const rot = await d.root(['rotate', 'intermediate', 'global', '--now', NOW, '--now-ahead']);
    expect(rot.code, rot.stderr).toBe(0);
    expect((await d.ci(['deploy', '--now', NOW, '--now-ahead'])).code).toBe(0);
    expect(fs.readdirSync(cur('capath'))).toHaveLength(3);
    expect((await d.root(['rotate', 'intermediate', 'global', '--abort', '--now', NOW, '--now-ahead'])).code).toBe(0);
    expect((await d.ci(['deploy', '--now', NOW, '--now-ahead'])).code).toBe(0);
    expect(fs.readdirSync(cur('capath')).sort()).toEqual(ls(d, 'bundles/us-east-1/capath'));
    expect(fs.readdirSync(cur('capath'))).toHaveLength(2);
  });
});

describe('a host admits only anchor files the pinned roots issued, at the names a release may carry', () => {
  async function sealed(extra: Record<string, string>) {
    const mesh = loadMesh(new Store(m.dir));
    const ids = [
      fs
        .readFileSync(m.ciIdentityFile, 'utf8')
        .split('\n')
        .find((l) => l.startsWith('AGE-SECRET-KEY'))!,
    ];
    const keyPem = await decryptWith(
      ids,
      m.read('bundles/us-east-1/intermediate.key.age'),
      'bundles/us-east-1/intermediate.key.age',
      'ci',
    );
    const signer = {
      scope: 'us-east-1',
      ...(await caKeyFromPem('intermediate', parseCertificate(m.read('bundles/us-east-1/intermediate.pem')), keyPem)),
    };
    const host = await newIdentity();
    const files = { ...releaseFor(mesh, 'us-east-1'), ...extra };
    const armored = await sealRelease(
      {
        version: 1,
        scope: 'us-east-1',
        service: 'api',
        host: 'web-1',
        created: new Date(Date.parse(NOW) + 60_000).toISOString(),
        rootCrl: m.read('bundles/root/crl.pem'),
        files,
      },
      host.recipient,
      signer,
    );
    return openSealedRelease({
      identities: [host.identity],
      armored,
      file: 'web-1.age',
      roots: parseCertificates(m.read('bundles/root/roots.pem')),
      host: { rootCrls: {} },
      hostStateFile: 'state.json',
      now: new Date(Date.parse(NOW) + 120_000),
      policy: DEFAULT_HOST_POLICY,
    });
  }
  it("the release as composed opens, carrying its scope's anchor files", async () => {
    const opened = await sealed({});
    expect(
      Object.keys(opened.release.files)
        .filter((f) => f.startsWith('capath/'))
        .sort(),
    ).toEqual(ls(m, 'bundles/us-east-1/capath').map((n) => `capath/${n}`));
  });
  it('a capath file holding a CA the pinned roots did not issue is refused (exit 3)', async () => {
    const ca = path.join(scratch, 'foreign-ca.pem');
    expect(
      (
        await tool('openssl', [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          path.join(scratch, 'foreign-ca.key'),
          '-out',
          ca,
          '-days',
          '30',
          '-subj',
          '/CN=foreign CA',
        ])
      ).code,
    ).toBe(0);
    const foreign = fs.readFileSync(ca, 'utf8');
    await expect(sealed({ 'capath/0badc0de.0': trustOpensslPem([parseCertificate(foreign)]) })).rejects.toMatchObject({
      reason: 'release-refused',
      message: expect.stringMatching(/capath\/0badc0de\.0 holds .*pinned roots did not issue/),
    });
    await expect(sealed({ 'anchors/x-0123456789abcdef.pem': foreign })).rejects.toMatchObject({
      reason: 'release-refused',
    });
  });
  it("a path outside the two directories' patterns is malformed (exit 2): nothing is installed there", async () => {
    await expect(sealed({ 'capath/../../etc/cron.d/x': 'x' })).rejects.toMatchObject({
      reason: 'bad-release',
      message: expect.stringMatching(/unexpected file/),
    });
    await expect(sealed({ 'anchors/evil.sh': 'x' })).rejects.toMatchObject({ reason: 'bad-release' });
  });
});
