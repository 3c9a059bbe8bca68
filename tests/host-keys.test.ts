/**
 * Keys that never leave the host (issue 23, `key: host`): renew signs a leaf
 * for the public key of a committed CSR, with trellis's names, after checking
 * possession, the key type and that no other service or CA holds the key; the
 * output carries no key; a real nginx serves the leaf with a key generated
 * where CI never reads. Every bad request exits 2 with the store unchanged.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newIdentity, parseCertificate, tryDecrypt } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { execa } from 'execa';
import { AGENT_BIN, REPO, baseEnv, expectRefused, tool } from './helpers/cli.js';
import { at, DAY, RUN_NOW } from './helpers/clock.js';
import { openCa } from './helpers/forge-chain.js';
import { nginxFor, request, waitForPort } from './helpers/servers.js';

const T0 = at(RUN_NOW);
const CSR = 'scopes/us-east-1/web.csr.pem';
/** Where the hosts keep their keys: a directory no trellis command is ever pointed at. */
const hosts = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-hosts-'));
let base: FakeMesh;
let n = 0;

/** The openssl recipe of docs/host-keys.md: key birth, then a rotation with its proof. */
const [KEYGEN, ROTATE] = [
  ...fs
    .readFileSync(path.join(REPO, 'docs/host-keys.md'), 'utf8')
    .matchAll(/<!-- doc-test: run by=tests\/host-keys\.test\.ts -->\n```sh\n([\s\S]*?)```/g),
].map((x) => x[1]!);

/** Runs a block of the recipe on a "host" whose keys live in `keys`. */
async function onHost(block: string, keys: string): Promise<void> {
  const r = await execa('sh', ['-ec', block], {
    env: { PATH: process.env.PATH, KEYS: keys, MESH: 'test', SCOPE: 'us-east-1', SERVICE: 'web' },
    extendEnv: false,
    reject: false,
  });
  expect(r.exitCode, String(r.stderr)).toBe(0);
}

interface HostKey {
  keyFile: string;
  keyPem: string;
  csr: string;
}

/** A key born on a "host" with plain openssl (the recipe of docs/host-keys.md), and its CSR asking for other names. */
async function hostKey(algorithm: string[] = ['EC', '-pkeyopt', 'ec_paramgen_curve:P-256']): Promise<HostKey> {
  const dir = path.join(hosts, `host-${n++}`);
  fs.mkdirSync(dir, { mode: 0o700 });
  const keyFile = path.join(dir, 'key.pem');
  const g = await tool('openssl', ['genpkey', '-algorithm', ...algorithm, '-out', keyFile]);
  expect(g.code, g.stderr).toBe(0);
  const r = await tool('openssl', [
    'req',
    '-new',
    '-key',
    keyFile,
    '-subj',
    '/CN=evil.example',
    '-addext',
    'subjectAltName=DNS:evil.example,URI:spiffe://mesh.example/global/control',
  ]);
  expect(r.code, r.stderr).toBe(0);
  return { keyFile, keyPem: fs.readFileSync(keyFile, 'utf8'), csr: r.stdout };
}

const spkiOf = (keyPem: string) =>
  crypto.createPublicKey(crypto.createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' }).toString('hex');
/** The base64 body of a PEM: what a copy of the key anywhere would contain. */
const bodyOf = (pem: string) => pem.split('\n').filter((l) => l && !l.startsWith('-----'))[1]!;

function withHostService(m: FakeMesh, services: Record<string, Record<string, unknown>> = { web: { key: 'host' } }) {
  m.writeScope('us-east-1', ['api', services]);
}

/** Every file under `dir` whose bytes contain `needle`. */
function filesHolding(dir: string, needle: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .filter((f) => fs.readFileSync(f, 'latin1').includes(needle));
}

beforeAll(async () => {
  base = await FakeMesh.create({ now: T0, scopes: { global: ['control'], 'us-east-1': ['api'] } });
}, 120_000);

describe('renew signs a host-held key; deploy ships it without a key; the installer pairs it', () => {
  let m: FakeMesh;
  let host: HostKey;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-hostkey-nginx-'));
  const release = path.join(root, 'web');
  const nginx = nginxFor(root, 'web', release);
  /** The host's keys, beside its releases: a directory no trellis command reads. */
  const keys = path.join(release, 'keys');
  let firstDeploy: { code: number; stdout: string; stderr: string };

  beforeAll(async () => {
    m = base.clone();
    await onHost(KEYGEN!, keys);
    const keyFile = path.join(keys, 'web.key');
    host = {
      keyFile,
      keyPem: fs.readFileSync(keyFile, 'utf8'),
      csr: fs.readFileSync(path.join(keys, 'web.csr.pem'), 'utf8'),
    };
    // The key the CSR names is set aside: the first deploy finds the host without it.
    const filed = path.join(keys, fs.readlinkSync(keyFile));
    fs.renameSync(filed, `${filed}.aside`);
    withHostService(m, { web: { key: 'host', deploy: [{ type: 'dir', path: release, reload: 'nginx-web' }] } });
    m.write(CSR, host.csr);
    // The custodian confirms the allow-list and reviews the new key (a custody event) before CI signs for it.
    await m.allow({ dir: { paths: [root] }, reload: { 'nginx-web': nginx.reload } }, { now: T0 });
    const r = await m.ci(['renew', '--now', T0]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('mint us-east-1/web');
    firstDeploy = await m.ci(['deploy', '--now', T0]);
    fs.renameSync(`${filed}.aside`, filed);
  }, 90_000);

  afterAll(() => nginx.stop());

  it('confirm lists the first key; verify is clean once it is signed', async () => {
    const v = await m.ci(['verify', '--now', T0]);
    expect(v.stdout).not.toContain('host key');
  });

  it("certifies the CSR's key under trellis's names, never the names it asked for", () => {
    const cert = parseCertificate(fs.readFileSync(m.out('us-east-1', 'web', 'cert.pem'), 'utf8'));
    expect(Buffer.from(cert.publicKey.rawData).toString('hex')).toBe(spkiOf(host.keyPem));
    expect(cert.subject).toBe('CN=web.us-east-1.mesh.example');
    const names = JSON.stringify(cert.getExtension('2.5.29.17'));
    expect(names).not.toContain('evil.example');
    expect(names).not.toContain('global/control');
    expect(m.read('bundles/us-east-1/leaves.yaml')).toContain('spiffe://us-east-1.mesh.example/web');
  });

  it('the installer refuses a certificate whose key the host does not hold', () => {
    expect(firstDeploy.code, firstDeploy.stdout + firstDeploy.stderr).toBe(1);
    expect(firstDeploy.stdout + firstDeploy.stderr).toMatch(
      /the host holds no key for cert\.pem \(sha256:[0-9a-f]{64}\)/,
    );
    expect(fs.existsSync(path.join(release, 'current'))).toBe(false);
  });

  it('a real nginx serves the leaf trellis signed with the key its host generated', async () => {
    const d = await m.ci(['deploy', '--now', T0]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^installed .*us-east-1\/web/m);
    await waitForPort(nginx.port);
    const cur = path.join(release, 'current');
    expect(fs.lstatSync(path.join(cur, 'key.pem')).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(path.join(cur, 'key.pem'))).toMatch(/^\.\.\/\.\.\/keys\/sha256-[0-9a-f]{64}\.pem$/);
    expect(fs.existsSync(path.join(cur, 'chain-and-key.pem'))).toBe(false);
    const out = m.path('.trellis/out/us-east-1');
    const client = {
      name: 'us-east-1/api',
      key: fs.readFileSync(path.join(out, 'api', 'key.pem'), 'utf8'),
      chain: fs.readFileSync(path.join(out, 'api', 'chain.pem'), 'utf8'),
      ca: m.read('bundles/us-east-1/trust.openssl.pem'),
      crl: fs.readFileSync(path.join(out, 'crl.pem'), 'utf8'),
    };
    expect(await request(nginx.port, 'web.us-east-1.mesh.example', client)).toBe(200);
  }, 30_000);

  it('no copy of the host key in the store, the output directory or a release directory', () => {
    expect(fs.existsSync(m.out('us-east-1', 'web', 'key.pem'))).toBe(false);
    expect(fs.existsSync(m.out('us-east-1', 'web', 'cert.pem'))).toBe(true);
    // A CI-minted neighbour keeps its key.
    expect(fs.existsSync(m.out('us-east-1', 'api', 'key.pem'))).toBe(true);
    expect(filesHolding(m.dir, bodyOf(host.keyPem))).toEqual([]);
    expect(filesHolding(path.join(release, 'releases'), bodyOf(host.keyPem))).toEqual([]);
  });
});

describe('a bad request exits 2 and leaves the store unchanged', () => {
  interface Case {
    name: string;
    /** Prepares the clone: its scope file and requests. */
    damage: (m: FakeMesh) => Promise<void>;
    says: RegExp;
    file?: string;
  }
  const flipLastByte = (pem: string) => {
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 1]! ^= 0x01;
    const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
    return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`;
  };
  const cases: Case[] = [
    {
      name: 'no CSR committed',
      damage: async (m) => withHostService(m),
      says: /no certificate request/,
    },
    {
      name: 'a malformed file',
      damage: async (m) => {
        withHostService(m);
        m.write(CSR, '-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n');
      },
      says: /not a PKCS#10 certificate request/,
    },
    {
      name: 'a wrong signature (no proof of possession)',
      damage: async (m) => {
        withHostService(m);
        m.write(CSR, flipLastByte((await hostKey()).csr));
      },
      says: /signature does not verify/,
    },
    {
      name: 'a P-384 key in a P-256 mesh',
      damage: async (m) => {
        withHostService(m);
        m.write(CSR, (await hostKey(['EC', '-pkeyopt', 'ec_paramgen_curve:P-384'])).csr);
      },
      says: /ecdsa-p384 key; this mesh's leaves are ecdsa-p256/,
    },
    {
      name: 'an RSA key',
      damage: async (m) => {
        withHostService(m);
        m.write(CSR, (await hostKey(['RSA', '-pkeyopt', 'rsa_keygen_bits:2048'])).csr);
      },
      says: /a kind of key; this mesh's leaves are ecdsa-p256/,
    },
    {
      name: "another service's key",
      damage: async (m) => {
        withHostService(m, { web: { key: 'host' }, www: { key: 'host' } });
        const { csr } = await hostKey();
        m.write(CSR, csr);
        m.write('scopes/us-east-1/www.csr.pem', csr);
      },
      says: /the key of us-east-1\/(web|www)/,
      file: 'scopes/us-east-1/w',
    },
    {
      name: "the scope intermediate's key",
      damage: async (m) => {
        withHostService(m);
        const ca = await openCa(
          m.ciIdentityFile,
          m.read('bundles/us-east-1/intermediate.key.age'),
          m.read('bundles/us-east-1/intermediate.pem'),
        );
        const keyFile = path.join(hosts, `ca-${n++}.pem`);
        fs.writeFileSync(keyFile, ca.key, { mode: 0o600 });
        const r = await tool('openssl', ['req', '-new', '-key', keyFile, '-subj', '/CN=x']);
        m.write(CSR, r.stdout);
      },
      says: /the key of the us-east-1 intermediate CA/,
    },
    {
      name: 'a Kubernetes target',
      damage: async (m) => {
        withHostService(m, {
          web: { key: 'host', deploy: [{ type: 'kubernetes', namespace: 'mesh', name: 'web' }] },
        });
        m.write(CSR, (await hostKey()).csr);
      },
      says: /services\.web\.deploy\[0\]: is a Kubernetes target, and a Kubernetes Secret carries the key/,
      file: 'scopes/us-east-1.yaml',
    },
  ];
  it('property: a CSR with any one byte of its DER changed is refused by plan (exit 2), the store unchanged', async () => {
    const m = base.clone();
    withHostService(m);
    const { csr } = await hostKey();
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const before = m.snapshot();
    await fc.assert(
      fc.asyncProperty(fc.nat(der.length - 1), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
        const bad = Buffer.from(der);
        bad[at]! ^= xor;
        m.write(
          CSR,
          `-----BEGIN CERTIFICATE ` +
            `REQUEST-----\n${bad.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE ` +
            `REQUEST-----\n`,
        );
        const r = await m.ci(['plan', '--now', T0]);
        expectRefused(r, 'bad-scope');
        expect(r.stderr).toContain(CSR);
      }),
      // [3, 32]: a length byte the parser tolerated, once found by CI (x509/csr.ts now asks for DER).
      { numRuns: 8, examples: [[3, 32]] },
    );
    const after = m.snapshot();
    delete after[CSR];
    expect(after).toEqual(before);
  }, 120_000);

  it.each(cases)(
    '$name',
    async (c) => {
      const m = base.clone();
      await c.damage(m);
      const before = m.snapshot();
      for (const args of [
        ['renew', '--now', T0],
        ['plan', '--now', T0],
      ]) {
        const r = await m.ci(args);
        expectRefused(r, 'bad-scope');
        expect(r.stderr, `${args[0]}: names the file`).toContain(c.file ?? CSR);
        // Every case is bad-scope: what is wrong with the request is the point, so its words are checked.
        expect(r.stderr, `${args[0]}: says what is wrong`).toMatch(c.says);
        expect(r.stderr).toContain('→');
        expect(r.stderr).not.toMatch(/^\s+at /m);
      }
      expect(m.snapshot()).toEqual(before);
      expect(fs.existsSync(m.out('us-east-1', 'web', 'cert.pem'))).toBe(false);
    },
    60_000,
  );
});

/** The rotation proof of docs/host-keys.md, made with plain openssl: the current key signs the new key's statement. */
async function rotationProof(current: HostKey, next: HostKey, service = 'web'): Promise<string> {
  const csr = path.join(hosts, `next-${n++}.csr`);
  fs.writeFileSync(csr, next.csr);
  const der = await tool('sh', [
    '-c',
    `openssl req -in ${csr} -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum`,
  ]);
  expect(der.code, der.stderr).toBe(0);
  const newKey = `sha256:${der.stdout.split(' ')[0]}`;
  const statement = path.join(hosts, `statement-${n++}`);
  fs.writeFileSync(
    statement,
    `trellis host key rotation\nmesh: test\nscope: us-east-1\nservice: ${service}\nnew key: ${newKey}\n`,
  );
  const sig = await tool('sh', ['-c', `openssl dgst -sha256 -sign ${current.keyFile} ${statement} | base64 -w0`]);
  const pub = await tool('sh', ['-c', `openssl pkey -in ${current.keyFile} -pubout -outform DER | base64 -w0`]);
  return `${JSON.stringify({ currentKey: pub.stdout, signature: sig.stdout }, null, 2)}\n`;
}

describe('every key a pull request introduces is a custody event', () => {
  let signed: FakeMesh;
  let first: HostKey;
  /** The host directory of the recipe's keys. */
  let keys: string;
  const leafKey = (m: FakeMesh) =>
    Buffer.from(
      parseCertificate(fs.readFileSync(m.out('us-east-1', 'web', 'cert.pem'), 'utf8')).publicKey.rawData,
    ).toString('hex');

  beforeAll(async () => {
    signed = base.clone();
    keys = path.join(hosts, 'recipe');
    await onHost(KEYGEN!, keys);
    const keyFile = path.join(keys, 'web.key');
    first = {
      keyFile,
      keyPem: fs.readFileSync(keyFile, 'utf8'),
      csr: fs.readFileSync(path.join(keys, 'web.csr.pem'), 'utf8'),
    };
    withHostService(signed);
    signed.write(CSR, first.csr);
    expect((await signed.root(['confirm', '--now', T0])).code).toBe(0);
    const r = await signed.ci(['renew', '--now', T0]);
    expect(r.code, r.stderr).toBe(0);
  }, 60_000);

  it("an attacker's pull request adding a service with its own CSR gets no leaf; the other services are renewed", async () => {
    const m = base.clone();
    withHostService(m);
    m.write(CSR, (await hostKey()).csr);
    const api = m.read('bundles/us-east-1/leaves.yaml');
    const r = await m.ci(['renew', '--now', T0, '--force']);
    expectRefused(r, 'custody-not-confirmed');
    expect(r.stderr, 'names the service and its key').toMatch(
      /renew held us-east-1\/web \(its first key sha256:[0-9a-f]{64} is not yet confirmed/,
    );
    expect(r.stderr).toContain(CSR);
    expect(r.stdout).toContain('mint us-east-1/api (forced)');
    expect(fs.existsSync(m.out('us-east-1', 'web', 'cert.pem'))).toBe(false);
    const after = m.read('bundles/us-east-1/leaves.yaml');
    expect(after).not.toBe(api);
    expect(after).not.toContain('web');
    const plan = await m.ci(['plan', '--now', T0]);
    expectRefused(plan, 'custody-not-confirmed');
    const v = await m.ci(['verify', '--now', T0, '--format', 'markdown']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/host key us-east-1\/web: sha256:[0-9a-f]{64} \(first key\) does not count/);
  }, 60_000);

  it("a pull request swapping the CSR for the attacker's key gets no leaf", async () => {
    const m = signed.clone();
    const before = leafKey(m);
    const record = m.read('bundles/us-east-1/leaves.yaml');
    m.write(CSR, (await hostKey()).csr);
    const r = await m.ci(['renew', '--now', T0, '--force']);
    expectRefused(r, 'custody-not-confirmed');
    expect(r.stderr, 'names both keys').toMatch(
      /its key changed from sha256:[0-9a-f]{64} to sha256:[0-9a-f]{64} with neither a proof/,
    );
    const v = await m.ci(['verify', '--now', T0, '--format', 'markdown']);
    expect(v.stdout).toMatch(
      /host key us-east-1\/web: sha256:[0-9a-f]{64} \(replaces sha256:[0-9a-f]{64}\) does not count/,
    );
    expect(leafKey(m)).toBe(before);
    expect(m.read('bundles/us-east-1/leaves.yaml').match(/web:\n(.*\n){2}/)![0]).toBe(
      record.match(/web:\n(.*\n){2}/)![0],
    );
  }, 60_000);

  it('a swap with a proof signed by a key other than the current one gets no leaf', async () => {
    const m = signed.clone();
    const attacker = await hostKey();
    const next = await hostKey();
    m.write(CSR, next.csr);
    m.write('scopes/us-east-1/web.key-proof.json', await rotationProof(attacker, next));
    expectRefused(await m.ci(['renew', '--now', T0]), 'custody-not-confirmed');
  }, 60_000);

  it("a rotation with the proof from the current key (docs/host-keys.md's openssl recipe) is signed with no confirmation", async () => {
    const m = signed.clone();
    await onHost(ROTATE!, keys);
    const next = { keyPem: fs.readFileSync(path.join(keys, 'web.next.key'), 'utf8') };
    m.write(CSR, fs.readFileSync(path.join(keys, 'web.csr.pem'), 'utf8'));
    m.write('scopes/us-east-1/web.key-proof.json', fs.readFileSync(path.join(keys, 'web.key-proof.json'), 'utf8'));
    const r = await m.ci(['renew', '--now', T0]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('mint us-east-1/web (key-changed)');
    expect(leafKey(m)).toBe(spkiOf(next.keyPem));
    // The proof was for this one step: the first key, still in the last confirmation, does not come back.
    m.write(CSR, first.csr);
    const back = await m.ci(['renew', '--now', T0]);
    expectRefused(back, 'custody-not-confirmed');
    expect(leafKey(m)).toBe(spkiOf(next.keyPem));
  }, 60_000);

  it('renew re-signs the same key when the leaf is due, with no confirmation', async () => {
    const m = signed.clone();
    const serial = () => parseCertificate(fs.readFileSync(m.out('us-east-1', 'web', 'cert.pem'), 'utf8')).serialNumber;
    const before = serial();
    const r = await m.ci(['renew', '--now', at(RUN_NOW, 5 * DAY), '--now-ahead']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('mint us-east-1/web (renewal-window)');
    expect(serial()).not.toBe(before);
    expect(leafKey(m)).toBe(spkiOf(first.keyPem));
  }, 60_000);

  it('revoke revokes the leaf and records the key revoked: no replacement, the same key is held, a new confirmed one is signed', async () => {
    const m = signed.clone();
    const serial = parseCertificate(fs.readFileSync(m.out('us-east-1', 'web', 'cert.pem'), 'utf8')).serialNumber;
    const r = await m.ci(['revoke', 'us-east-1/web', '--reason', 'keyCompromise', '--now', T0]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('no replacement');
    expect(m.read('bundles/us-east-1/state.yaml')).toContain(serial.replace(/^0+/, '').slice(0, 8));
    expect(m.read('bundles/us-east-1/leaves.yaml')).not.toContain('web:');
    // The revoked key's CSR is still committed: renew holds the service, whatever a confirmation says.
    expect((await m.root(['confirm', '--now', T0])).code).toBe(0);
    const held = await m.ci(['renew', '--now', T0]);
    expectRefused(held, 'custody-not-confirmed');
    expect(held.stderr, 'says why').toContain('was revoked');
    // Nor does a proof signed by the revoked key count.
    await onHost(ROTATE!, keys);
    m.write(CSR, fs.readFileSync(path.join(keys, 'web.csr.pem'), 'utf8'));
    m.write('scopes/us-east-1/web.key-proof.json', fs.readFileSync(path.join(keys, 'web.key-proof.json'), 'utf8'));
    expectRefused(await m.ci(['renew', '--now', T0]), 'custody-not-confirmed');
    expect((await m.root(['confirm', '--now', T0])).code).toBe(0);
    const fresh = await m.ci(['renew', '--now', T0]);
    expect(fresh.code, fresh.stdout + fresh.stderr).toBe(0);
    expect(leafKey(m)).toBe(spkiOf(fs.readFileSync(path.join(keys, 'web.next.key'), 'utf8')));
  }, 90_000);

  it('a compromise recovery of the intermediate re-signs the host key under the new intermediate', async () => {
    const m = signed.clone();
    const oldIssuer = m.read('bundles/us-east-1/intermediate.pem');
    const rec = await m.root(['recover', 'us-east-1', '--reason', 'keyCompromise', '--now', T0]);
    expect(rec.code, rec.stderr).toBe(0);
    const r = await m.ci(['renew', '--now', T0]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('mint us-east-1/web (issuer-changed)');
    const cert = parseCertificate(fs.readFileSync(m.out('us-east-1', 'web', 'cert.pem'), 'utf8'));
    expect(cert.issuer).toBe(parseCertificate(m.read('bundles/us-east-1/intermediate.pem')).subject);
    expect(m.read('bundles/us-east-1/intermediate.pem')).not.toBe(oldIssuer);
    expect(
      await cert.verify({
        publicKey: parseCertificate(m.read('bundles/us-east-1/intermediate.pem')).publicKey,
        signatureOnly: true,
      }),
    ).toBe(true);
    expect(leafKey(m)).toBe(spkiOf(first.keyPem));
  }, 60_000);

  it("check and the metrics report the host key's age, and warn past 90 days", async () => {
    const m = signed.clone();
    const metrics = path.join(hosts, `metrics-${n++}.prom`);
    const c = await m.ci(['check', '--now', T0, '--metrics', metrics]);
    expect(fs.readFileSync(metrics, 'utf8')).toMatch(
      /^trellis_host_key_since_seconds\{scope="us-east-1",service="web",key="sha256:[0-9a-f]{64}"\} \d+$/m,
    );
    expect(c.stdout).not.toContain('past 90d');
    const late = await m.ci(['check', '--now', at(RUN_NOW, 91 * DAY), '--now-ahead']);
    expect(late.stdout).toMatch(
      /us-east-1\/web.*host-held key sha256:[0-9a-f]{64} signed since .*, past 90d: rotate it/,
    );
  }, 60_000);

  it('a changed key a custodian confirmed is signed', async () => {
    const m = signed.clone();
    const next = await hostKey();
    m.write(CSR, next.csr);
    const dry = await m.root(['confirm', '--now', T0, '--dry-run']);
    expect(dry.stdout).toMatch(/host key us-east-1\/web: sha256:[0-9a-f]{64} \(replaces sha256:[0-9a-f]{64}\)/);
    expect((await m.root(['confirm', '--now', T0])).code).toBe(0);
    const r = await m.ci(['renew', '--now', T0]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(leafKey(m)).toBe(spkiOf(next.keyPem));
  }, 60_000);
});

describe('a sealed host installs a key-less release with the real agent', () => {
  let m: FakeMesh;
  let bundle: string;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-hostkey-sealed-'));
  const hostDir = path.join(work, 'host');
  const idFile = path.join(work, 'host.identity');
  const roots = path.join(work, 'roots.pem');
  let hostKeyPem: string;
  const install = async (dir: string) => {
    const r = await execa('node', [AGENT_BIN, 'install', '--bundle', bundle, '--dir', dir, '--roots', roots], {
      env: baseEnv({ TRELLIS_AGENT_IDENTITY_FILE: idFile }) as NodeJS.ProcessEnv,
      extendEnv: false,
      reject: false,
    });
    return { code: r.exitCode ?? -1, out: `${r.stdout}${r.stderr}` };
  };

  beforeAll(async () => {
    const host = await newIdentity();
    fs.writeFileSync(idFile, host.identity, { mode: 0o600 });
    m = base.clone();
    fs.writeFileSync(roots, m.read('bundles/root/roots.pem'));
    await onHost(KEYGEN!, path.join(hostDir, 'keys'));
    hostKeyPem = fs.readFileSync(path.join(hostDir, 'keys', 'web.key'), 'utf8');
    withHostService(m, { web: { key: 'host', deploy: [{ type: 'sealed', host: 'web-1' }] } });
    m.write(CSR, fs.readFileSync(path.join(hostDir, 'keys', 'web.csr.pem'), 'utf8'));
    await m.allow({ sealed: { 'web-1': { recipient: host.recipient } } }, { now: T0 });
    expect((await m.ci(['renew', '--now', T0])).code).toBe(0);
    const d = await m.ci(['deploy', '--now', T0, '--sealed-out', path.join(work, 'sealed')]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    bundle = path.join(work, 'sealed', 'us-east-1', 'web', 'web-1.age');
    const opened = await tryDecrypt([host.identity], fs.readFileSync(bundle, 'utf8'));
    expect(opened.ok).toBe(true);
    const files = Object.keys(JSON.parse(opened.ok ? opened.text : '{}').release.files);
    expect(files).toContain('cert.pem');
    expect(files.filter((f) => f.includes('key'))).toEqual([]);
  }, 90_000);

  it('pairs it with the key the host keeps, and refuses it on a host without that key', async () => {
    const bare = await install(path.join(work, 'bare'));
    expect(bare.code, bare.out).not.toBe(0);
    expect(bare.out).toMatch(/the host holds no key for cert\.pem/);
    const r = await install(hostDir);
    expect(r.code, r.out).toBe(0);
    const cur = path.join(hostDir, 'current');
    expect(fs.lstatSync(path.join(cur, 'key.pem')).isSymbolicLink()).toBe(true);
    const cert = parseCertificate(fs.readFileSync(path.join(cur, 'cert.pem'), 'utf8'));
    expect(Buffer.from(cert.publicKey.rawData).toString('hex')).toBe(spkiOf(hostKeyPem));
    expect(filesHolding(path.join(hostDir, 'releases'), bodyOf(hostKeyPem))).toEqual([]);
    expect(filesHolding(path.join(work, 'sealed'), bodyOf(hostKeyPem))).toEqual([]);
  }, 60_000);
});

describe('trellis-agent keygen: the key born on the host, never printed', () => {
  const agent = (args: string[]) =>
    execa('node', [AGENT_BIN, ...args], { env: baseEnv() as NodeJS.ProcessEnv, extendEnv: false, reject: false });

  it('a first key and a rotation with its proof, each signed by renew', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-keygen-'));
    const keys = path.join(dir, 'keys');
    const g = await agent(['keygen', 'web', '--dir', dir]);
    expect(g.exitCode, String(g.stderr)).toBe(0);
    const first = fs.readFileSync(path.join(keys, 'web.key'), 'utf8');
    const filed = path.join(keys, fs.readlinkSync(path.join(keys, 'web.key')));
    expect(path.basename(filed)).toMatch(/^sha256-[0-9a-f]{64}\.pem$/);
    expect(fs.statSync(filed).mode & 0o777).toBe(0o600);
    expect(fs.statSync(keys).mode & 0o777).toBe(0o700);
    expect(String(g.stdout)).toMatch(
      /^-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]+-----END CERTIFICATE REQUEST-----\n?$/,
    );
    expect(`${g.stdout}${g.stderr}`).not.toContain(bodyOf(first));
    expect(String(g.stderr)).toContain('scopes/<scope>/web.csr.pem');
    // A second first key would orphan the one the mesh signs: a new key is a rotation.
    const again = await agent(['keygen', 'web', '--dir', dir]);
    expectRefused({ code: again.exitCode ?? -1, stdout: String(again.stdout), stderr: String(again.stderr) }, 'usage');
    expect(String(again.stderr), 'the hint').toMatch(/→ .*--rotate/);

    const m = base.clone();
    withHostService(m);
    m.write(CSR, String(g.stdout));
    expect((await m.root(['confirm', '--now', T0])).code).toBe(0);
    const r = await m.ci(['renew', '--now', T0]);
    expect(r.code, r.stderr).toBe(0);
    const leafKey = () =>
      Buffer.from(
        parseCertificate(fs.readFileSync(m.out('us-east-1', 'web', 'cert.pem'), 'utf8')).publicKey.rawData,
      ).toString('hex');
    expect(leafKey()).toBe(spkiOf(first));

    const rot = await agent(['keygen', 'web', '--dir', dir, '--rotate', '--mesh', 'test', '--scope', 'us-east-1']);
    expect(rot.exitCode, String(rot.stderr)).toBe(0);
    const next = fs.readFileSync(path.join(keys, 'web.next.key'), 'utf8');
    expect(`${rot.stdout}${rot.stderr}`).not.toContain(bodyOf(next));
    expect(`${rot.stdout}${rot.stderr}`).not.toContain(bodyOf(first));
    m.write(CSR, String(rot.stdout));
    m.write('scopes/us-east-1/web.key-proof.json', fs.readFileSync(path.join(keys, 'web.key-proof.json'), 'utf8'));
    const r2 = await m.ci(['renew', '--now', T0]);
    expect(r2.code, r2.stdout + r2.stderr).toBe(0);
    expect(r2.stdout).toContain('mint us-east-1/web (key-changed)');
    expect(leafKey()).toBe(spkiOf(next));
    // Both keys stay filed by hash: a rollback to the previous release still finds its key.
    expect(fs.readdirSync(keys).filter((f) => f.startsWith('sha256-'))).toHaveLength(2);
  }, 90_000);
});
