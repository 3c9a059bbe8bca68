/**
 * The template leaf encoder (core/src/x509/leaf-template.ts): its TBSCertificate is
 * byte-identical to the @peculiar/x509 path for the same serial, key, times and
 * names; its keys open and match; OpenSSL (-x509_strict, both purposes) and Go
 * accept its leaves; its randomness comes from the CryptoSeam alone.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  PROFILES,
  certificatePem,
  extensionsFor,
  pemEncode,
  keyMatchesCert,
  leafBatch,
  leafKeyPair,
  leafNames,
  leafTbs,
  leafTemplateFor,
  mintedFromBatch,
  nodeCryptoSeam,
  parseCertificate,
  profileViolations,
  permittedNamesFor,
  signingKeyObject,
  LEAF_SECRET_BYTES,
  iso,
  parseIssuanceRecord,
  serializeIssuanceRecord,
  toYaml,
  type CryptoSeam,
  type KeyAlgorithm,
  type SigningIntermediate,
  caKeyFromPem,
} from '@trellis/core';
import { mintIntermediate, mintRoot } from '../packages/offline/src/ceremony.js';
import { parseMeshConfig, serializeMeshConfig } from '../packages/core/src/config/config.js';
import { newIdentity } from '../packages/core/src/custody/custody.js';
import { DAY, RUN_NOW, plus } from './helpers/clock.js';

const NOW = plus(RUN_NOW, 250); // a quarter second: notBefore and notAfter round to whole seconds
const REPO = path.resolve(__dirname, '..');
const GOBATCH = path.join(REPO, 'scripts/gobatch/gobatch');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'leaf-template-'));

interface Chain {
  rootPem: string;
  inter: SigningIntermediate;
}
const chains = new Map<KeyAlgorithm, Chain>();

beforeAll(async () => {
  const base = parseMeshConfig(
    serializeMeshConfig({
      mesh: 't',
      trustDomain: 'mesh.example',
      recipients: { offline: [(await newIdentity()).recipient], ci: (await newIdentity()).recipient },
    }),
  );
  for (const alg of ['ecdsa-p256', 'ecdsa-p384', 'ed25519'] as const) {
    const config = { ...base, algorithms: { root: alg, intermediate: alg, leaf: alg } };
    const r = await mintRoot(config, plus(RUN_NOW, -365 * DAY), nodeCryptoSeam);
    const i = await mintIntermediate(
      'us-east-1',
      config,
      await caKeyFromPem('root', r.cert, r.keyPem),
      plus(RUN_NOW, -365 * DAY),
      nodeCryptoSeam,
    );
    chains.set(alg, {
      rootPem: certificatePem(r.cert),
      inter: { scope: 'us-east-1', ...(await caKeyFromPem('intermediate', i.cert, i.keyPem)) },
    });
  }
});

/** A seam whose bytes are a counter: injected randomness, reproducible. */
function countingSeam(start: number): CryptoSeam {
  let n = start;
  return {
    ...nodeCryptoSeam,
    randomBytes: (len) => Uint8Array.from({ length: len }, () => (n = (n * 1103515245 + 12345) >>> 0) >>> 24),
  };
}

/** The TBSCertificate of a certificate: the first element of its outer SEQUENCE. */
function tbsOf(der: Uint8Array): Buffer {
  const b = Buffer.from(der);
  const at = (i: number): [number, number] =>
    b[i + 1]! < 0x80
      ? [i + 2, b[i + 1]!]
      : [i + 2 + (b[i + 1]! & 0x7f), b.subarray(i + 2, i + 2 + (b[i + 1]! & 0x7f)).reduce((a, x) => a * 256 + x, 0)];
  const [inner] = at(0);
  const [body, len] = at(inner);
  return b.subarray(inner, body + len);
}

/** The same leaf through @peculiar/x509, the one-leaf path's encoder. */
async function peculiarTbs(
  inter: SigningIntermediate,
  alg: KeyAlgorithm,
  o: { serial: string; notBefore: Date; notAfter: Date; uris: string[]; dns: string[] },
  spki: Buffer,
): Promise<Buffer> {
  const spec =
    alg === 'ed25519' ? { name: 'Ed25519' } : { name: 'ECDSA', namedCurve: alg === 'ecdsa-p256' ? 'P-256' : 'P-384' };
  const subjectPublicKey = (await webcrypto.subtle.importKey('spki', spki, spec, true, [
    'verify',
  ])) as unknown as CryptoKey;
  const cert = await nodeCryptoSeam.signCertificate({
    serial: o.serial,
    subject: `CN=${o.dns[0]}`,
    issuer: inter.cert.subject,
    notBefore: o.notBefore,
    notAfter: o.notAfter,
    subjectPublicKey,
    signingKey: inter.key,
    signingAlgorithm: inter.algorithm,
    extensions: await extensionsFor(PROFILES.leaf, {
      subjectPublicKey,
      issuerPublicKey: inter.cert.publicKey,
      sans: { uris: o.uris, dns: o.dns },
    }),
  });
  return tbsOf(new Uint8Array(cert.rawData));
}

describe('the leaf template', () => {
  it.each([
    ['a P-256 leaf', 'ecdsa-p256', 'api', [], NOW, 7 * 86_400_000, '01'.padEnd(34, 'a7')],
    [
      'a P-384 leaf with extra DNS names',
      'ecdsa-p384',
      'web',
      ['edge.us-east-1.mesh.example', 'w2.us-east-1.mesh.example'],
      NOW,
      72 * 3_600_000,
      '01'.padEnd(34, '3c'),
    ],
    ['an Ed25519 leaf', 'ed25519', 'db', [], NOW, 86_400_000, '01'.padEnd(34, '00')],
    [
      'a leaf valid past 2049 (GeneralizedTime)',
      'ecdsa-p256',
      'long',
      [],
      new Date('2049-12-31T12:00:00.999Z'),
      2 * 86_400_000,
      '01'.padEnd(34, 'ff'),
    ],
    ['a serial whose first byte has its high bit set', 'ecdsa-p256', 'api', [], NOW, 86_400_000, 'f1'.padEnd(34, '10')],
    [
      'a service name of 40 characters (long-form lengths)',
      'ecdsa-p256',
      'a'.repeat(40),
      Array.from({ length: 8 }, (_, i) => `n${i}.us-east-1.mesh.example`),
      NOW,
      86_400_000,
      '01'.padEnd(34, '5e'),
    ],
  ] as const)(
    'encodes %s TBSCertificate byte-identical to @peculiar/x509',
    async (_, alg, service, dns, now, ttl, serial) => {
      const { inter } = chains.get(alg)!;
      const sans = leafNames('us-east-1', { name: service, dns: [...dns], deploy: [] }, 'mesh.example');
      const o = {
        serial,
        notBefore: new Date(now.getTime() - 60_000),
        notAfter: new Date(now.getTime() + ttl),
        ...sans,
      };
      const key = leafKeyPair(alg, countingSeam(alg.length).randomBytes(LEAF_SECRET_BYTES[alg]));
      const mine = leafTbs(await leafTemplateFor(inter, alg), o, key);
      expect(mine.toString('hex')).toBe((await peculiarTbs(inter, alg, o, key.spki)).toString('hex'));
    },
  );

  it.each(['ecdsa-p256', 'ecdsa-p384', 'ed25519'] as const)(
    'derives a %s key whose PKCS#8 opens, matches its SPKI, and passes openssl pkey -check',
    (alg) => {
      const key = leafKeyPair(alg, countingSeam(7).randomBytes(LEAF_SECRET_BYTES[alg]));
      const opened = createPrivateKey({ key: key.pkcs8, format: 'der', type: 'pkcs8' });
      expect(createPublicKey(opened).export({ format: 'der', type: 'spki' }).toString('hex')).toBe(
        key.spki.toString('hex'),
      );
      const f = path.join(tmp, `${alg}.der`);
      fs.writeFileSync(f, key.pkcs8);
      const r = spawnSync('openssl', ['pkey', '-inform', 'DER', '-in', f, '-check', '-noout'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    },
  );

  it('an EC secret of all ones still lands inside [1, n-1]', () => {
    const key = leafKeyPair('ecdsa-p256', new Uint8Array(40).fill(0xff));
    expect(() => createPrivateKey({ key: key.pkcs8, format: 'der', type: 'pkcs8' })).not.toThrow();
  });

  it('refuses a secret of the wrong length rather than derive a weaker key', () => {
    expect(() => leafKeyPair('ecdsa-p256', new Uint8Array(32))).toThrow(/40 secret bytes/);
  });

  it('takes all its randomness from the seam: the same bytes make the same leaves, other bytes others', async () => {
    const { inter } = chains.get('ecdsa-p256')!;
    const reqs = ['a', 'b', 'c'].map((name) => ({
      scope: 'us-east-1',
      service: { name, dns: [], deploy: [] },
      trustDomain: 'mesh.example',
      ttl: 86_400_000,
      algorithm: 'ecdsa-p256' as const,
      now: NOW,
    }));
    const mint = async (seam: CryptoSeam) => {
      const b = await leafBatch('us-east-1', reqs, inter, seam);
      return mintedFromBatch(b, await nodeCryptoSeam.signLeafBatch(b, signingKeyObject(inter)));
    };
    const [x, y, z] = [await mint(countingSeam(1)), await mint(countingSeam(1)), await mint(countingSeam(2))];
    expect(x.map((l) => l.keyPem)).toEqual(y.map((l) => l.keyPem));
    expect(x.map((l) => l.record.serial)).toEqual(y.map((l) => l.record.serial));
    expect(new Set([...x, ...z].map((l) => l.record.serial)).size).toBe(6);
    expect(x.every((l) => /^01[0-9a-f]{32}$/.test(l.record.serial))).toBe(true);
  });

  it('records what the certificate says, and the certificate keeps the leaf profile', async () => {
    const { inter } = chains.get('ecdsa-p256')!;
    const b = await leafBatch(
      'us-east-1',
      [
        {
          scope: 'us-east-1',
          service: { name: 'api', dns: ['edge.us-east-1.mesh.example'], deploy: [] },
          trustDomain: 'mesh.example',
          ttl: 86_400_000,
          algorithm: 'ecdsa-p256',
          now: NOW,
        },
      ],
      inter,
      nodeCryptoSeam,
    );
    const [l] = mintedFromBatch(b, await nodeCryptoSeam.signLeafBatch(b, signingKeyObject(inter)));
    const cert = parseCertificate(l!.certPem);
    expect(l!.certPem).toBe(certificatePem(cert)); // the worker's PEM is crypto.ts's, byte for byte
    expect(l!.subject).toBe(cert.subject);
    expect(l!.record).toMatchObject({
      serial: cert.serialNumber,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      dns: ['api.us-east-1.mesh.example', 'edge.us-east-1.mesh.example'],
    });
    expect(keyMatchesCert(l!.keyPem, cert)).toBe(true);
    expect(profileViolations(cert, 'leaf', { permitted: permittedNamesFor('us-east-1', 'mesh.example') })).toEqual([]);
    expect(await cert.verify({ publicKey: inter.cert.publicKey, signatureOnly: true })).toBe(true);
  });

  it.each(['ecdsa-p256', 'ecdsa-p384', 'ed25519'] as const)(
    'OpenSSL (-x509_strict, sslclient and sslserver) and Go accept %s template leaves',
    async (alg) => {
      const { inter, rootPem } = chains.get(alg)!;
      const reqs = ['api', 'web', 'db'].map((name) => ({
        scope: 'us-east-1',
        service: { name, dns: name === 'web' ? ['edge.us-east-1.mesh.example'] : [], deploy: [] },
        trustDomain: 'mesh.example',
        ttl: 86_400_000,
        algorithm: alg,
        now: NOW,
      }));
      const b = await leafBatch('us-east-1', reqs, inter, nodeCryptoSeam);
      const leaves = mintedFromBatch(b, await nodeCryptoSeam.signLeafBatch(b, signingKeyObject(inter)));
      const dir = fs.mkdtempSync(path.join(tmp, alg));
      const root = path.join(dir, 'root.pem');
      const interFile = path.join(dir, 'inter.pem');
      const bundle = path.join(dir, 'bundle.pem');
      fs.writeFileSync(root, rootPem);
      fs.writeFileSync(interFile, certificatePem(inter.cert));
      fs.writeFileSync(bundle, rootPem + certificatePem(inter.cert));
      const at = Math.floor(NOW.getTime() / 1000) + 3600;
      const lines: string[] = [];
      for (const l of leaves) {
        const f = path.join(dir, `${l.service}.pem`);
        fs.writeFileSync(f, l.certPem);
        for (const purpose of ['sslclient', 'sslserver']) {
          const r = spawnSync(
            'openssl',
            [
              'verify',
              '-x509_strict',
              '-purpose',
              purpose,
              '-attime',
              String(at),
              '-CAfile',
              root,
              '-untrusted',
              interFile,
              f,
            ],
            { encoding: 'utf8' },
          );
          expect(r.status, `${l.service} ${purpose}: ${r.stdout}${r.stderr}`).toBe(0);
        }
        lines.push(`${bundle}\t${f}\t${new Date(at * 1000).toISOString()}`);
      }
      const go = execFileSync(GOBATCH, { input: `${lines.join('\n')}\n`, encoding: 'utf8' });
      expect(go.trim().split('\n')).toEqual(leaves.map(() => 'OK'));
    },
  );

  it("a leaf outside the issuer's scope is refused before any is signed", async () => {
    const { inter } = chains.get('ecdsa-p256')!;
    const req = {
      scope: 'eu-west-1',
      service: { name: 'api', dns: [], deploy: [] },
      trustDomain: 'mesh.example',
      ttl: 86_400_000,
      algorithm: 'ecdsa-p256' as const,
      now: NOW,
    };
    await expect(leafBatch('us-east-1', [req], inter, nodeCryptoSeam)).rejects.toMatchObject({
      reason: 'name-outside-constraints',
    });
  });
});

describe('leaves.yaml through the linear writer (plain-yaml.ts)', () => {
  const rec = (svc: string, o: Partial<Record<'serial' | 'issuer' | 'fingerprint' | 'uri' | 'dns', string>> = {}) =>
    [
      svc,
      {
        serial: o.serial ?? '015af5f043e44da39bcba9117b6cda0e67',
        notBefore: new Date('2026-12-01T23:20:27Z'),
        notAfter: new Date('2026-12-08T23:21:27.500Z'),
        issuer: o.issuer ?? 'sha256:f072',
        issuerKey: 'sha256:c936',
        fingerprint: o.fingerprint ?? 'sha256:9e5e',
        uris: [o.uri ?? `spiffe://r03.mesh.example/${svc}`],
        dns: [o.dns ?? `${svc}.r03.mesh.example`, 'edge.r03.mesh.example'],
      },
    ] as const;
  const generic = (r: Map<string, ReturnType<typeof rec>[1]>) =>
    toYaml(
      Object.fromEntries(
        [...r.keys()].sort().map((k) => {
          const x = r.get(k)!;
          return [
            k,
            {
              serial: x.serial,
              notBefore: iso(x.notBefore),
              notAfter: iso(x.notAfter),
              issuer: x.issuer,
              issuerKey: x.issuerKey,
              fingerprint: x.fingerprint,
              uris: x.uris,
              dns: x.dns,
            },
          ];
        }),
      ),
    );
  it.each([
    ['ordinary services', [rec('svc-00001'), rec('api'), rec('web')]],
    [
      'a service named like a boolean, a number or null',
      [rec('true'), rec('123'), rec('null'), rec('1e5'), rec('0x1f')],
    ],
    [
      'an all-digit serial, which YAML would read as a number',
      [rec('api', { serial: '0112345678901234567890123456789012' })],
    ],
    ['a serial that reads as a float', [rec('api', { serial: '01e5' })]],
    [
      'a value with a space or a colon at its end',
      [rec('api', { issuer: 'sha256 :x' }), rec('web', { fingerprint: 'x:' })],
    ],
    ['a value starting with an indicator', [rec('api', { dns: '-x.example' }), rec('web', { uri: '*x' })]],
  ] as const)("equals the yaml package's output for %s", (_, entries) => {
    const r = new Map(entries.map(([k, v]) => [k, v]));
    const text = serializeIssuanceRecord(r as never);
    expect(text).toBe(generic(r));
    expect(parseIssuanceRecord(text, 'leaves.yaml').get(entries[0]![0])?.serial).toBe(entries[0]![1].serial);
  });
});

describe('PEM', () => {
  it('pemEncode wraps base64 at 64 columns exactly as the regex form did, at every length, from a view at an offset', () => {
    const reference = (label: string, der: Uint8Array) =>
      `-----BEGIN ${label}-----\n${Buffer.from(der)
        .toString('base64')
        .replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
    for (let n = 0; n <= 200; n++) {
      // A view at an offset, as DER slices are.
      const der = webcrypto.getRandomValues(new Uint8Array(n + 3)).subarray(3);
      expect(pemEncode('CERTIFICATE', der), `${n} bytes`).toBe(reference('CERTIFICATE', der));
    }
  });
});
