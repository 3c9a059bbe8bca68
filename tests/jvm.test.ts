/**
 * JVM consumers (issue 24): `bundle --format pkcs12` as a truststore and as a
 * per-service keystore that the real keytool lists and a real JSSE mTLS
 * handshake (tests/jvm/Handshake.java, the configuration docs/jvm.md
 * documents) uses; `bundle --format crl-jvm` under which Java's PKIX
 * revocation check refuses a revoked leaf and accepts a good one; and the
 * scope check that refuses a leaf a scope's key forged for another scope.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCertificates } from '@trellis/core';
import { execa } from 'execa';
import fc from 'fast-check';
import { REPO, tool, CI_BIN } from './helpers/cli.js';
import { jvmArgs, keytoolList } from './helpers/keytool.js';
import { FakeMesh } from './helpers/fake-mesh.js';
import { DAY, RUN_NOW, plus } from './helpers/clock.js';
import { PROFILES, forgeCertificate, openCa } from './helpers/forge-chain.js';

const PASSWORD = 'correct horse battery staple';
const ENV = { TRELLIS_PKCS12_PASSWORD: PASSWORD };
const HANDSHAKE = path.join(REPO, 'tests/jvm/Handshake.java');

let m: FakeMesh;
let dir: string;
let revokedOut: string;
let classes: string;

const must = async <T extends { code: number; stderr: string }>(p: Promise<T>): Promise<T> => {
  const r = await p;
  if (r.code !== 0) throw new Error(r.stderr);
  return r;
};

/** A keystore for scope/service from the leaves under `from` (renew's --out), written to dir. */
async function keystore(scope: string, service: string, from?: string): Promise<string> {
  const out = path.join(dir, `${scope}-${service}${from ? `-${path.basename(from)}` : ''}.p12`);
  if (!made.has(out))
    await must(
      m.ci(
        ['bundle', scope, '--format', 'pkcs12', '--service', service, '--out', out, ...(from ? ['--from', from] : [])],
        ENV,
      ),
    );
  made.add(out); // the leaves do not change during the run: one keystore each
  return out;
}
const made = new Set<string>();

const keytool = (file: string, extra: string[] = []) => keytoolList(file, PASSWORD, extra);

/** One JSSE handshake: each side's verdict ("accepted" or "refused …"). */
async function handshake(
  server: string,
  client: string,
  trust: string,
  crls?: string,
  authz = false,
): Promise<{ server: string; client: string }> {
  const r = await tool('env', [
    `TRELLIS_PKCS12_PASSWORD=${PASSWORD}`,
    'java',
    ...jvmArgs('java', ['-cp', classes, 'Handshake', server, client, trust, crls ?? '-', ...(authz ? ['authz'] : [])]),
  ]);
  if (r.code !== 0) throw new Error(`java: ${r.stderr}`);
  const line = (side: string) =>
    r.stdout
      .split('\n')
      .find((l) => l.startsWith(`${side}: `))
      ?.slice(side.length + 2) ?? `no verdict: ${r.stdout}`;
  return { server: line('server'), client: line('client') };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-jvm-'));
  // Compiled once (java Handshake.java would compile on every handshake).
  classes = path.join(dir, 'classes');
  await execa('javac', jvmArgs('javac', ['-d', classes, HANDSHAKE]));
  m = await FakeMesh.create({
    scopes: { global: ['control'], 'us-east-1': ['api', 'web', 'gone'], 'eu-west-1': ['api'] },
  });
  // The leaf's files as renew wrote them, kept from before the revocation.
  revokedOut = path.join(dir, 'before-revoke');
  fs.cpSync(path.dirname(m.out('us-east-1', 'gone', 'key.pem')), path.join(revokedOut, 'us-east-1', 'gone'), {
    recursive: true,
  });
  await must(m.ci(['revoke', 'us-east-1/gone', '--reason', 'keyCompromise']));
}, 120_000);

describe('bundle --format pkcs12', () => {
  it('writes a truststore keytool lists as one trustedCertEntry per anchor of trust.pem', async () => {
    const out = path.join(dir, 'us-east-1.trust.p12');
    const r = await must(m.ci(['bundle', 'us-east-1', '--format', 'pkcs12', '--out', out], ENV));
    expect(r.stdout).not.toContain(PASSWORD);
    const listed = await keytool(out);
    expect(listed.code, listed.stderr + listed.stdout).toBe(0);
    const anchors = parseCertificates(m.read('bundles/us-east-1/trust.pem'));
    expect(anchors.length).toBe(2); // its own intermediate and global's
    expect(listed.stdout.match(/trustedCertEntry/g)?.length).toBe(anchors.length);
    expect(listed.stdout).toMatch(/^us-east-1-[0-9a-f]{16},/m);
    expect(listed.stdout).toMatch(/^global-[0-9a-f]{16},/m);
  });

  it('writes a keystore keytool lists as one PrivateKeyEntry with the leaf and its intermediate, mode 0600', async () => {
    const out = await keystore('us-east-1', 'api');
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    const listed = await keytool(out, ['-v']);
    expect(listed.code, listed.stderr + listed.stdout).toBe(0);
    expect(listed.stdout).toContain('Entry type: PrivateKeyEntry');
    expect(listed.stdout).toContain('Alias name: api');
    expect(listed.stdout).toContain('Certificate chain length: 2');
    // A wrong password is refused by the MAC.
    const wrong = await tool(
      'keytool',
      jvmArgs('keytool', ['-list', '-storetype', 'PKCS12', '-keystore', out, '-storepass', 'not the password']),
    );
    expect(wrong.code).not.toBe(0);
  });

  it('takes the password from --password-file (its first line) as well as the environment', async () => {
    const pw = path.join(dir, 'password');
    fs.writeFileSync(pw, `${PASSWORD}\n`, { mode: 0o600 });
    const out = path.join(dir, 'from-file.p12');
    await must(m.ci(['bundle', 'us-east-1', '--format', 'pkcs12', '--out', out, '--password-file', pw]));
    const listed = await tool(
      'keytool',
      jvmArgs('keytool', ['-list', '-storetype', 'PKCS12', '-keystore', out, '-storepass:file', pw]),
    );
    expect(listed.code, listed.stderr + listed.stdout).toBe(0);
    expect(listed.stdout).toContain('trustedCertEntry');
  });

  it('refuses without --out, without a password, or for a service the scope lacks (exit 2), writing nothing', async () => {
    const before = m.snapshot();
    const noOut = await m.ci(['bundle', 'us-east-1', '--format', 'pkcs12'], ENV);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toContain('--out');
    const noPassword = await m.ci(['bundle', 'us-east-1', '--format', 'pkcs12', '--out', path.join(dir, 'none.p12')], {
      TRELLIS_PKCS12_PASSWORD: '',
    });
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain('TRELLIS_PKCS12_PASSWORD');
    expect(fs.existsSync(path.join(dir, 'none.p12'))).toBe(false);
    const noService = await m.ci(
      ['bundle', 'us-east-1', '--format', 'pkcs12', '--service', 'nope', '--out', path.join(dir, 'none.p12')],
      ENV,
    );
    expect(noService.code).toBe(2);
    expect(noService.stderr).toContain('nope');
    const notPkcs12 = await m.ci(['bundle', 'us-east-1', '--format', 'pem', '--service', 'api'], ENV);
    expect(notPkcs12.code).toBe(2);
    expect(notPkcs12.stderr).toContain('--service is for --format pkcs12');
    expect(m.snapshot()).toEqual(before);
  });
});

describe('where a PKCS#12 file may be written', () => {
  it("never into the store's tracked tree (a keystore holds a key) nor through a link", async () => {
    const before = m.snapshot();
    const inTree = await m.ci(
      ['bundle', 'us-east-1', '--format', 'pkcs12', '--service', 'api', '--out', m.path('bundles/us-east-1/api.p12')],
      ENV,
    );
    expect(inTree.code, inTree.stderr).not.toBe(0);
    expect(inTree.stderr).toContain('--out');
    const target = path.join(dir, 'link-target');
    fs.writeFileSync(target, 'untouched');
    const link = path.join(dir, 'link.p12');
    fs.symlinkSync(target, link);
    const viaLink = await m.ci(['bundle', 'us-east-1', '--format', 'pkcs12', '--out', link], ENV);
    expect(viaLink.code, viaLink.stderr).toBe(2);
    expect(fs.readFileSync(target, 'utf8')).toBe('untouched');
    expect(m.snapshot()).toEqual(before);
  });
});

describe('the store password', () => {
  // Java 17 derives PKCS#12 MAC keys from printable ASCII only: every such password, with what a shell would mangle.
  const printable = fc.string({
    unit: fc.oneof(
      fc.constantFrom(' ', '"', "'", '$', '\\', '`', '!', '~'),
      fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    ),
    minLength: 1,
    maxLength: 32,
  });
  // Anything else an environment can hold: a character outside printable ASCII somewhere in it.
  const unusable = fc
    .tuple(
      fc.string({ maxLength: 8 }),
      fc.oneof(
        fc.constantFrom('é', '€', '漢', '😀', '\t', '\u00a0', '\u007f'),
        fc.integer({ min: 1, max: 0x1f }).map((c) => String.fromCharCode(c)),
      ),
      fc.string({ maxLength: 8 }),
    )
    .map(([a, bad, b]) => a + bad + b)
    .filter((p) => !p.includes('\0'));

  it('opens the keystore it protects in OpenSSL (MAC and key) for every printable-ASCII password (property)', async () => {
    await fc.assert(
      fc.asyncProperty(printable, async (pw) => {
        const out = path.join(dir, 'prop.p12');
        await must(
          m.ci(['bundle', 'us-east-1', '--format', 'pkcs12', '--service', 'api', '--out', out], {
            TRELLIS_PKCS12_PASSWORD: pw,
          }),
        );
        const r = await execa('openssl', ['pkcs12', '-in', out, '-passin', 'env:P', '-nodes'], {
          reject: false,
          env: { P: pw },
        });
        expect(r.exitCode, `${JSON.stringify(pw)}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toContain('BEGIN PRIVATE KEY');
      }),
      { numRuns: 4, examples: [[' "quoted" $HOME `x` \\ ~']] },
    );
  }, 60_000);

  it('refuses a password Java cannot use (outside printable ASCII), exit 2, writing nothing (property)', async () => {
    const out = path.join(dir, 'unusable.p12');
    await fc.assert(
      fc.asyncProperty(unusable, async (pw) => {
        const r = await m.ci(['bundle', 'us-east-1', '--format', 'pkcs12', '--out', out], {
          TRELLIS_PKCS12_PASSWORD: pw,
        });
        expect(r.code, JSON.stringify(pw)).toBe(2);
        expect(r.stderr).toContain('printable ASCII');
        expect(fs.existsSync(out)).toBe(false);
      }),
      { numRuns: 3, examples: [['été € 漢字 😀']] },
    );
  }, 60_000);

  it('keytool opens a keystore under a password full of shell punctuation', async () => {
    const out = path.join(dir, 'punct.p12');
    const pw = ' "quoted" $HOME `x` \\ ~!';
    await must(
      m.ci(['bundle', 'us-east-1', '--format', 'pkcs12', '--service', 'api', '--out', out], {
        TRELLIS_PKCS12_PASSWORD: pw,
      }),
    );
    const list = ['-list', '-storetype', 'PKCS12', '-keystore', out, '-storepass:env', 'P'];
    const listed = await execa('keytool', jvmArgs('keytool', list), {
      reject: false,
      env: { P: pw },
    });
    expect(listed.exitCode, String(listed.stderr) + String(listed.stdout)).toBe(0);
    expect(listed.stdout).toContain('PrivateKeyEntry');
  });

  it('refuses a --password-file it cannot read (exit 2, naming it) and an empty one', async () => {
    const missing = await m.ci([
      'bundle',
      'us-east-1',
      '--format',
      'pkcs12',
      '--out',
      path.join(dir, 'none.p12'),
      '--password-file',
      path.join(dir, 'no-such-file'),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no-such-file');
    const empty = path.join(dir, 'empty-password');
    fs.writeFileSync(empty, '\n');
    const r = await m.ci([
      'bundle',
      'us-east-1',
      '--format',
      'pkcs12',
      '--out',
      path.join(dir, 'none.p12'),
      '--password-file',
      empty,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is empty');
    expect(fs.existsSync(path.join(dir, 'none.p12'))).toBe(false);
  });
});

describe('JSSE mTLS with the trellis truststore, keystores and crl-jvm', () => {
  let trust: string;
  let crlJvm: string;
  beforeAll(async () => {
    trust = path.join(dir, 'us-east-1.p12');
    await must(m.ci(['bundle', 'us-east-1', '--format', 'pkcs12', '--out', trust], ENV));
    crlJvm = path.join(dir, 'crl.jvm.pem');
    fs.writeFileSync(crlJvm, (await must(m.ci(['bundle', 'us-east-1', '--format', 'crl-jvm']))).stdout);
  }, 60_000);

  it('accepts a good leaf and refuses the revoked one, with revocation on and the crl-jvm CertStore', async () => {
    const api = await keystore('us-east-1', 'api');
    const web = await keystore('us-east-1', 'web');
    const gone = await keystore('us-east-1', 'gone', revokedOut);
    expect(await handshake(api, web, trust, crlJvm)).toEqual({ server: 'accepted', client: 'accepted' });
    const revoked = await handshake(api, gone, trust, crlJvm);
    expect(revoked.server).toMatch(/^refused .*revoked/i);
    expect(revoked.client).toMatch(/^refused/);
    // The revocation is what refused it: without CRLs the same leaf passes.
    expect(await handshake(api, gone, trust)).toEqual({ server: 'accepted', client: 'accepted' });
  }, 60_000);

  it('a JVM anchored on the root: the shipped crl.pem refuses a good leaf (anchor CRLs), crl-jvm accepts it and refuses the revoked one', async () => {
    // The root as a trustedCertEntry, imported by the real keytool (trellis ships no root truststore: it loses the
    // boundary).
    const rootTrust = path.join(dir, 'root.p12');
    fs.writeFileSync(path.join(dir, 'root.pem'), m.read('bundles/root/roots.pem'));
    const imported = await tool('env', [
      `TRELLIS_PKCS12_PASSWORD=${PASSWORD}`,
      'keytool',
      ...jvmArgs('keytool', ['-importcert']),
      '-noprompt',
      '-alias',
      'root',
      '-file',
      path.join(dir, 'root.pem'),
      '-storetype',
      'PKCS12',
      '-keystore',
      rootTrust,
      '-storepass:env',
      'TRELLIS_PKCS12_PASSWORD',
    ]);
    expect(imported.code, imported.stderr).toBe(0);
    // The release's crl.pem as renew and revoke leave it in the output directory (what deploy ships).
    const edge = path.dirname(path.dirname(m.out('us-east-1', 'api', 'key.pem')));
    const api = await keystore('us-east-1', 'api');
    const web = await keystore('us-east-1', 'web');
    const gone = await keystore('us-east-1', 'gone', revokedOut);
    const shipped = await handshake(api, web, rootTrust, path.join(edge, 'crl.pem'));
    expect(shipped.client).toMatch(/^refused .*revocation status/i); // the client judges the server's leaf first
    expect(await handshake(api, web, rootTrust, crlJvm)).toEqual({ server: 'accepted', client: 'accepted' });
    expect((await handshake(api, gone, rootTrust, crlJvm)).server).toMatch(/^refused .*revoked/i);
  }, 60_000);

  it("crl-jvm holds each anchor's leaf CRL and the root CRL, and no anchor CRL", async () => {
    const shipped = fs.readFileSync(path.join(dir, 'crl.jvm.pem'), 'utf8');
    const count = (pem: string) => pem.match(/BEGIN X509 CRL/g)?.length ?? 0;
    expect(count(shipped)).toBe(3); // us-east-1's and global's leaf CRLs, the root's CRL
    // The release's crl.pem as renew and revoke leave it in the output directory (what deploy ships).
    const edge = path.dirname(path.dirname(m.out('us-east-1', 'api', 'key.pem')));
    // crl.pem: a leaf CRL and an anchor CRL per anchor.
    expect(count(fs.readFileSync(path.join(edge, 'crl.pem'), 'utf8'))).toBe(4);
  });
});

describe('the scope check (ScopeCheck in tests/jvm/Handshake.java, docs/jvm.md)', () => {
  it("JSSE alone accepts a leaf us-east-1's key forged with eu-west-1's names; with the check both directions refuse it, and a genuine leaf passes", async () => {
    // A global service trusts every scope's intermediate, so PKIX accepts what any of them signs.
    const trust = path.join(dir, 'global.p12');
    await must(m.ci(['bundle', 'global', '--format', 'pkcs12', '--out', trust], ENV));
    const region = await openCa(
      m.ciIdentityFile,
      m.read('bundles/us-east-1/intermediate.key.age'),
      m.read('bundles/us-east-1/intermediate.pem'),
    );
    const sans = { dns: ['api.eu-west-1.mesh.example'], uris: ['spiffe://eu-west-1.mesh.example/api'] };
    const forged = await forgeCertificate(region, {
      subject: `CN=${sans.dns[0]}`,
      profile: PROFILES.leaf,
      sans,
      notBefore: plus(RUN_NOW, -DAY),
      notAfter: plus(RUN_NOW, DAY),
    });
    const forgedDir = path.join(dir, 'forged');
    fs.mkdirSync(path.join(forgedDir, 'eu-west-1', 'api'), { recursive: true });
    fs.writeFileSync(path.join(forgedDir, 'eu-west-1', 'api', 'key.pem'), forged.key);
    fs.writeFileSync(path.join(forgedDir, 'eu-west-1', 'api', 'chain.pem'), forged.cert + region.cert);
    const impostor = await keystore('eu-west-1', 'api', forgedDir);
    const control = await keystore('global', 'control');
    const genuine = await keystore('eu-west-1', 'api');
    // The gap issue 24 names.
    expect(await handshake(control, impostor, trust)).toEqual({ server: 'accepted', client: 'accepted' });
    const asClient = await handshake(control, impostor, trust, undefined, true);
    expect(asClient.server).toMatch(
      /^refused trellis scope check: \S*eu-west-1\.mesh\.example\S* is outside the scope of anchor .*us-east-1/,
    );
    const asServer = await handshake(impostor, control, trust, undefined, true);
    expect(asServer.client).toMatch(/^refused .*outside the scope/);
    expect(await handshake(control, genuine, trust, undefined, true)).toEqual({
      server: 'accepted',
      client: 'accepted',
    });
    // Every SAN, not the first: an in-scope DNS name does not carry an out-of-scope SPIFFE ID.
    const mixed = { dns: ['api.us-east-1.mesh.example'], uris: ['spiffe://eu-west-1.mesh.example/api'] };
    const half = await forgeCertificate(region, {
      subject: `CN=${mixed.dns[0]}`,
      profile: PROFILES.leaf,
      sans: mixed,
      notBefore: plus(RUN_NOW, -DAY),
      notAfter: plus(RUN_NOW, DAY),
    });
    fs.mkdirSync(path.join(forgedDir, 'us-east-1', 'api'), { recursive: true });
    fs.writeFileSync(path.join(forgedDir, 'us-east-1', 'api', 'key.pem'), half.key);
    fs.writeFileSync(path.join(forgedDir, 'us-east-1', 'api', 'chain.pem'), half.cert + region.cert);
    const halfImpostor = path.join(dir, 'half.p12');
    await must(
      m.ci(
        ['bundle', 'us-east-1', '--format', 'pkcs12', '--service', 'api', '--from', forgedDir, '--out', halfImpostor],
        ENV,
      ),
    );
    expect((await handshake(control, halfImpostor, trust, undefined, true)).server).toMatch(
      /^refused trellis scope check: spiffe:\/\/eu-west-1\.mesh\.example\/api is outside/,
    );
  }, 60_000);
});

describe('docs/jvm.md', () => {
  const page = fs.readFileSync(path.join(REPO, 'docs/jvm.md'), 'utf8');
  const blocks = (lang: string) =>
    [...page.matchAll(new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((b) => b[1]!);
  const squeeze = (t: string) =>
    t
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .join('\n');

  it('shows the Java the handshakes above ran, verbatim', () => {
    const java = squeeze(fs.readFileSync(HANDSHAKE, 'utf8'));
    expect(blocks('java').length).toBe(2);
    for (const b of blocks('java')) expect(java).toContain(squeeze(b));
  });

  it('its shell block runs in a store as written: keytool lists the truststore it made', async () => {
    const [block] = blocks('sh');
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, 'trellis-ci'), `#!/bin/sh\nexec node ${JSON.stringify(CI_BIN)} "$@"\n`, {
      mode: 0o755,
    });
    const r = await execa('bash', ['-euo', 'pipefail', '-c', block!], {
      cwd: m.dir,
      reject: false,
      extendEnv: false,
      env: { PATH: `${bin}:${process.env.PATH}`, HOME: process.env.HOME, CI: 'true', TRELLIS_ACTOR: 'test' },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(String(r.stdout).match(/trustedCertEntry/g)?.length).toBe(2);
    expect(fs.statSync(path.join(m.dir, '../jvm/api.p12')).mode & 0o777).toBe(0o600);
    // The truststore is public, 0644 under the block's umask 077 (docs/jvm.md says so).
    expect(fs.statSync(path.join(m.dir, '../jvm/trust.p12')).mode & 0o777).toBe(0o644);
    expect(fs.readFileSync(path.join(m.dir, '../jvm/crl.jvm.pem'), 'utf8')).toContain('BEGIN X509 CRL');
  }, 30_000);
});
