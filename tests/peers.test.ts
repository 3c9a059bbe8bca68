/**
 * Verifiers nobody here wrote judge what trellis mints: OpenSSL (-x509_strict
 * with a purpose), Go crypto/x509, and the age CLI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { forgeLeaf } from './helpers/forge.js';
import { goverify, tool } from './helpers/cli.js';

const SCOPES = ['global', 'us-east-1', 'eu-west-1'] as const;
const LEAVES: Record<string, string> = {
  global: 'global/control',
  'us-east-1': 'us-east-1/api',
  'eu-west-1': 'eu-west-1/api',
};
let m: FakeMesh;
let scratch: string;

beforeAll(async () => {
  m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api'], 'eu-west-1': ['api'] } });
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-peers-'));
});

const leafFile = (scope: string) => m.path(`.trellis/out/${LEAVES[scope]}/cert.pem`);
/** The regional boundary, written out as a table: who may verify whom. */
const BOUNDARY: Record<string, string[]> = {
  global: ['global', 'us-east-1', 'eu-west-1'],
  'us-east-1': ['global', 'us-east-1'],
  'eu-west-1': ['global', 'eu-west-1'],
};
const pairs = SCOPES.flatMap((bundle) =>
  SCOPES.map((leaf) => [bundle, leaf, BOUNDARY[bundle]!.includes(leaf)] as const),
);

function opensslVerify(args: string[]) {
  return tool('openssl', ['verify', '-x509_strict', ...args]);
}

function write(name: string, text: string): string {
  const f = path.join(scratch, name);
  fs.writeFileSync(f, text);
  return f;
}

describe('OpenSSL, anchored on intermediates (trust.openssl.pem)', () => {
  it.each(pairs.flatMap(([b, l, ok]) => (['sslclient', 'sslserver'] as const).map((p) => [b, l, p, ok] as const)))(
    'a %s service verifying a %s leaf for %s: %s',
    async (bundle, leaf, purpose, ok) => {
      const r = await opensslVerify([
        '-purpose',
        purpose,
        '-CAfile',
        m.path(`bundles/${bundle}/trust.openssl.pem`),
        leafFile(leaf),
      ]);
      expect(r.code === 0, r.stdout + r.stderr).toBe(ok);
      // Unable to get local issuer: the boundary holds at chain building.
      if (!ok) expect(r.stderr).toMatch(/error 20 /);
    },
  );
  it('needs the trusted form: the plain trust.pem alone ends no chain for OpenSSL', async () => {
    const r = await opensslVerify([
      '-purpose',
      'sslclient',
      '-CAfile',
      m.path('bundles/us-east-1/trust.pem'),
      leafFile('us-east-1'),
    ]);
    expect(r.code).not.toBe(0);
  });
  it('writes TRUSTED CERTIFICATE blocks byte for byte as openssl x509 -addtrust does', async () => {
    const r = await tool('openssl', [
      'x509',
      '-in',
      m.path('bundles/us-east-1/intermediate.pem'),
      '-addtrust',
      'clientAuth',
      '-addtrust',
      'serverAuth',
      '-trustout',
    ]);
    expect(m.read('bundles/us-east-1/trust.openssl.pem')).toContain(r.stdout.trim());
  });
});

describe('OpenSSL, anchored on the root (roots.pem), for consumers outside the mesh', () => {
  it.each(SCOPES.flatMap((s) => (['sslclient', 'sslserver'] as const).map((p) => [s, p] as const)))(
    'a %s leaf verifies to the root for %s',
    async (scope, purpose) => {
      const r = await opensslVerify([
        '-purpose',
        purpose,
        '-CAfile',
        m.path('bundles/root/roots.pem'),
        '-untrusted',
        m.path(`bundles/${scope}/intermediate.pem`),
        leafFile(scope),
      ]);
      expect(r.code, r.stderr).toBe(0);
    },
  );
  it('each intermediate verifies to the root as a CA', async () => {
    for (const s of SCOPES) {
      expect(
        (
          await opensslVerify([
            '-purpose',
            'any',
            '-CAfile',
            m.path('bundles/root/roots.pem'),
            m.path(`bundles/${s}/intermediate.pem`),
          ])
        ).code,
      ).toBe(0);
    }
  });
});

describe('Go crypto/x509 (anchors on trust.pem)', () => {
  it.each(pairs.flatMap(([b, l, ok]) => (['client', 'server'] as const).map((e) => [b, l, e, ok] as const)))(
    'a %s service verifying a %s leaf for %s auth: %s',
    async (bundle, leaf, eku, ok) => {
      const r = await goverify(['-roots', m.path(`bundles/${bundle}/trust.pem`), '-cert', leafFile(leaf), '-eku', eku]);
      expect(r.code === 0, r.stdout).toBe(ok);
      if (!ok) expect(r.stdout).toMatch(/unknown authority/);
    },
  );
  it('checks the DNS SAN and the root-anchored chain', async () => {
    const ok = await goverify([
      '-roots',
      m.path('bundles/root/roots.pem'),
      '-intermediates',
      m.path('bundles/us-east-1/intermediate.pem'),
      '-cert',
      leafFile('us-east-1'),
      '-eku',
      'server',
      '-dns',
      'api.us-east-1.mesh.example',
    ]);
    expect(ok.stdout).toBe('OK');
    const wrong = await goverify([
      '-roots',
      m.path('bundles/us-east-1/trust.pem'),
      '-cert',
      leafFile('us-east-1'),
      '-dns',
      'api.eu-west-1.mesh.example',
    ]);
    expect(wrong.stdout).toMatch(/FAIL: .*not api.eu-west-1.mesh.example/);
  });
  it('refuses a leaf after it expires', async () => {
    const r = await goverify([
      '-roots',
      m.path('bundles/us-east-1/trust.pem'),
      '-cert',
      leafFile('us-east-1'),
      '-at',
      new Date(Date.now() + 8 * 86_400_000).toISOString(),
    ]);
    expect(r.stdout).toMatch(/FAIL: .*expired/);
  });
});

describe("a stolen regional key cannot mint another region's identity", () => {
  it.each([
    [
      'a DNS name of another region',
      { dns: ['api.eu-west-1.mesh.example'], uris: ['spiffe://us-east-1.mesh.example/api'] },
    ],
    [
      'a SPIFFE ID of another region',
      { dns: ['api.us-east-1.mesh.example'], uris: ['spiffe://eu-west-1.mesh.example/api'] },
    ],
  ])('with %s: refused by OpenSSL on every anchor and by Go', async (_, sans) => {
    const forged = await forgeLeaf(m, 'us-east-1', sans);
    const leaf = write(`forged-${sans.dns[0]}-${sans.uris[0]!.length}.pem`, forged.cert);
    const viaGlobal = await opensslVerify([
      '-purpose',
      'sslclient',
      '-CAfile',
      m.path('bundles/global/trust.openssl.pem'),
      leaf,
    ]);
    expect(viaGlobal.stderr).toMatch(/error 47 .*permitted subtree violation/);
    const viaRoot = await opensslVerify([
      '-purpose',
      'sslclient',
      '-CAfile',
      m.path('bundles/root/roots.pem'),
      '-untrusted',
      m.path('bundles/us-east-1/intermediate.pem'),
      leaf,
    ]);
    expect(viaRoot.stderr).toMatch(/error 47 /);
    const go = await goverify([
      '-roots',
      m.path('bundles/root/roots.pem'),
      '-intermediates',
      m.path('bundles/us-east-1/intermediate.pem'),
      '-cert',
      leaf,
    ]);
    expect(go.stdout).toMatch(/FAIL: .*not permitted/);
  });
  it('the same forger staying inside its scope is accepted: the refusal above is the constraint, not the forgery', async () => {
    const forged = await forgeLeaf(m, 'us-east-1', {
      dns: ['x.us-east-1.mesh.example'],
      uris: ['spiffe://us-east-1.mesh.example/x'],
    });
    const leaf = write('inside.pem', forged.cert);
    expect(
      (await opensslVerify(['-purpose', 'sslclient', '-CAfile', m.path('bundles/global/trust.openssl.pem'), leaf]))
        .code,
    ).toBe(0);
  });
});

describe('tampered certificates', () => {
  it('a leaf with one flipped signature byte is refused by OpenSSL and Go', async () => {
    const der = Buffer.from(
      fs
        .readFileSync(leafFile('us-east-1'), 'utf8')
        .split('\n')
        .filter((l) => !l.startsWith('-----'))
        .join(''),
      'base64',
    );
    der[der.length - 4] ^= 0x01;
    const leaf = write(
      'tampered.pem',
      `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`,
    );
    const o = await opensslVerify([
      '-purpose',
      'sslclient',
      '-CAfile',
      m.path('bundles/us-east-1/trust.openssl.pem'),
      leaf,
    ]);
    expect(o.stderr).toMatch(/error 7 .*signature failure/);
    const g = await goverify(['-roots', m.path('bundles/us-east-1/trust.pem'), '-cert', leaf]);
    expect(g.stdout).toMatch(/FAIL/);
  });
});

describe('the age CLI and the custody split', () => {
  const age = (identity: string, file: string) => tool('age', ['-d', '-i', identity, file]);
  it('the CI identity opens every intermediate key, and each is a PKCS#8 key', async () => {
    for (const s of SCOPES) {
      const r = await age(m.ciIdentityFile, m.path(`bundles/${s}/intermediate.key.age`));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    }
  });
  it('the CI identity cannot open the root key', async () => {
    const r = await age(m.ciIdentityFile, m.path('bundles/root/root.key.age'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no identity matched/);
  });
  it('the root identity opens the root key but no intermediate key', async () => {
    expect((await age(m.rootIdentityFile, m.path('bundles/root/root.key.age'))).code).toBe(0);
    for (const s of SCOPES)
      expect((await age(m.rootIdentityFile, m.path(`bundles/${s}/intermediate.key.age`))).code).not.toBe(0);
  });
  it('the opened intermediate key is the one its certificate names', async () => {
    const key = write('k.pem', (await age(m.ciIdentityFile, m.path('bundles/us-east-1/intermediate.key.age'))).stdout);
    const fromKey = await tool('openssl', ['pkey', '-in', key, '-pubout']);
    const fromCert = await tool('openssl', [
      'x509',
      '-in',
      m.path('bundles/us-east-1/intermediate.pem'),
      '-noout',
      '-pubkey',
    ]);
    expect(fromKey.stdout).toBe(fromCert.stdout);
  });
});
