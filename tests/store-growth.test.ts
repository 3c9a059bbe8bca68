/**
 * A store that grows slowly (issue 9, deliverable 3): a renew's ledger entry
 * binds leaves.yaml by one hash instead of listing every leaf, so it is a few
 * hundred bytes however many leaves it mints; the hash still proves every
 * record (an edited or rolled-back leaves.yaml is refused, and renew will not
 * sign on top of one); stores whose entries list leaves keep their per-field
 * proofs and move to the binding on their next write. The rules run
 * in-process on MemoryMesh (renew, revoke and verify on a map of files); each
 * refusal's exit code and unchanged store once through the real CLI.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  appendToLedger,
  leafCreated,
  ledgerSigner,
  parseCertificate,
  parseIssuanceRecord,
  parseLedger,
  sha256Hex,
  tryDecrypt,
  type LedgerEntry,
  caKeyFromPem,
} from '@trellis/core';
import { worstLevel } from '../packages/core/src/verify/finding.js';
import { MemoryMesh, type DiskMesh } from './helpers/memory-mesh.js';
import { at, DAY, HOUR, RUN_NOW } from './helpers/clock.js';

const T0 = at(RUN_NOW);
const T1 = at(T0, HOUR);
// Past every 7-day leaf's renewal point (⅓ of its life left), inside its life.
const T_DUE = at(T0, 122 * HOUR);
const LEAVES = 'bundles/us-east-1/leaves.yaml';
const US = 'bundles/us-east-1/ledger.jsonl';
const services = (n: number) => Array.from({ length: n }, (_, i) => `svc-${String(i + 1).padStart(3, '0')}`);

let small: MemoryMesh;
let large: MemoryMesh;

beforeAll(async () => {
  [small, large] = await Promise.all([
    MemoryMesh.create({ now: T0, scopes: { global: ['control'], 'us-east-1': services(2) } }),
    MemoryMesh.create({ now: T0, scopes: { global: ['control'], 'us-east-1': services(60) } }),
  ]);
}, 120_000);

const lastEntry = (m: MemoryMesh, file = US): LedgerEntry => parseLedger(m.read(file)).entries.at(-1)!;

/** `trellis-ci verify --json` with the CI identity, in-process: its errors and exit code. */
async function verify(m: MemoryMesh, now = T1) {
  const findings = await m.verify(new Date(now), 'ci');
  return { code: worstLevel(findings) === 'error' ? 1 : 0, errors: findings.filter((f) => f.level === 'error') };
}

/** A step refused in-process: its exit code and message (file, field, detail and hint), the map unchanged. */
async function refusedInProcess(m: MemoryMesh, step: () => Promise<unknown>, code: number, message: RegExp) {
  const e = await m.refused(step);
  expect(e.exitCode, e.message).toBe(code);
  expect(e.message).toMatch(message);
}

/**
 * Runs `act` through a real CLI and checks it was refused with `code` and `message`, the store byte for byte as it was.
 */
async function refused(
  m: DiskMesh,
  act: () => Promise<{ code: number; stderr: string }>,
  code: number,
  message: RegExp,
) {
  const before = m.snapshot();
  const r = await act();
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).toMatch(message);
  expect(m.snapshot()).toEqual(before);
}

/** Bytes a full renew (every leaf due) appends to the scope ledger. */
async function renewGrowth(m: MemoryMesh): Promise<{ bytes: number; minted: number }> {
  const c = m.clone();
  const before = Buffer.byteLength(c.read(US));
  await c.renew(new Date(T_DUE));
  const e = lastEntry(c);
  return {
    bytes: Buffer.byteLength(c.read(US)) - before,
    minted: e.details.minted ? Object.values(e.details.minted as Record<string, number>).reduce((a, b) => a + b, 0) : 0,
  };
}

describe('a renew adds a bounded entry to the scope ledger, however many leaves it mints', () => {
  it('30 times the leaves add the same few hundred bytes (under 20 KB)', async () => {
    const [a, b] = await Promise.all([renewGrowth(small), renewGrowth(large)]);
    expect(a.minted).toBe(2);
    expect(b.minted).toBe(60);
    expect(b.bytes).toBeLessThanOrEqual(20 * 1024);
    // Only the digits of the counts differ: no per-leaf bytes in the entry.
    expect(Math.abs(b.bytes - a.bytes)).toBeLessThan(16);
  });

  it('the cold renew entry binds leaves.yaml by hash and lists no leaf', () => {
    for (const m of [small, large]) {
      const e = lastEntry(m);
      const text = m.read(LEAVES);
      expect(e.op).toBe('renew');
      expect(e.created).toEqual([]);
      expect(e.details.leaves).toEqual({ sha256: sha256Hex(text), count: parseIssuanceRecord(text, LEAVES).size });
      expect(e.details.minted).toEqual({ new: m === small ? 2 : 60 });
      expect(e.details.reasons).toBeUndefined();
    }
  });

  it('the store it leaves verifies', async () => {
    const v = await verify(large);
    expect(v.errors).toEqual([]);
    expect(v.code).toBe(0);
  });
});

describe('the hash proves every record of leaves.yaml', () => {
  it.each([
    [
      'a later notAfter hiding an expiring leaf',
      (t: string) => t.replace(/notAfter: \S+/, `notAfter: ${at(T0, 365 * DAY)}`),
    ],
    ['a changed serial', (t: string) => t.replace(/serial: (\w+)/, 'serial: 01deadbeef')],
    ['a changed fingerprint', (t: string) => t.replace(/ {2}fingerprint: sha256:\w+/, '  fingerprint: sha256:00')],
    ['an extra DNS name', (t: string) => t.replace(/dns:\n/, 'dns:\n    - evil.us-east-1.mesh.example\n')],
    ['a dropped record', (t: string) => t.replace(/^svc-001:\n( {2}.*\n)+/m, '')],
    ['the same records written differently', (t: string) => `${t}\n`],
  ])('%s: verify errors, renew refuses (exit 1) and leaves the store unchanged', async (_, edit) => {
    const m = small.clone();
    m.write(LEAVES, edit(m.read(LEAVES)));
    expect(m.read(LEAVES)).not.toBe(small.read(LEAVES));
    const v = await verify(m);
    expect(v.code).toBe(1);
    expect(v.errors).toContainEqual(
      expect.objectContaining({
        file: LEAVES,
        message: expect.stringMatching(/sha256: does not hash to what scope-ledger entry 2 recorded/),
      }),
    );
    // Renew would carry the other records forward under a new signed hash: it refuses rather than launder them.
    await refusedInProcess(
      m,
      () => m.renew(new Date(T1), { force: true, scope: 'us-east-1' }),
      1,
      new RegExp(
        /leaves\.yaml: sha256: does not hash to what scope-ledger entry 2 recorded.*refusing to sign a /.source +
          /new issuance record/.source,
        's',
      ),
    );
  });

  it('through the real CLIs: renew and revoke refuse (exit 1) an edited leaves.yaml, the store unchanged', async () => {
    const m = small.onDisk();
    m.write(LEAVES, m.read(LEAVES).replace(/serial: (\w+)/, 'serial: 01deadbeef'));
    await refused(
      m,
      () => m.ci(['renew', '--force', '--scope', 'us-east-1', '--now', T1, '--now-ahead']),
      1,
      new RegExp(
        /leaves\.yaml: sha256: does not hash to what scope-ledger entry 2 recorded.*refusing to sign a /.source +
          /new issuance record/.source,
        's',
      ),
    );
    await refused(
      m,
      () => m.ci(['revoke', 'us-east-1/svc-002', '--now', T1, '--now-ahead']),
      1,
      /leaves\.yaml: sha256: .*refusing to act on a record the ledger does not prove/s,
    );
  });

  it('revoke refuses to act on a record of an edited leaves.yaml (in-process), the store unchanged', async () => {
    const m = small.clone();
    m.write(LEAVES, m.read(LEAVES).replace(/serial: (\w+)/, 'serial: 01deadbeef'));
    await refusedInProcess(
      m,
      () => m.revoke('us-east-1', 'svc-002', new Date(T1)),
      1,
      /leaves\.yaml: sha256: .*refusing to act on a record the ledger does not prove/s,
    );
  });

  it('a rolled-back leaves.yaml (the one before the last renew) is refused', async () => {
    const m = small.clone();
    const old = m.read(LEAVES);
    await m.renew(new Date(T1), { force: true });
    m.write(LEAVES, old);
    const v = await verify(m);
    expect(v.errors).toContainEqual(
      expect.objectContaining({
        file: LEAVES,
        message: expect.stringMatching(/sha256: does not hash to what scope-ledger entry 3 recorded.*rolled back/),
      }),
    );
  });

  it('a missing leaves.yaml is an error once a renew bound it', async () => {
    const m = small.clone();
    m.remove(LEAVES);
    const v = await verify(m);
    expect(v.errors).toContainEqual(
      expect.objectContaining({
        file: LEAVES,
        message: expect.stringMatching(/missing, but scope-ledger entry 2 recorded it/),
      }),
    );
  });

  it("revoke binds the new leaves.yaml and records the revoked leaf's expiry; dropping the revocation is still caught", async () => {
    const m = small.clone();
    const rec = parseIssuanceRecord(m.read(LEAVES), LEAVES).get('svc-001')!;
    await m.revoke('us-east-1', 'svc-001', new Date(T1));
    const e = lastEntry(m);
    expect(e.op).toBe('revoke');
    expect(e.details).toMatchObject({
      serial: rec.serial,
      notAfter: rec.notAfter.toISOString().replace('.000Z', 'Z'),
      leaves: { sha256: sha256Hex(m.read(LEAVES)) },
    });
    expect((await verify(m)).errors).toEqual([]);
    m.write('bundles/us-east-1/state.yaml', m.read('bundles/us-east-1/state.yaml').replace(/revoked:\n(\s+.*\n)+/, ''));
    const v = await verify(m);
    expect(v.errors).toContainEqual(
      expect.objectContaining({ message: expect.stringMatching(/state.yaml no longer lists it: un-revoked\?/) }),
    );
  });
});

/** A ledger signer for the scope's intermediate, opened with the CI identity as CI opens it. */
async function intermediateSigner(m: MemoryMesh, scope: string) {
  const opened = await tryDecrypt(m.ciIds, m.read(`bundles/${scope}/intermediate.key.age`));
  if (!opened.ok) throw new Error('cannot open the intermediate key');
  return ledgerSigner(
    await caKeyFromPem('intermediate', parseCertificate(m.read(`bundles/${scope}/intermediate.pem`)), opened.text),
  );
}

/**
 * The store as the trellis before this change wrote it: the cold renew's
 * entry lists every leaf in `created` and each service's reason, and binds
 * no hash (the same signer, so it is what CI would have signed).
 */
async function asOlderFormat(m: MemoryMesh): Promise<MemoryMesh> {
  const c = m.clone();
  const [first, renew] = parseLedger(c.read(US)).entries;
  const records = parseIssuanceRecord(c.read(LEAVES), LEAVES);
  const created = [...records].map(([service, record]) =>
    leafCreated({ service, record, subject: `CN=${record.dns[0]}` }),
  );
  const prefix = `${c.read(US).split('\n')[0]}\n`;
  expect(parseLedger(prefix).entries[0]!.hash).toBe(first!.hash);
  const text = appendToLedger(
    prefix,
    {
      op: 'renew',
      at: renew!.at,
      actor: renew!.actor,
      details: { reasons: Object.fromEntries([...records.keys()].map((s) => [s, 'new'])), crl: renew!.details.crl },
      created,
    },
    US,
    await intermediateSigner(c, 'us-east-1'),
  ).text;
  c.write(US, text);
  return c;
}

describe('stores written before the hash binding', () => {
  let old: MemoryMesh;
  beforeAll(async () => {
    old = await asOlderFormat(small);
  });

  it('verify without an error, each record proven by the entry that lists it', async () => {
    expect(lastEntry(old).details.leaves).toBeUndefined();
    expect((await verify(old)).errors).toEqual([]);
  });

  it.each([
    [
      'a later notAfter',
      (t: string) => t.replace(/notAfter: \S+/, `notAfter: ${at(T0, 365 * DAY)}`),
      new RegExp(String.raw`svc-001\.notAfter: ${at(T0, 365 * DAY)} is not what scope-ledger entry 2 recorded`),
    ],
    [
      'a changed serial',
      (t: string) => t.replace(/serial: (\w+)/, 'serial: 01deadbeef'),
      /svc-001\.serial: 01deadbeef is not what scope-ledger entry 2 recorded/,
    ],
    [
      'a changed fingerprint',
      (t: string) => t.replace(/ {2}fingerprint: sha256:\w+/, '  fingerprint: sha256:00'),
      /svc-001: leaf \w+ is not recorded in the scope ledger/,
    ],
  ])('%s is still an error naming the record and field', async (_, edit, finding) => {
    const m = old.clone();
    m.write(LEAVES, edit(m.read(LEAVES)));
    const v = await verify(m);
    expect(v.errors).toContainEqual(expect.objectContaining({ file: LEAVES, message: expect.stringMatching(finding) }));
    await refusedInProcess(
      m,
      () => m.renew(new Date(T1), { force: true }),
      1,
      /leaves\.yaml: svc-001.*refusing to sign a new issuance record/s,
    );
  });

  it('migrate on their next write: that renew binds leaves.yaml, and the store verifies', async () => {
    const m = old.clone();
    await m.renew(new Date(T_DUE));
    const e = lastEntry(m);
    expect(e.seq).toBe(3);
    expect(e.created).toEqual([]);
    expect(e.details.leaves).toEqual({ sha256: sha256Hex(m.read(LEAVES)), count: 2 });
    expect((await verify(m, T_DUE)).errors).toEqual([]);
    // From then on the hash decides.
    m.write(LEAVES, m.read(LEAVES).replace(/serial: (\w+)/, 'serial: 01deadbeef'));
    expect((await verify(m, T_DUE)).errors).toContainEqual(
      expect.objectContaining({
        file: LEAVES,
        message: expect.stringMatching(/sha256: does not hash to what scope-ledger entry 3 recorded/),
      }),
    );
  });

  it('through the real CLI: renew refuses (exit 1) an edited record of an older store, the store unchanged', async () => {
    const m = old.onDisk();
    m.write(LEAVES, m.read(LEAVES).replace(/serial: (\w+)/, 'serial: 01deadbeef'));
    await refused(
      m,
      () => m.ci(['renew', '--force', '--now', T1, '--now-ahead']),
      1,
      /leaves\.yaml: svc-001.*refusing to sign a new issuance record/s,
    );
  });
});
