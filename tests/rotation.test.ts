/**
 * Recovery, revocation, the root overlap and every refused transition, with
 * the real CLIs, OpenSSL (-crl_check), Go and real handshakes. The refused
 * transitions are judged in-process on the procedures (MemoryMesh), with the
 * CLI's exit codes, posture and flag parsing kept on the real CLI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { releaseFor, sha256Hex } from '@trellis/core';
import { Store, loadMesh } from '@trellis/core/store';
import { FakeMesh } from './helpers/fake-mesh.js';
import { MemoryMesh } from './helpers/memory-mesh.js';
import { goverify, tool } from './helpers/cli.js';
import { RUN_HOUR } from './helpers/clock.js';
import { DAY, at, probeAt } from './helpers/drill.js';
import { party } from './helpers/parties.js';

const T0 = RUN_HOUR;
const later = (h: number) => at(new Date(T0.getTime() + h * 3_600_000));
const SPEC = { global: ['control'], 'us-east-1': ['api', 'web'], 'eu-west-1': ['api'] };
let pristine: FakeMesh;
/** The same store in memory, for the rules. */
let memory: MemoryMesh;
let scratch: string;

beforeAll(async () => {
  pristine = await FakeMesh.create({ scopes: SPEC, now: at(T0) });
  memory = MemoryMesh.of(pristine);
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-rotation-'));
});
const when = (h: number) => new Date(later(h));
const EXPIRED_ROOT = new Date(T0.getTime() + 13 * 365 * DAY);

function keep(m: FakeMesh, rel: string): string {
  const f = path.join(scratch, `${Math.random().toString(36).slice(2)}-${path.basename(rel)}`);
  fs.copyFileSync(m.path(rel), f);
  return f;
}

const opensslVerify = (...args: string[]) =>
  tool('openssl', [
    'verify',
    '-x509_strict',
    '-attime',
    String(Math.floor(new Date(later(2)).getTime() / 1000)),
    ...args,
  ]);

describe('compromise recovery', () => {
  let m: FakeMesh;
  let oldInter: string;
  let recover: { code: number; stdout: string };
  beforeAll(async () => {
    m = pristine.clone();
    oldInter = keep(m, 'bundles/us-east-1/intermediate.pem');
    recover = await m.root(['recover', 'us-east-1', '--reason', 'keyCompromise', '--now', later(1), '--now-ahead']);
  });

  it('prints a blast-radius report: services, serials and what to do', () => {
    expect(recover.code).toBe(0);
    expect(recover.stdout).toMatch(/blast radius: 2 leaf\(s\) of us-east-1/);
    expect(recover.stdout).toMatch(/api +serial \w+/);
    expect(recover.stdout).toMatch(/web +serial \w+/);
  });
  it('the old intermediate leaves every bundle at once', () => {
    const old = fs.readFileSync(oldInter, 'utf8');
    for (const s of ['global', 'us-east-1', 'eu-west-1'])
      expect(m.read(`bundles/${s}/trust.pem`)).not.toContain(old.trim());
  });
  it('OpenSSL -crl_check reports the old intermediate revoked by the root CRL', async () => {
    const r = await opensslVerify(
      '-crl_check',
      '-CAfile',
      m.path('bundles/root/roots.pem'),
      '-CRLfile',
      m.path('bundles/root/crl.pem'),
      oldInter,
    );
    expect(r.stderr).toMatch(/error 23 .*certificate revoked/);
    const fresh = await opensslVerify(
      '-crl_check',
      '-CAfile',
      m.path('bundles/root/roots.pem'),
      '-CRLfile',
      m.path('bundles/root/crl.pem'),
      m.path('bundles/us-east-1/intermediate.pem'),
    );
    expect(fresh.code, fresh.stderr).toBe(0);
  });
  it('a leaf of the old key fails against the new bundle immediately; the next renew re-mints every leaf of the scope', async () => {
    const oldApi = party(pristine, 'us-east-1', 'api');
    const server = { ...party(pristine, 'global', 'control'), trust: m.read('bundles/global/trust.openssl.pem') };
    const [r] = await probeAt(new Date(later(1)), [{ client: oldApi, server }], scratch);
    expect(r!.ok).toBe(false);
    const renew = await m.ci(['renew', '--now', later(2), '--now-ahead']);
    expect(renew.stdout).toContain('mint us-east-1/api (issuer-changed)');
    expect(renew.stdout).toContain('mint us-east-1/web (issuer-changed)');
    const fresh = { ...party(m, 'us-east-1', 'api'), trust: m.read('bundles/us-east-1/trust.openssl.pem') };
    const [ok] = await probeAt(new Date(later(2)), [{ client: fresh, server }], scratch);
    expect(ok!.ok, ok!.error).toBe(true);
  });
  it('the evidence lists old and new, the blast radius, and completes once every leaf is re-minted', () => {
    const dir = m.path('bundles/us-east-1/evidence');
    const e = JSON.parse(
      fs.readFileSync(path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('recovery.json'))!), 'utf8'),
    );
    expect(e).toMatchObject({ kind: 'compromise-recovery', status: 'completed', reason: 'keyCompromise' });
    expect(e.affected.map((a: { service: string }) => a.service).sort()).toEqual(['api', 'web']);
    expect(e.affected.every((a: { newSerial?: string }) => a.newSerial)).toBe(true);
  });
  it('the ledgers link the evidence by path and hash', () => {
    const entry = m
      .read('bundles/us-east-1/ledger.jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.op === 'recover');
    expect(entry.details.evidence).toMatch(/^bundles\/us-east-1\/evidence\/.*recovery\.json$/);
    // The renew after completed the record, so the hash names the version the ceremony wrote; the ledger still holds
    // the chain.
    expect(entry.details.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.read('bundles/root/ledger.jsonl')).toContain('"op":"recover"');
  });
  it('verify is clean afterwards', async () => {
    const v = await m.ci(['verify', '--now', later(2), '--now-ahead']);
    expect(v.code, v.stdout).toBe(0);
  });
});

describe('leaf revocation', () => {
  it('revoke puts the current leaf in the scope CRL, re-mints it, and OpenSSL -crl_check sees both', async () => {
    const m = pristine.clone();
    const old = keep(m, '.trellis/out/us-east-1/api/cert.pem');
    const r = await m.ci(['revoke', 'us-east-1/api', '--reason', 'keyCompromise', '--now', later(1), '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
    const trust = m.path('bundles/us-east-1/trust.openssl.pem');
    const crl = m.path('bundles/us-east-1/crl.pem');
    const revoked = await opensslVerify('-crl_check', '-purpose', 'sslclient', '-CAfile', trust, '-CRLfile', crl, old);
    expect(revoked.stderr).toMatch(/error 23 .*certificate revoked/);
    const fresh = await opensslVerify(
      '-crl_check',
      '-purpose',
      'sslclient',
      '-CAfile',
      trust,
      '-CRLfile',
      crl,
      m.out('us-east-1', 'api', 'cert.pem'),
    );
    expect(fresh.code, fresh.stderr).toBe(0);
    // The output's crl.pem is the release's: every trusted scope's CRLs, the new revocation included.
    expect(fs.readFileSync(m.path('.trellis/out/us-east-1/crl.pem'), 'utf8')).toBe(
      releaseFor(loadMesh(new Store(m.dir)), 'us-east-1')['crl.pem'],
    );
    expect(fs.readFileSync(m.path('.trellis/out/us-east-1/crl.pem'), 'utf8')).toContain(
      m.read('bundles/us-east-1/crl.pem'),
    );
    expect((await m.ci(['verify', '--now', later(1), '--now-ahead'])).code).toBe(0);
  });
  it('an unknown service is refused (exit 2) and the store is untouched', async () => {
    const m = pristine.clone();
    const before = m.snapshot();
    const r = await m.ci(['revoke', 'us-east-1/nope', '--now', later(1), '--now-ahead']);
    expect(r.code).toBe(2);
    expect(m.snapshot()).toEqual(before);
  });
});

describe('root rotation overlap, judged by OpenSSL and Go', () => {
  let m: FakeMesh;
  const f: Record<string, string> = {};
  beforeAll(async () => {
    m = pristine.clone();
    f.leaf = keep(m, '.trellis/out/us-east-1/api/cert.pem');
    expect((await m.root(['rotate', 'root', '--now', later(1), '--now-ahead'])).code).toBe(0);
    for (const [k, rel] of Object.entries({
      oldRoot: 'bundles/root/root.previous.pem',
      newRoot: 'bundles/root/root.pem',
      link: 'bundles/root/link.pem',
      newInter: 'bundles/us-east-1/intermediate.pem',
      oldInter: 'bundles/us-east-1/intermediate.old-root.pem',
      roots: 'bundles/root/roots.pem',
    }))
      f[k] = keep(m, rel);
    f.newInterAndLink = path.join(scratch, 'new-inter-and-link.pem');
    fs.writeFileSync(f.newInterAndLink, fs.readFileSync(f.newInter, 'utf8') + fs.readFileSync(f.link, 'utf8'));
  });
  const cases = [
    ['under the old root via the old intermediate', 'oldRoot', 'oldInter', true],
    ['under the new root via the re-signed intermediate', 'newRoot', 'newInter', true],
    ['under the old root via the re-signed intermediate and the link', 'oldRoot', 'newInterAndLink', true],
    ['crossed: the old intermediate under the new root', 'newRoot', 'oldInter', false],
    ['crossed: the re-signed intermediate under the old root without the link', 'oldRoot', 'newInter', false],
  ] as const;
  it.each(cases)('the same live leaf %s: OpenSSL', async (_, root, inter, ok) => {
    const r = await opensslVerify('-purpose', 'sslserver', '-CAfile', f[root]!, '-untrusted', f[inter]!, f.leaf!);
    expect(r.code === 0, r.stderr).toBe(ok);
  });
  it.each(cases)('the same live leaf %s: Go', async (_, root, inter, ok) => {
    const r = await goverify([
      '-roots',
      f[root]!,
      '-intermediates',
      f[inter]!,
      '-cert',
      f.leaf!,
      '-eku',
      'server',
      '-at',
      later(2),
    ]);
    expect(r.stdout === 'OK', r.stdout).toBe(ok);
  });
  it('a recovery during the overlap revokes the compromised key under both roots', async () => {
    const c = m.clone();
    const r = await c.root(['recover', 'us-east-1', '--now', later(2), '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
    for (const [root, inter] of [
      [f.oldRoot, f.oldInter],
      [f.newRoot, f.newInter],
    ]) {
      const v = await opensslVerify('-crl_check', '-CAfile', root!, '-CRLfile', c.path('bundles/root/crl.pem'), inter!);
      expect(v.stderr).toMatch(/error 23 .*revoked/);
    }
    expect((await c.ci(['verify', '--now', later(2), '--now-ahead'])).code).toBe(0);
  });
});

describe('refused transitions', () => {
  it.each([
    [
      'a second rotation while one is running',
      (m: MemoryMesh) => m.rotate('us-east-1', undefined, when(1)),
      (m: MemoryMesh) => m.rotate('us-east-1', undefined, when(2)),
      /already rotating \(phase publish\).*--abort/s,
    ],
    ['an abort with no rotation', undefined, (m: MemoryMesh) => m.abort('us-east-1', when(1)), /no rotation to abort/],
    [
      'a planned intermediate rotation during a root overlap',
      (m: MemoryMesh) => m.rotateRoot(when(1)),
      (m: MemoryMesh) => m.rotate('eu-west-1', undefined, when(2)),
      /root rotation is in its overlap.*--finalize/s,
    ],
    [
      'a second root rotation',
      (m: MemoryMesh) => m.rotateRoot(when(1)),
      (m: MemoryMesh) => m.rotateRoot(when(2)),
      /already in its overlap/,
    ],
    [
      'a finalize without an overlap',
      undefined,
      (m: MemoryMesh) => m.rotateRoot(when(1), 'finalize'),
      /no root rotation to finalize/,
    ],
    [
      'a root rotation while a scope is mid-rotation',
      (m: MemoryMesh) => m.rotate('us-east-1', undefined, when(1)),
      (m: MemoryMesh) => m.rotateRoot(when(2)),
      /us-east-1 are mid-rotation/,
    ],
    [
      'a root rotation after the root expired',
      undefined,
      (m: MemoryMesh) => m.rotateRoot(EXPIRED_ROOT),
      /root .* expired at 20[0-9]{2}-.*stand up a new mesh/s,
    ],
    [
      'a ceremony under an expired root',
      undefined,
      (m: MemoryMesh) => m.recover('us-east-1', EXPIRED_ROOT),
      /expired at 20[0-9]{2}-/,
    ],
  ] as const)('refuses %s (in-process, exit 1), leaving the store as it was', async (_, prepare, step, message) => {
    const m = memory.clone();
    if (prepare) await prepare(m);
    const e = await m.refused(() => step(m));
    expect(e.exitCode, e.message).toBe(1);
    expect(e.message).toMatch(message);
  });
  it.each([
    [
      'a second rotation while one is running',
      async (m: FakeMesh) => {
        await m.root(['rotate', 'intermediate', 'us-east-1', '--now', later(1), '--now-ahead']);
      },
      ['rotate', 'intermediate', 'us-east-1', '--now', later(2), '--now-ahead'],
      1,
      /already rotating \(phase publish\).*--abort/s,
    ],
    [
      'a propagation window that is not a duration',
      undefined,
      ['rotate', 'intermediate', 'us-east-1', '--propagation', 'soon', '--now', later(1), '--now-ahead'],
      2,
      /--propagation: "soon" is not a duration/,
    ],
  ] as const)(
    'through the real CLI: refuses %s, leaving the store as it was',
    async (_, prepare, args, code, message) => {
      const m = pristine.clone();
      if (prepare) await prepare(m);
      const before = m.snapshot();
      const r = await m.root([...args]);
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(m.snapshot()).toEqual(before);
    },
  );
  it.each([
    ['a root rotation', ['rotate', 'root']],
    ['a recovery', ['recover', 'us-east-1']],
    ['a planned intermediate rotation', ['rotate', 'intermediate', 'us-east-1']],
  ])('%s without custody of the root is refused (exit 3)', async (_, args) => {
    const m = pristine.clone();
    const before = m.snapshot();
    const r = await m.root([...args, '--now', later(1), '--now-ahead'], {
      TRELLIS_ROOT_IDENTITY_FILE: m.ciIdentityFile,
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/offline root identity given does not open this key/);
    expect(m.snapshot()).toEqual(before);
  });
  it('finalize is custody-gated: without the root identity it is refused (exit 3)', async () => {
    const m = pristine.clone();
    await m.root(['rotate', 'root', '--now', later(1), '--now-ahead']);
    const before = m.snapshot();
    const r = await m.root(['rotate', 'root', '--finalize', '--now', later(2), '--now-ahead'], {
      TRELLIS_ROOT_IDENTITY_FILE: m.ciIdentityFile,
    });
    expect(r.code).toBe(3);
    expect(m.snapshot()).toEqual(before);
  });
});

describe('rollback', () => {
  it('abort during publish drops the new intermediate from every bundle (in-process)', async () => {
    const m = memory.clone();
    const bundle = m.read('bundles/us-east-1/trust.pem');
    await m.rotate('us-east-1', undefined, when(1));
    expect(m.read('bundles/us-east-1/trust.pem').match(/BEGIN/g)).toHaveLength(3);
    await m.abort('us-east-1', when(2));
    expect(m.read('bundles/us-east-1/trust.pem')).toBe(bundle);
    expect(m.store.exists('bundles/us-east-1/intermediate.next.pem')).toBe(false);
    expect((await m.verify(when(2), 'ci')).filter((f) => f.level === 'error')).toEqual([]);
  });
  it('abort after the switch returns signing to the old key, keeps the aborted one trusted until its leaves expire; renew re-mints from the old key', async () => {
    const m = pristine.clone();
    const oldInter = m.read('bundles/us-east-1/intermediate.pem');
    await m.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '1h', '--now', later(1), '--now-ahead']);
    expect((await m.ci(['renew', '--now', later(3), '--now-ahead'])).stdout).toContain('phase us-east-1: switch');
    expect(m.read('bundles/us-east-1/intermediate.pem')).not.toBe(oldInter);
    const mintedByAborted = keep(m, '.trellis/out/us-east-1/api/cert.pem');
    const r = await m.root(['rotate', 'intermediate', 'us-east-1', '--abort', '--now', later(4), '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/stays in the bundles until the leaves it signed have expired/);
    expect(m.read('bundles/us-east-1/intermediate.pem')).toBe(oldInter);
    // A host still presenting a leaf of the aborted key keeps passing its handshakes.
    const ok = await tool('openssl', [
      'verify',
      '-x509_strict',
      '-purpose',
      'sslclient',
      '-attime',
      String(Math.floor(new Date(later(4)).getTime() / 1000)),
      '-CAfile',
      m.path('bundles/us-east-1/trust.openssl.pem'),
      mintedByAborted,
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const renew = await m.ci(['renew', '--now', later(5), '--now-ahead']);
    expect(renew.stdout).toContain('mint us-east-1/api (issuer-changed)');
    expect(m.read('bundles/us-east-1/trust.pem').match(/BEGIN/g)).toHaveLength(3);
    expect((await m.ci(['verify', '--now', later(5), '--now-ahead'])).code).toBe(0);
    const retire = await m.ci(['renew', '--now', later(5 + 7 * 24), '--now-ahead']);
    expect(retire.stdout).toContain('phase us-east-1: retire');
    expect(m.read('bundles/us-east-1/trust.pem').match(/BEGIN/g)).toHaveLength(2);
    expect((await m.ci(['verify', '--now', later(5 + 7 * 24), '--now-ahead'])).code).toBe(0);
    const e = JSON.parse(
      fs.readFileSync(
        path.join(
          m.path('bundles/us-east-1/evidence'),
          fs.readdirSync(m.path('bundles/us-east-1/evidence')).find((x) => x.endsWith('.json'))!,
        ),
        'utf8',
      ),
    );
    expect(e.status).toBe('aborted');
    expect(e.steps.map((s: { step: string }) => s.step)).toEqual(['publish', 'switch', 'remint', 'abort']);
  });
  it('--propagation sets the switch gate for this rotation only', async () => {
    const m = pristine.clone();
    await m.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '1h', '--now', later(1), '--now-ahead']);
    const s = JSON.parse((await m.ci(['status', '--json', '--now', later(1), '--now-ahead'])).stdout);
    expect(s.scopes.find((x: { scope: string }) => x.scope === 'us-east-1').gate).toEqual({
      gate: 'switch',
      at: later(2),
    });
  });
});

describe('root CRL freshness', () => {
  it('verify warns 30 days before the root CRL expires, errs after; trellis-root crl re-signs it (in-process)', async () => {
    const m = memory.clone();
    const soon = new Date(T0.getTime() + 160 * DAY);
    const past = new Date(T0.getTime() + 181 * DAY);
    const rootCrl = (level: string, message: RegExp) =>
      expect.objectContaining({ level, check: 'crl', message: expect.stringMatching(message) });
    expect(await m.verify(soon)).toContainEqual(rootCrl('warning', /CRL of .*root.* expires/));
    expect(await m.verify(past)).toContainEqual(rootCrl('error', /CRL of .*root.* past its nextUpdate/));
    await m.crl(soon);
    expect((await m.verify(soon)).filter((f) => f.level !== 'ok' && /CRL of .*root/.test(f.message))).toEqual([]);
  });
  it('evidence and ledger hashes agree for a rotation begun offline', async () => {
    const m = pristine.clone();
    await m.root(['rotate', 'intermediate', 'eu-west-1', '--now', later(1), '--now-ahead']);
    const entry = m
      .read('bundles/eu-west-1/ledger.jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .at(-1);
    expect(sha256Hex(m.read(entry.details.evidence))).toBe(entry.details.sha256);
  });
});
