/**
 * `trellis-ci explain CLIENT SERVER` agrees with a real OpenSSL verification
 * of the same pair, direction by direction, over the boundary table, an
 * expired leaf (--now) and a revoked one: the same verdict, and when refused
 * the same deciding error.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { REPO, tool } from './helpers/cli.js';
import {
  certificateParty,
  explainHandshake,
  parseCertificates,
  parseCrls,
  recordParty,
  releaseFor,
} from '@trellis/core';
import { Store, loadMesh } from '@trellis/core/store';
import { RUN_NOW, at } from './helpers/clock.js';

const NOW = at(RUN_NOW);
const plus = (h: number) => new Date(Date.parse(NOW) + h * 3_600_000).toISOString();
const SPEC = { global: ['control'], 'us-east-1': ['api', 'web', { short: { ttl: '24h' } }], 'eu-west-1': ['api'] };
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-explain-'));
let m: FakeMesh;
/** us-east-1/web's leaf as it was before it was revoked. */
let revokedWeb: string;

beforeAll(async () => {
  m = await FakeMesh.create({ scopes: SPEC, now: NOW });
  revokedWeb = path.join(scratch, 'revoked-web.pem');
  fs.copyFileSync(m.out('us-east-1', 'web', 'chain.pem'), revokedWeb);
  const r = await m.ci(['revoke', 'us-east-1/web', '--reason', 'keyCompromise', '--now', plus(0.5), '--now-ahead']);
  expect(r.code, r.stderr).toBe(0);
  // A leaf claiming a us-east-1 identity, from a CA this mesh never saw.
  const o = (args: string[]) => tool('openssl', args, { cwd: scratch });
  expect(
    (
      await o([
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '30',
        '-subj',
        '/CN=foreign CA',
      ])
    ).code,
  ).toBe(0);
  expect(
    (
      await o([
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'leaf.key',
        '-out',
        'leaf.csr',
        '-subj',
        '/CN=api.us-east-1.mesh.example',
      ])
    ).code,
  ).toBe(0);
  fs.writeFileSync(
    path.join(scratch, 'ext'),
    'subjectAltName=URI:spiffe://us-east-1.mesh.example/api,DNS:api.us-east-1.mesh.example\n' +
      'extendedKeyUsage=serverAuth,clientAuth\n',
  );
  expect(
    (
      await o([
        'x509',
        '-req',
        '-in',
        'leaf.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '10',
        '-extfile',
        'ext',
        '-out',
        'foreign.pem',
      ])
    ).code,
  ).toBe(0);
});

interface Party {
  ref: string;
  scope: string;
  chain: () => string;
}
const record = (ref: string): Party => ({
  ref,
  scope: ref.split('/')[0]!,
  chain: () => m.out(ref.split('/')[0]!, ref.split('/')[1]!, 'chain.pem'),
});

/** What OpenSSL says when `verifier`'s scope judges `presented` for `purpose`, as the verifiers helper runs it. */
async function openssl(
  verifierScope: string,
  presented: Party,
  purpose: 'client' | 'server',
  at: string,
): Promise<{ ok: boolean; error?: string }> {
  const chain = presented.chain();
  const leaf = path.join(scratch, `leaf-${Math.random().toString(36).slice(2)}.pem`);
  fs.writeFileSync(
    leaf,
    fs.readFileSync(chain, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/)![0],
  );
  // The CRLs the verifier's release ships, checked along the whole chain as nginx ssl_crl and haproxy crl-file do.
  const crls = path.join(scratch, `crls-${Math.random().toString(36).slice(2)}.pem`);
  fs.writeFileSync(crls, releaseFor(loadMesh(new Store(m.dir)), verifierScope)['crl.pem'] ?? '');
  const r = await tool('openssl', [
    'verify',
    '-x509_strict',
    '-attime',
    String(Math.floor(Date.parse(at) / 1000)),
    '-purpose',
    purpose === 'client' ? 'sslclient' : 'sslserver',
    '-CAfile',
    m.path(`bundles/${verifierScope}/trust.openssl.pem`),
    '-untrusted',
    chain,
    '-crl_check_all',
    '-CRLfile',
    crls,
    leaf,
  ]);
  return r.code === 0
    ? { ok: true }
    : { ok: false, error: r.stderr.match(/error (\d+) at \d+ depth lookup/)?.[1] ?? r.stderr };
}

interface Direction {
  verifier: string;
  presenter: string;
  purpose: 'client' | 'server';
  passes: boolean;
  decidedBy?: { check: string; openssl?: string };
  anchor?: { scope: string; role: string; fingerprint: string };
  change: string;
}

/**
 * In-process, on the same core function the command calls (the table runs many pairs; the command itself is run below).
 */
async function explainHere(client: string, server: string, at: string) {
  const mesh = loadMesh(new Store(m.dir));
  const party = (ref: string) =>
    fs.existsSync(ref)
      ? certificateParty(mesh, ref, parseCertificates(fs.readFileSync(ref, 'utf8'))[0]!)
      : recordParty(mesh, ref);
  return explainHandshake(mesh, party(client), party(server), new Date(at)) as Promise<{
    passes: boolean;
    directions: [Direction, Direction];
  }>;
}

async function explain(client: string, server: string, at: string) {
  const r = await m.ci(['explain', client, server, '--json', '--now', at, '--now-ahead']);
  expect([0, 1], r.stderr).toContain(r.code);
  const e = JSON.parse(r.stdout) as { passes: boolean; directions: [Direction, Direction] };
  expect(r.code).toBe(e.passes ? 0 : 1);
  return e;
}

type Row = [string, () => string, string, () => string, string, string, [boolean, boolean]];
const rec = (ref: string) => () => ref;
// name, client arg, client scope, server arg, server scope, at, expected [server accepts client, client accepts server]
const TABLE: Row[] = [
  ['region ↔ same region', rec('us-east-1/web'), 'us-east-1', rec('us-east-1/api'), 'us-east-1', plus(1), [true, true]],
  [
    'global client → region server',
    rec('global/control'),
    'global',
    rec('us-east-1/api'),
    'us-east-1',
    plus(1),
    [true, true],
  ],
  [
    'region client → global server',
    rec('eu-west-1/api'),
    'eu-west-1',
    rec('global/control'),
    'global',
    plus(1),
    [true, true],
  ],
  [
    'region ↔ other region',
    rec('us-east-1/web'),
    'us-east-1',
    rec('eu-west-1/api'),
    'eu-west-1',
    plus(1),
    [false, false],
  ],
  [
    'an expired leaf (--now past its 24h)',
    rec('us-east-1/short'),
    'us-east-1',
    rec('us-east-1/api'),
    'us-east-1',
    plus(30),
    [false, true],
  ],
  [
    'a revoked leaf, given as a certificate file',
    () => revokedWeb,
    'us-east-1',
    rec('us-east-1/api'),
    'us-east-1',
    plus(1),
    [false, true],
  ],
  [
    'a leaf of a foreign CA claiming a us-east-1 identity',
    () => path.join(scratch, 'foreign.pem'),
    'us-east-1',
    rec('us-east-1/api'),
    'us-east-1',
    plus(1),
    [false, true],
  ],
  [
    "another region's leaf, given as a certificate file",
    () => m.out('eu-west-1', 'api', 'chain.pem'),
    'eu-west-1',
    rec('us-east-1/api'),
    'us-east-1',
    plus(1),
    [false, false],
  ],
];

describe('explain agrees with OpenSSL over the boundary table', () => {
  it.each(TABLE)('%s', async (_, clientArg, clientScope, serverArg, serverScope, at, expected) => {
    const asParty = (arg: string, scope: string): Party =>
      fs.existsSync(arg) ? { ref: arg, scope, chain: () => arg } : record(arg);
    const client = asParty(clientArg(), clientScope);
    const server = asParty(serverArg(), serverScope);
    const e = await explainHere(client.ref, server.ref, at);
    const peers = [await openssl(serverScope, client, 'client', at), await openssl(clientScope, server, 'server', at)];
    expect(e.directions.map((d) => d.passes)).toEqual(expected);
    expect(peers.map((p) => p.ok)).toEqual(expected);
    for (const [i, d] of e.directions.entries()) {
      if (d.passes) continue;
      // The same deciding error: explain names OpenSSL's error number for the check that decides.
      expect(
        d.decidedBy?.openssl?.match(/^error (\d+)/)?.[1],
        `${d.verifier} judging ${d.presenter}: ${JSON.stringify(d.decidedBy)}`,
      ).toBe(peers[i]!.error);
    }
    expect(e.passes).toBe(expected.every(Boolean));
  });
});

describe('explain judges CRLs along the whole chain, as the edge does', () => {
  it("a release without the anchor CRL of the presenter's intermediate: OpenSSL -crl_check_all fails with error 3, and explain says so", async () => {
    const file = m.path('bundles/us-east-1/crl.pem');
    const kept = fs.readFileSync(file, 'utf8');
    const blocks = kept.match(/-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----\n/g)!;
    // The anchor CRL is the one named for the intermediate's own issuer (the root).
    const anchorCrl = blocks.filter(
      (b) => parseCrls(b)[0]!.issuer !== parseCertificates(m.read('bundles/us-east-1/intermediate.pem'))[0]!.subject,
    );
    expect(anchorCrl).toHaveLength(1);
    fs.writeFileSync(file, blocks.filter((b) => !anchorCrl.includes(b)).join(''));
    try {
      const client = record('us-east-1/web');
      const server = record('global/control');
      const peer = await openssl('global', client, 'client', plus(1));
      expect(peer).toEqual({ ok: false, error: '3' });
      const e = await explainHere(client.ref, server.ref, plus(1));
      expect(e.directions[0].passes).toBe(false);
      expect(e.directions[0].decidedBy).toMatchObject({
        check: 'crl',
        openssl: expect.stringMatching(/^error 3: unable to get certificate CRL/),
      });
      expect(JSON.stringify(e.directions[0].decidedBy)).toMatch(/no anchor CRL of us-east-1 intermediate/);
      // The other direction is unaffected: global's own anchor CRL is shipped to us-east-1.
      expect((await openssl('us-east-1', server, 'server', plus(1))).ok).toBe(true);
      expect(e.directions[1].passes).toBe(true);
    } finally {
      fs.writeFileSync(file, kept);
    }
  });
});

describe('what explain says', () => {
  it('across regions: the boundary decides, and the answer says only global intermediates cross it', async () => {
    const e = await explain('us-east-1/web', 'eu-west-1/api', plus(1));
    expect(e.directions[0].decidedBy?.check).toBe('chain');
    expect(e.directions[0].change).toMatch(
      /eu-west-1 does not trust us-east-1: the regional boundary; only global intermediates cross it/,
    );
    expect(e.directions[1].change).toMatch(/us-east-1 does not trust eu-west-1: the regional boundary/);
  });
  it("a passing direction names the anchor that ends the chain (the store's active intermediate) and what would end it", async () => {
    const e = await explain('global/control', 'us-east-1/api', plus(1));
    const fp = (
      await tool('openssl', [
        'x509',
        '-in',
        m.path('bundles/global/intermediate.pem'),
        '-noout',
        '-fingerprint',
        '-sha256',
      ])
    ).stdout
      .split('=')[1]!
      .replace(/:/g, '')
      .trim()
      .toLowerCase();
    expect(e.directions[0].anchor).toMatchObject({ scope: 'global', role: 'active', fingerprint: `sha256:${fp}` });
    expect(e.directions[0].change).toMatch(/^passes until /);
    const text = (await m.ci(['explain', 'global/control', 'us-east-1/api', '--now', plus(1), '--now-ahead'])).stdout;
    expect(text).toMatch(/the handshake PASSES/);
    expect(text).toMatch(/✓ name-constraints every name inside global\.mesh\.example/);
  });
  it('the expired leaf is decided by validity, the revoked one by the CRL', async () => {
    expect((await explain('us-east-1/short', 'us-east-1/api', plus(30))).directions[0].decidedBy).toMatchObject({
      check: 'validity',
      openssl: expect.stringMatching(/^error 10/),
    });
    expect((await explain(revokedWeb, 'us-east-1/api', plus(1))).directions[0].decidedBy).toMatchObject({
      check: 'crl',
      openssl: expect.stringMatching(/^error 23/),
    });
  });
  it("--stack jvm declares that a JVM ignores its anchors' name constraints, so the boundary holds only with the scope check; --stack botan refuses", async () => {
    const plain = await m.ci(['explain', 'global/control', 'us-east-1/api', '--now', plus(1), '--now-ahead']);
    expect(plain.stdout).not.toMatch(/declared for|scope check/);
    const r = await m.ci([
      'explain',
      'global/control',
      'us-east-1/api',
      '--stack',
      'jvm',
      '--now',
      plus(1),
      '--now-ahead',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/the handshake PASSES/);
    expect(r.stdout).toMatch(
      new RegExp(
        /✓ name-constraints every name inside global\.mesh\.example \(a JVM applies this only with the /.source +
          /scope check in docs\/jvm\.md\)/.source,
      ),
    );
    expect(r.stdout).toMatch(
      new RegExp(
        /declared for a jvm verifier:\n {2}- a JVM \(Java PKIX, JSSE\) does not apply a trust anchor's /.source +
          /name constraints.*the name boundary holds only with the scope check in docs\/jvm\.md/.source,
      ),
    );
    expect(r.stdout).toMatch(/crl\.jvm\.pem \(bundle --format crl-jvm\), not crl\.pem/);
    // The section it points to is there.
    expect(fs.readFileSync(path.join(REPO, 'docs/jvm.md'), 'utf8')).toMatch(/^## The scope check/m);
    const j = await m.ci([
      'explain',
      'global/control',
      'us-east-1/api',
      '--stack',
      'jvm',
      '--json',
      '--now',
      plus(1),
      '--now-ahead',
    ]);
    expect(JSON.parse(j.stdout)).toMatchObject({
      stack: 'jvm',
      passes: true,
      gaps: [expect.stringMatching(/scope check/), expect.any(String)],
    });
    const b = await m.ci([
      'explain',
      'global/control',
      'us-east-1/api',
      '--stack',
      'botan',
      '--json',
      '--now',
      plus(1),
      '--now-ahead',
    ]);
    expect(b.code).toBe(1);
    const e = JSON.parse(b.stdout);
    expect(e.passes).toBe(false);
    for (const d of e.directions)
      expect(d.decidedBy).toMatchObject({ check: 'stack', detail: expect.stringMatching(/^Botan 2 builds no path/) });
    expect(e.gaps[0]).toMatch(/docs\/conformance\.md#botan-consumers/);
    expect((await m.ci(['explain', 'global/control', 'us-east-1/api', '--stack', 'gnutls'])).code).toBe(2);
  });
  it('refuses a party that is neither a declared service nor a certificate file (exit 2, naming the scope file)', async () => {
    const r = await m.ci(['explain', 'us-east-1/nope', 'global/control']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/scopes\/us-east-1\.yaml: scope us-east-1 declares no service "nope"/);
    const bad = path.join(scratch, 'not-a-cert.pem');
    fs.writeFileSync(bad, 'hello\n');
    const b = await m.ci(['explain', bad, 'global/control']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain(bad);
  });
});
