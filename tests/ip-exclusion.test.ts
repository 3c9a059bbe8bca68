/**
 * Blast radius: a scope's intermediate excludes every IP subtree, so a thief
 * holding its key cannot certify an IP address. The forged leaves here are
 * made with OpenSSL from the real intermediate key, and judged by OpenSSL and
 * the Go verifier. The contrast case (the same key under an intermediate
 * without the exclusion, as trellis minted them before) shows the exclusion is
 * what refuses them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tryDecrypt } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { goverify, tool } from './helpers/cli.js';

let m: FakeMesh;
let dir: string;
const f = (name: string) => path.join(dir, name);

const openssl = (args: string[]) => tool('openssl', args);

async function opened(ageFile: string, identityFile: string): Promise<string> {
  const ids = fs
    .readFileSync(identityFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('AGE-SECRET-KEY'));
  const r = await tryDecrypt(ids, fs.readFileSync(ageFile, 'utf8'));
  if (!r.ok) throw new Error(`cannot open ${ageFile}`);
  return r.text;
}

/** A leaf signed by `caCert`/`caKey` with OpenSSL, carrying the scope's own names and `extraSan`. */
async function forgeWithOpenssl(name: string, caCert: string, caKey: string, extraSan: string): Promise<string> {
  fs.writeFileSync(
    f(`${name}.cnf`),
    [
      '[v3]',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=URI:spiffe://us-east-1.mesh.example/api,DNS:api.us-east-1.mesh.example,${extraSan}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      '',
    ].join('\n'),
  );
  for (const args of [
    ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f(`${name}.key`)],
    ['req', '-new', '-key', f(`${name}.key`), '-subj', '/CN=api.us-east-1.mesh.example', '-out', f(`${name}.csr`)],
    [
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      caCert,
      '-CAkey',
      caKey,
      '-set_serial',
      '0x1f2e3d4c5b6a',
      '-days',
      '2',
      '-extfile',
      f(`${name}.cnf`),
      '-extensions',
      'v3',
      '-out',
      f(`${name}.pem`),
    ],
  ]) {
    const r = await openssl(args);
    if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  }
  return f(`${name}.pem`);
}

beforeAll(async () => {
  m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api'] } });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-ip-'));
  fs.writeFileSync(f('inter.key'), await opened(m.path('bundles/us-east-1/intermediate.key.age'), m.ciIdentityFile), {
    mode: 0o600,
  });
  fs.writeFileSync(f('root.key'), await opened(m.path('bundles/root/root.key.age'), m.rootIdentityFile), {
    mode: 0o600,
  });
  // The contrast: the same intermediate key and subject, certified by the root as trellis did before the exclusion.
  fs.writeFileSync(
    f('legacy.cnf'),
    [
      '[v3]',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      'keyUsage=critical,keyCertSign,cRLSign',
      'nameConstraints=critical,permitted;DNS:us-east-1.mesh.example,permitted;URI:us-east-1.mesh.example',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      '',
    ].join('\n'),
  );
  for (const args of [
    [
      'x509',
      '-x509toreq',
      '-in',
      m.path('bundles/us-east-1/intermediate.pem'),
      '-signkey',
      f('inter.key'),
      '-out',
      f('legacy.csr'),
    ],
    [
      'x509',
      '-req',
      '-in',
      f('legacy.csr'),
      '-CA',
      m.path('bundles/root/root.pem'),
      '-CAkey',
      f('root.key'),
      '-set_serial',
      '0x77',
      '-days',
      '30',
      '-extfile',
      f('legacy.cnf'),
      '-extensions',
      'v3',
      '-out',
      f('legacy.pem'),
    ],
  ]) {
    const r = await openssl(args);
    if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  }
}, 120_000);

const verifyOpenssl = (leaf: string, intermediate: string) =>
  openssl([
    'verify',
    '-x509_strict',
    '-purpose',
    'sslclient',
    '-CAfile',
    m.path('bundles/root/roots.pem'),
    '-untrusted',
    intermediate,
    leaf,
  ]);
const verifyGo = (leaf: string, intermediate: string) =>
  goverify(['-roots', m.path('bundles/root/roots.pem'), '-intermediates', intermediate, '-cert', leaf]);

describe('intermediates exclude every IP subtree', () => {
  it('a minted intermediate carries 0.0.0.0/0 and ::/0 as excluded subtrees of its critical name constraints', async () => {
    const r = await openssl([
      'x509',
      '-in',
      m.path('bundles/us-east-1/intermediate.pem'),
      '-noout',
      '-ext',
      'nameConstraints',
    ]);
    expect(r.stdout).toMatch(/Name Constraints: critical/);
    expect(r.stdout).toMatch(/Excluded:\s+IP:0\.0\.0\.0\/0\.0\.0\.0\s+IP:0:0:0:0:0:0:0:0\/0:0:0:0:0:0:0:0/);
  });
  it.each([
    ['an IPv4 SAN', 'IP:10.0.0.1'],
    ['an IPv6 SAN', 'IP:fd00::1'],
    ['a loopback SAN', 'IP:127.0.0.1'],
  ])('a leaf with %s forged with the stolen intermediate key is refused by OpenSSL and Go', async (_, san) => {
    const leaf = await forgeWithOpenssl(
      `forged-${san.replace(/\W/g, '')}`,
      m.path('bundles/us-east-1/intermediate.pem'),
      f('inter.key'),
      san,
    );
    const o = await verifyOpenssl(leaf, m.path('bundles/us-east-1/intermediate.pem'));
    expect(o.code).not.toBe(0);
    expect(o.stderr).toMatch(/excluded subtree violation/);
    const scopeAnchored = await openssl([
      'verify',
      '-x509_strict',
      '-purpose',
      'sslclient',
      '-CAfile',
      m.path('bundles/us-east-1/trust.openssl.pem'),
      leaf,
    ]);
    expect(scopeAnchored.stderr).toMatch(/excluded subtree violation/);
    const g = await verifyGo(leaf, m.path('bundles/us-east-1/intermediate.pem'));
    expect(g.stdout).toMatch(/^FAIL: .*(excluded|not permitted)/);
  });
  it('the same forgery under an intermediate without the exclusion is accepted by both: the exclusion is what refuses it', async () => {
    const leaf = await forgeWithOpenssl('forged-legacy', f('legacy.pem'), f('inter.key'), 'IP:10.0.0.1');
    expect((await verifyOpenssl(leaf, f('legacy.pem'))).code).toBe(0);
    expect((await verifyGo(leaf, f('legacy.pem'))).stdout).toBe('OK');
  });
  it('a leaf without IP SANs from the same key verifies: the exclusion costs trellis leaves nothing', async () => {
    const leaf = await forgeWithOpenssl(
      'inside',
      m.path('bundles/us-east-1/intermediate.pem'),
      f('inter.key'),
      'DNS:x.us-east-1.mesh.example',
    );
    expect((await verifyOpenssl(leaf, m.path('bundles/us-east-1/intermediate.pem'))).code).toBe(0);
    expect((await verifyGo(leaf, m.path('bundles/us-east-1/intermediate.pem'))).stdout).toBe('OK');
  });
  it('leaves trellis mints verify under the new intermediates with OpenSSL and Go', async () => {
    const leaf = m.out('us-east-1', 'api', 'cert.pem');
    expect((await verifyOpenssl(leaf, m.path('bundles/us-east-1/intermediate.pem'))).code).toBe(0);
    expect((await verifyGo(leaf, m.path('bundles/us-east-1/intermediate.pem'))).stdout).toBe('OK');
  });
});
