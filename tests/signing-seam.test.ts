/**
 * One seam for every signature and key (packages/core/src/x509/seam.ts). A recording seam keeps what it signed; a
 * new region's ceremony, an intermediate rotation, a renew in-process and a renew of 300 leaves through the real worker
 * pool, a sealed release and a deploy run with it; then every certificate, CRL, leaf and ledger signature they wrote
 * must be
 * one the seam made (a signature made beside it is not, and fails). Key handles carry their role: the TypeScript
 * compiler refuses a root key where the CI side takes an intermediate's. And no module but the seam's two
 * implementations (the file key, the PKCS#11 token) calls a signing primitive.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  newIdentity,
  nodeCryptoSeam,
  parseCertificates,
  parseLedger,
  releaseFor,
  sealRelease,
  type CryptoSeam,
} from '@trellis/core';
import { Store, loadMesh } from '@trellis/core/store';
import { openRootKey } from '../packages/offline/src/ceremony.js';
import { beginIntermediateRotation, ceremonyIntermediates } from '../packages/offline/src/root-procedures.js';
import { renewStore } from '../packages/ci/src/commands/renew.js';
import { deployStore } from '../packages/ci/src/commands/deploy.js';
import { openIntermediate } from '../packages/ci/src/signer.js';
import { mintPool } from '../packages/ci/dist/mint-pool.js';
import { FakeMesh } from './helpers/fake-mesh.js';
import { REPO } from './helpers/cli.js';
import { HOUR } from './helpers/clock.js';

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
// From the PEM: the pool's workers keep the DER on their thread.
const derOf = (pem: string) => b64(new Uint8Array(parseCertificates(pem)[0]!.rawData));
const crlBlocks = (pem: string) => pem.match(/-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----/g) ?? [];

/** nodeCryptoSeam, keeping every certificate, CRL and detached signature it makes. */
function recordingSeam() {
  const made = { certs: new Set<string>(), crls: new Set<string>(), data: new Set<string>(), batches: 0 };
  const seam: CryptoSeam = {
    ...nodeCryptoSeam,
    signCertificate: async (p) => {
      const c = await nodeCryptoSeam.signCertificate(p);
      made.certs.add(b64(new Uint8Array(c.rawData)));
      return c;
    },
    signCrl: async (p) => {
      const pem = await nodeCryptoSeam.signCrl(p);
      for (const c of crlBlocks(pem)) made.crls.add(c);
      return pem;
    },
    signLeafBatch: async (b, key) => {
      made.batches++;
      const leaves = await nodeCryptoSeam.signLeafBatch(b, key);
      for (const l of leaves) made.certs.add(derOf(l.certPem));
      return leaves;
    },
    signData: (key, alg, data) => {
      const s = nodeCryptoSeam.signData(key, alg, data);
      made.data.add(b64(s));
      return s;
    },
  };
  return { seam, made };
}

const ids = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('AGE-SECRET-KEY'));

/** Every file under `dir`, by path relative to it. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(path.relative(dir, p), fs.readFileSync(p, 'utf8'));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

/** Signatures written since `before`: certificates, CRLs and ledger entries' signatures no file held before. */
function newSignatures(before: Map<string, string>, after: Map<string, string>) {
  const of = (files: Map<string, string>) => {
    const certs = new Set<string>();
    const crls = new Set<string>();
    const ledger = new Set<string>();
    for (const [f, text] of files) {
      if (f.endsWith('.pem') && text.includes('BEGIN CERTIFICATE'))
        for (const c of parseCertificates(text)) certs.add(b64(new Uint8Array(c.rawData)));
      for (const c of crlBlocks(text)) crls.add(c);
      if (f.endsWith('ledger.jsonl'))
        for (const e of parseLedger(text).entries) {
          expect(e.signature, `${f} seq ${e.seq}: unsigned`).toBeDefined();
          ledger.add(e.signature!);
        }
    }
    return { certs, crls, ledger };
  };
  const old = of(before);
  const now = of(after);
  const fresh = (k: 'certs' | 'crls' | 'ledger') => new Set([...now[k]].filter((x) => !old[k].has(x)));
  return { certs: fresh('certs'), crls: fresh('crls'), ledger: fresh('ledger') };
}

describe('one seam for every signature', () => {
  let m: FakeMesh;
  let work: string;
  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-seam-'));
    m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api', 'web'] } });
  });

  it('a ceremony, a rotation, renews in-process and through the worker pool, and a sealed release sign only through it', async () => {
    const { seam, made } = recordingSeam();
    const store = new Store(m.dir);
    const rootIds = ids(m.rootIdentityFile);
    const ciIds = ids(m.ciIdentityFile);
    let now = new Date();
    const ceremony = () => ({
      mesh: loadMesh(store),
      now,
      posture: { allowOnline: true, onlineInterfaces: [] },
      actor: 'seam-test',
      recipients: {},
      seam,
    });
    const before = snapshot(m.dir);
    const out = path.join(work, 'out');

    // A new region of 300 services: its first renew goes through the worker pool.
    m.writeScope(
      'eu-west-1',
      Array.from({ length: 300 }, (_, i) => `svc${i}`),
    );
    const mesh = loadMesh(store);
    store.commit(
      (await ceremonyIntermediates(ceremony(), ['eu-west-1'], await openRootKey(mesh, rootIds, now, seam))).writes,
    );
    store.commit(
      (
        await beginIntermediateRotation(
          ceremony(),
          'us-east-1',
          HOUR,
          await openRootKey(loadMesh(store), rootIds, now, seam),
        )
      ).writes,
    );
    const pool = mintPool(() => {}, { outDir: out, threads: 2 });
    const pooled = { ...pool, sign: poolThrough(pool.sign) };
    try {
      await renewStore(
        store,
        { now, out, seam, pool: pooled },
        async () => ciIds,
        () => {},
      );
    } finally {
      await pool.close();
    }
    // The switch: us-east-1's leaves re-minted in-process under the next intermediate.
    now = new Date(now.getTime() + 2 * HOUR);
    await renewStore(
      store,
      { now, out, seam },
      async () => ciIds,
      () => {},
    );
    const after = snapshot(m.dir);
    const outputs = snapshot(out);

    const wrote = newSignatures(before, after);
    const leafCerts = newSignatures(before, outputs).certs; // the leaves, and the new intermediates in their chains
    expect(wrote.certs.size, 'the new intermediates').toBeGreaterThanOrEqual(2);
    expect(wrote.crls.size).toBeGreaterThan(0);
    expect(wrote.ledger.size).toBeGreaterThan(3);
    expect(leafCerts.size, 'every leaf of the two renews').toBeGreaterThanOrEqual(303);
    const beside = [...wrote.certs, ...leafCerts].filter((c) => !made.certs.has(c));
    expect(
      beside.map((c) => c.slice(0, 60)),
      'certificates signed beside the seam',
    ).toEqual([]);
    for (const c of wrote.crls) expect(made.crls.has(c), 'a CRL signed beside the seam').toBe(true);
    for (const s of wrote.ledger) expect(made.data.has(s), 'a ledger entry signed beside the seam').toBe(true);
    expect(made.batches, 'the pool and the in-process renew both signed through signLeafBatch').toBeGreaterThanOrEqual(
      2,
    );

    // A sealed release: its envelope's signature is the seam's too.
    const signer = await openIntermediate(loadMesh(store), 'us-east-1', ciIds, 'active', seam);
    const sealed = await sealRelease(
      {
        version: 1,
        scope: 'us-east-1',
        service: 'api',
        host: 'web-1',
        created: now.toISOString(),
        rootCrl: '',
        files: releaseFor(loadMesh(store), 'us-east-1'),
      },
      'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq',
      signer,
    ).catch((e: Error) => e);
    expect(sealed).not.toBeInstanceOf(Error);
    expect(made.data.size).toBeGreaterThan(wrote.ledger.size);

    /** The real pool's leaves, recorded as the seam's: the pool is the seam's leaf signer on worker threads. */
    function poolThrough(sign: typeof pool.sign): typeof pool.sign {
      return async (b, key) => {
        made.batches++;
        const leaves = await sign(b, key);
        for (const l of leaves) made.certs.add(derOf(l.certPem));
        return leaves;
      };
    }
  }, 180_000);

  it('a deploy signs through it: the releases it seals and the deploys it records in the ledgers', async () => {
    const hosts = path.join(work, 'hosts');
    const host = await newIdentity();
    const d = await FakeMesh.create({
      scopes: {
        global: [],
        'us-east-1': [
          { api: { deploy: [{ type: 'dir', path: path.join(hosts, 'api') }] } },
          { web: { deploy: [{ type: 'sealed', host: 'web-1' }] } },
        ],
      },
    });
    await d.allow({ dir: { paths: [hosts] }, sealed: { 'web-1': { recipient: host.recipient } } });
    const renewed = await d.ci(['renew']);
    expect(renewed.code, renewed.stderr).toBe(0);
    const { seam, made } = recordingSeam();
    const before = snapshot(d.dir);
    const sealedOut = path.join(work, 'sealed');
    const saved = process.env.TRELLIS_CI_IDENTITY_FILE;
    process.env.TRELLIS_CI_IDENTITY_FILE = d.ciIdentityFile;
    try {
      await deployStore({ store: d.dir, type: ['sealed'], sealedOut }, seam);
      const sealedSigned = made.data.size;
      expect(sealedSigned, 'the sealed release of web, signed through the seam').toBeGreaterThan(0);
      await deployStore({ store: d.dir, recordOnly: true }, seam);
      expect(made.data.size).toBeGreaterThan(sealedSigned);
    } finally {
      if (saved === undefined) delete process.env.TRELLIS_CI_IDENTITY_FILE;
      else process.env.TRELLIS_CI_IDENTITY_FILE = saved;
    }
    expect(fs.readdirSync(sealedOut, { recursive: true }).length).toBeGreaterThan(0);
    const wrote = newSignatures(before, snapshot(d.dir));
    expect(wrote.ledger.size, 'the deploy records').toBeGreaterThan(0);
    for (const s of wrote.ledger) expect(made.data.has(s), 'a deploy record signed beside the seam').toBe(true);
  }, 120_000);

  it('no module signs beside the seam: signing primitives appear only in its two implementations', () => {
    const allowed = new Set([
      'packages/core/src/x509/seam.ts', // the seam itself
      'packages/core/src/crypto/crypto.ts', // signBytes: nodeCryptoSeam.signData
      'packages/core/src/x509/leaf-template.ts', // signLeaves: nodeCryptoSeam.signLeafBatch
      'packages/ci/src/mint-worker.ts', // signLeaves on the pool's threads: renew's signLeafBatch
      'packages/core/src/x509/certificates.ts', // @peculiar/x509's encode-and-sign: nodeCryptoSeam.signCertificate
      'packages/core/src/x509/revocation.ts', // the same for CRLs: nodeCryptoSeam.signCrl
    ]);
    const primitive = new RegExp(
      /(?:^|[^.\w])(?:sign|createSign|signBytes|signLeaves)\(|/.source +
        /subtle\.sign\(|X509(?:Certificate|Crl)Generator\.create\(/.source,
    );
    const offenders: string[] = [];
    for (const pkg of fs.readdirSync(path.join(REPO, 'packages'))) {
      const src = path.join(REPO, 'packages', pkg, 'src');
      if (!fs.existsSync(src)) continue;
      for (const f of fs.readdirSync(src, { recursive: true }) as string[]) {
        const rel = path.join('packages', pkg, 'src', f);
        if (!f.endsWith('.ts') || allowed.has(rel)) continue;
        const lines = fs.readFileSync(path.join(REPO, rel), 'utf8').split('\n');
        lines.forEach((l, i) => {
          // An interface's method declaration names a signer; it does not sign.
          if (/^\s*\w+\([^)]*\):\s*[\w<>[\]]+;$/.test(l)) return;
          if (!l.trim().startsWith('//') && !l.trim().startsWith('*') && primitive.test(l))
            offenders.push(`${rel}:${i + 1}: ${l.trim()}`);
        });
      }
    }
    expect(offenders.join('\n')).toBe('');
  });

  it('key handles carry their role: the compiler refuses a root key where the CI side takes an intermediate', () => {
    const core = path.join(REPO, 'packages/core/src/index.ts');
    const file = path.join(work, 'roles.ts');
    fs.writeFileSync(
      file,
      [
        `import { sealRelease, signBurnStatement, type CaKey, type SigningIntermediate } from ${JSON.stringify(core)};`,
        'declare const root: CaKey<"root">;',
        'declare const inter: SigningIntermediate;',
        'declare const r: Parameters<typeof sealRelease>[0];',
        'declare const b: Parameters<typeof signBurnStatement>[0];',
        'void sealRelease(r, "age1x", inter);',
        'signBurnStatement(b, inter);',
        'void sealRelease(r, "age1x", { ...root, scope: "us-east-1" }); // line 8: a root as a scope signer',
        'signBurnStatement(b, root); // line 9: a root signing a burn statement',
      ].join('\n'),
    );
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      allowImportingTsExtensions: true,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file);
    const errors = diagnostics.map((d) => d.file!.getLineAndCharacterOfPosition(d.start!).line + 1);
    const messages = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
    expect(errors, messages.join('\n')).toEqual([8, 9]);
  }, 120_000);
});
