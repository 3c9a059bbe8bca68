/**
 * Signed ledgers and records as claims (DESIGN §7a), tried as a pull request
 * would: entries appended by hand, signed by the wrong key, forged
 * confirmations, edited records, evidence paths that climb out of the store.
 * What verify finds is judged in-process on the procedures (MemoryMesh); what a
 * command refuses, and verify's exit code, through the real CLIs on a copy
 * written to disk.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  appendToLedger,
  canonicalJson,
  ledgerSigner,
  newIdentity,
  parseCertificate,
  parseLedger,
  sha256Hex,
  nodeCryptoSeam,
  tryDecrypt,
  type LedgerDraft,
  type LedgerSigner,
  caKeyFromPem,
  caKey,
} from '@trellis/core';
import { worstLevel } from '../packages/core/src/verify/finding.js';
import { MemoryMesh, type DiskMesh } from './helpers/memory-mesh.js';
import { at, DAY, HOUR, RUN_NOW } from './helpers/clock.js';

const T0 = at(RUN_NOW);
const T1 = at(T0, HOUR);
const ROOT_LEDGER = 'bundles/root/ledger.jsonl';
const US = 'bundles/us-east-1/ledger.jsonl';
let pristine: MemoryMesh;

beforeAll(async () => {
  pristine = await MemoryMesh.create({
    now: T0,
    scopes: { global: ['control'], 'us-east-1': ['api'], 'eu-west-1': ['api'] },
  });
}, 120_000);

/** A ledger signer holding a key of the store, opened the way its CLI opens it. */
async function keyOf(m: MemoryMesh, certFile: string, keyFile: string, identities: string[]): Promise<LedgerSigner> {
  const opened = await tryDecrypt(identities, m.read(keyFile));
  if (!opened.ok) throw new Error(`cannot open ${keyFile}`);
  const role = certFile.startsWith('bundles/root/') ? 'root' : 'intermediate';
  return ledgerSigner(await caKeyFromPem(role, parseCertificate(m.read(certFile)), opened.text));
}
const rootKey = (m: MemoryMesh) => keyOf(m, 'bundles/root/root.pem', 'bundles/root/root.key.age', m.rootIds);
const intermediateKey = (m: MemoryMesh, scope: string) =>
  keyOf(m, `bundles/${scope}/intermediate.pem`, `bundles/${scope}/intermediate.key.age`, m.ciIds);

/** A key trellis never heard of, with a self-signed certificate. */
async function strangerKey(): Promise<LedgerSigner> {
  const keys = await nodeCryptoSeam.generateKeyPair('ecdsa-p256');
  const cert = await nodeCryptoSeam.signCertificate({
    serial: '01',
    subject: 'CN=stranger',
    issuer: 'CN=stranger',
    notBefore: new Date(at(T0, -7810 * HOUR)),
    notAfter: new Date(at(T0, 27254 * HOUR)),
    subjectPublicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: 'ecdsa-p256',
    extensions: [],
  });
  return ledgerSigner(caKey('root', cert, { key: keys.privateKey, algorithm: 'ecdsa-p256' }));
}

/** What a pull request can write: a well-formed entry chained to the head, unsigned. */
function appendUnsigned(text: string, draft: LedgerDraft): string {
  const head = parseLedger(text).entries.at(-1);
  const body = {
    seq: (head?.seq ?? 0) + 1,
    at: draft.at,
    op: draft.op,
    actor: draft.actor,
    details: draft.details ?? {},
    created: draft.created ?? [],
    prev: head?.hash ?? null,
  };
  return `${text}${canonicalJson({ ...body, hash: sha256Hex(canonicalJson(body)) })}\n`;
}

/** The same ledger as an older trellis wrote it: every entry unsigned, re-chained. */
function asLegacy(text: string): string {
  let out = '';
  for (const e of parseLedger(text).entries)
    out = appendToLedger(
      out,
      { op: e.op, at: e.at, actor: e.actor, details: e.details, created: e.created },
      'ledger.jsonl',
      null,
    ).text;
  return out;
}

/**
 * A recipients "confirmation" as a ceremony records one: only the CI recipient differs from the store's, so only who
 * signed it decides.
 */
const confirmation = (ci: string): LedgerDraft => {
  const offlineRecipients = parseLedger(pristine.read(ROOT_LEDGER)).entries[0]!.details.offlineRecipients;
  return { op: 'confirm-recipients', at: T1, actor: 'attacker', details: { ciRecipient: ci, offlineRecipients } };
};

/** `trellis-ci verify --json` with the CI identity, in-process: its findings and exit code. */
async function verify(m: MemoryMesh, now = T1) {
  const findings = await m.verify(new Date(now), 'ci');
  return {
    code: worstLevel(findings) === 'error' ? 1 : 0,
    findings,
    problems: findings.filter((f) => f.level !== 'ok').map((f) => `${f.level} ${f.file} ${f.message}`),
  };
}

/** The same, through the real CLI on a copy on disk. */
async function verifyCli(m: DiskMesh, now = T1) {
  const r = await m.ci(['verify', '--json', '--now', now, '--now-ahead']);
  const findings = JSON.parse(r.stdout).findings as { level: string; check: string; message: string; file?: string }[];
  return {
    code: r.code,
    findings,
    problems: findings.filter((f) => f.level !== 'ok').map((f) => `${f.level} ${f.file} ${f.message}`),
  };
}

const SCOPE_FILE = 'kind: region\nservices:\n  api: {}\n';

/** Runs `act` on a copy and checks the refusal left the store byte for byte as it was. */
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
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(m.snapshot()).toEqual(before);
}

describe('every entry is signed by a key its writer holds', () => {
  it('a fresh store: every entry of every ledger is signed, and verify is clean', async () => {
    for (const f of [ROOT_LEDGER, US, 'bundles/global/ledger.jsonl']) {
      expect(
        parseLedger(pristine.read(f)).entries.every((e) => e.signer && e.signature),
        f,
      ).toBe(true);
    }
    const rootDer = new Uint8Array(parseCertificate(pristine.read('bundles/root/root.pem')).rawData);
    const rootFp = `sha256:${sha256Hex(rootDer)}`;
    const [init] = parseLedger(pristine.read(ROOT_LEDGER)).entries;
    expect(init!.signer!.fingerprint).toBe(rootFp);
    const us = parseLedger(pristine.read(US)).entries;
    expect(us.map((e) => [e.op, e.signer!.fingerprint === rootFp ? 'root' : 'intermediate'])).toEqual([
      ['intermediate', 'root'],
      ['renew', 'intermediate'],
    ]);
    const v = await verify(pristine);
    expect(v.problems).toEqual([]);
  });

  it.each([
    [
      'a well-formed unsigned entry a pull request appended to a scope ledger',
      US,
      async () => (t: string) => appendUnsigned(t, { op: 'renew', at: T1, actor: 'pr' }),
      /entry 3: unsigned, after signed entries/,
    ],
    [
      'a well-formed unsigned entry appended to the root ledger',
      ROOT_LEDGER,
      async () => (t: string) => appendUnsigned(t, confirmation('age1x')),
      /entry 3: unsigned, after signed entries/,
    ],
    [
      'a scope-ledger entry signed by a key trellis never issued',
      US,
      async () => {
        const k = await strangerKey();
        return (t: string) => appendToLedger(t, { op: 'renew', at: T1, actor: 'pr' }, US, k).text;
      },
      new RegExp(
        /entry 3: signed by sha256:\w+, which is neither a recorded root nor an intermediate this scope's /.source +
          /ledger recorded/.source,
      ),
    ],
    [
      "a scope-ledger entry signed by another region's intermediate",
      US,
      async (m: MemoryMesh) => {
        const k = await intermediateKey(m, 'eu-west-1');
        return (t: string) => appendToLedger(t, { op: 'renew', at: T1, actor: 'ci' }, US, k).text;
      },
      new RegExp(
        /entry 3: signed by sha256:\w+, which is neither a recorded root nor an intermediate this scope's /.source +
          /ledger recorded/.source,
      ),
    ],
    [
      "a root-ledger entry signed by a scope's intermediate (a stolen CI identity)",
      ROOT_LEDGER,
      async (m: MemoryMesh) => {
        const k = await intermediateKey(m, 'us-east-1');
        return (t: string) => appendToLedger(t, confirmation('age1x'), ROOT_LEDGER, k).text;
      },
      /entry 3: signed by sha256:\w+, which is not a root certificate/,
    ],
    [
      'an entry edited after it was signed, its hash recomputed',
      US,
      async () => (t: string) => {
        const lines = t.trim().split('\n');
        const e = JSON.parse(lines[1]!);
        e.details.reasons = { api: 'forced' };
        const { hash: _h, signature, ...body } = e;
        lines[1] = canonicalJson({ ...body, hash: sha256Hex(canonicalJson(body)), signature });
        return `${lines.join('\n')}\n`;
      },
      /entry 2: its signature does not verify/,
    ],
  ])('%s is an error naming the ledger and the entry', async (_, file, make, finding) => {
    const m = pristine.clone();
    const edit = await make(m);
    m.write(file, edit(m.read(file)));
    const v = await verify(m);
    expect(v.code).toBe(1);
    expect(v.findings).toContainEqual(
      expect.objectContaining({ level: 'error', check: 'ledger', file, message: expect.stringMatching(finding) }),
    );
  });

  it('through the real CLI: verify exits 1 on an unsigned entry a pull request appended, naming it; the store unchanged', async () => {
    const m = pristine.onDisk();
    m.write(US, appendUnsigned(m.read(US), { op: 'renew', at: T1, actor: 'pr' }));
    const before = m.snapshot();
    const v = await verifyCli(m);
    expect(v.code).toBe(1);
    expect(v.problems).toContainEqual(
      expect.stringMatching(/^error bundles\/us-east-1\/ledger.jsonl entry 3: unsigned/),
    );
    expect(m.snapshot()).toEqual(before);
  });

  it('an abort signs both ledgers with the root, so it needs the root identity now (exit 3 without, store unchanged)', async () => {
    const m = pristine.onDisk();
    expect((await m.root(['rotate', 'intermediate', 'eu-west-1', '--now', T1, '--now-ahead'])).code).toBe(0);
    await refused(
      m,
      () =>
        m.root(['rotate', 'intermediate', 'eu-west-1', '--abort', '--now', T1, '--now-ahead'], {
          TRELLIS_ROOT_IDENTITY_FILE: '',
        }),
      3,
      /root identity/,
    );
    const ok = await m.root(['rotate', 'intermediate', 'eu-west-1', '--abort', '--now', T1, '--now-ahead']);
    expect(ok.code, ok.stderr).toBe(0);
    const [scopeEntry, rootEntry] = ['bundles/eu-west-1/ledger.jsonl', ROOT_LEDGER].map(
      (f) => parseLedger(m.read(f)).entries.at(-1)!,
    );
    expect([scopeEntry!.op, rootEntry!.op]).toEqual(['rotate-intermediate-abort', 'rotate-intermediate-abort']);
    expect(scopeEntry!.signer!.fingerprint).toBe(parseLedger(m.read(ROOT_LEDGER)).entries[0]!.signer!.fingerprint);
    expect((await verifyCli(m)).problems.filter((p) => p.startsWith('error'))).toEqual([]);
  });

  it('an entry signed with an intermediate key after recover burned it (a thief with the stolen key) is an error', async () => {
    const m = pristine.clone();
    const stolen = await intermediateKey(m, 'us-east-1');
    await m.recover('us-east-1', new Date(T1));
    m.write(US, appendToLedger(m.read(US), { op: 'renew', at: at(T0, 2 * HOUR), actor: 'thief' }, US, stolen).text);
    const v = await verify(m, at(T0, 2 * HOUR));
    expect(v.findings).toContainEqual(
      expect.objectContaining({
        level: 'error',
        check: 'ledger',
        file: US,
        message: expect.stringMatching(/entry 4: signed by intermediate sha256:\w+ after the entry that revoked it/),
      }),
    );
  });

  it.each([
    [
      'CI (renew) on a scope ledger a pull request appended an unsigned entry to',
      US,
      async () => (t: string) => appendUnsigned(t, { op: 'renew', at: T1, actor: 'pr' }),
      (m: DiskMesh) => m.ci(['renew', '--force', '--scope', 'us-east-1', '--now', T1, '--now-ahead']),
      /unsigned, after signed entries/,
    ],
    [
      'CI (revoke) on a scope ledger with an entry signed by a stranger',
      US,
      async () => {
        const k = await strangerKey();
        return (t: string) => appendToLedger(t, { op: 'renew', at: T1, actor: 'pr' }, US, k).text;
      },
      (m: DiskMesh) => m.ci(['revoke', 'us-east-1/api', '--now', T1, '--now-ahead']),
      /signed by sha256:\w+, which is neither a recorded root/,
    ],
    [
      "a ceremony (crl) on a root ledger with an entry signed by a scope's intermediate",
      ROOT_LEDGER,
      async (m: MemoryMesh) => {
        const k = await intermediateKey(m, 'global');
        return (t: string) => appendToLedger(t, { op: 'crl', at: T1, actor: 'ci' }, ROOT_LEDGER, k).text;
      },
      (m: DiskMesh) => m.root(['crl', '--now', T1, '--now-ahead']),
      /signed by sha256:\w+, which is not a root certificate/,
    ],
  ])('%s refuses to sign on top of it (exit 1, store unchanged)', async (_, file, make, act, why) => {
    const m = pristine.onDisk();
    const edit = await make(pristine);
    m.write(file, edit(m.read(file)));
    await refused(
      m,
      () => act(m),
      1,
      new RegExp(
        `${file}: seq 3: entry 3: ${why.source}.*refusing to sign on top of it.*restore the ledger from git history`,
        's',
      ),
    );
  });
});

describe('a confirmation is a root-signed entry', () => {
  it.each([
    ['unsigned', async () => (t: string, ci: string) => appendUnsigned(t, confirmation(ci))],
    [
      "signed by the CI's intermediate, not a root",
      async (m: MemoryMesh) => {
        const k = await intermediateKey(m, 'us-east-1');
        return (t: string, ci: string) => appendToLedger(t, confirmation(ci), ROOT_LEDGER, k).text;
      },
    ],
    [
      'signed by a key trellis never issued',
      async () => {
        const k = await strangerKey();
        return (t: string, ci: string) => appendToLedger(t, confirmation(ci), ROOT_LEDGER, k).text;
      },
    ],
  ])(
    'a forged recipients confirmation (%s) is not honoured: the next ceremony refuses the changed recipient (exit 3)',
    async (_, make) => {
      const m = pristine.onDisk();
      const attacker = (await newIdentity()).recipient;
      const forge = await make(pristine);
      m.write(ROOT_LEDGER, forge(m.read(ROOT_LEDGER), attacker));
      m.write('trellis.yaml', m.read('trellis.yaml').replace(/ci: age1\w+/, `ci: ${attacker}`));
      m.write('scopes/ap-south-1.yaml', SCOPE_FILE);
      await refused(
        m,
        () => m.root(['intermediate', 'ap-south-1', '--now', T1, '--now-ahead']),
        3,
        /trellis.yaml: recipients: changed since the root ledger last recorded it/,
      );
      expect(fs.existsSync(m.path('bundles/ap-south-1/intermediate.key.age'))).toBe(false);
    },
  );
  it('the same confirmation signed by the root (the custodian) is honoured: the refusals above are about who signed', async () => {
    const m = pristine.onDisk();
    const rotated = (await newIdentity()).recipient;
    const k = await rootKey(pristine);
    m.write(ROOT_LEDGER, appendToLedger(m.read(ROOT_LEDGER), confirmation(rotated), ROOT_LEDGER, k).text);
    m.write('trellis.yaml', m.read('trellis.yaml').replace(/ci: age1\w+/, `ci: ${rotated}`));
    m.write('scopes/ap-south-1.yaml', SCOPE_FILE);
    const r = await m.root(['intermediate', 'ap-south-1', '--now', T1, '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('a legacy (unsigned) store migrates on its next write', () => {
  let legacy: MemoryMesh;
  beforeAll(() => {
    legacy = pristine.clone();
    for (const f of [ROOT_LEDGER, US, 'bundles/eu-west-1/ledger.jsonl', 'bundles/global/ledger.jsonl'])
      legacy.write(f, asLegacy(legacy.read(f)));
  });
  it('verifies with one warning per ledger, no error', async () => {
    const v = await verify(legacy);
    expect(v.code, v.problems.join('\n')).toBe(0);
    expect(v.problems.sort()).toEqual(
      [ROOT_LEDGER, 'bundles/eu-west-1/ledger.jsonl', 'bundles/global/ledger.jsonl', US]
        .sort()
        .map(
          (f) =>
            `warning ${f} unsigned (legacy) ledger, written before ledgers were signed: its entries are taken ` +
            `as written; signed from its next write`,
        ),
    );
  });
  it("the next renew signs the scope ledger on top of its legacy entries; after that a pull request's unsigned entry is an error", async () => {
    const m = legacy.clone();
    await m.renew(new Date(T1), { force: true, scope: 'us-east-1' });
    const entries = parseLedger(m.read(US)).entries;
    expect(entries.map((e) => Boolean(e.signature))).toEqual([false, false, true]);
    expect(entries[2]!.prev).toBe(entries[1]!.hash);
    expect((await verify(m)).problems.filter((p) => p.includes(US))).toEqual([]);
    m.write(US, appendUnsigned(m.read(US), { op: 'renew', at: T1, actor: 'pr' }));
    expect((await verify(m)).problems).toContainEqual(
      expect.stringMatching(/^error bundles\/us-east-1\/ledger.jsonl entry 4: unsigned, after signed entries/),
    );
  });
  it('on a legacy root ledger the old rule holds until its first signed entry; after it, the same forgery is refused', async () => {
    const m = legacy.onDisk();
    const attacker = (await newIdentity()).recipient;
    // Before migration: an unsigned confirmation counts, as it always did (the documented legacy rule).
    const preMigration = legacy.onDisk();
    preMigration.write(ROOT_LEDGER, appendUnsigned(preMigration.read(ROOT_LEDGER), confirmation(attacker)));
    preMigration.write('trellis.yaml', preMigration.read('trellis.yaml').replace(/ci: age1\w+/, `ci: ${attacker}`));
    preMigration.write('scopes/ap-south-1.yaml', SCOPE_FILE);
    const honoured = await preMigration.root(['intermediate', 'ap-south-1', '--now', T1, '--now-ahead']);
    expect(honoured.code, honoured.stderr).toBe(0);
    // The custodian's next ceremony signs the root ledger; from then on only root-signed entries confirm.
    const crl = await m.root(['crl', '--now', T1, '--now-ahead']);
    expect(crl.code, crl.stderr).toBe(0);
    expect(parseLedger(m.read(ROOT_LEDGER)).entries.at(-1)!.signature).toBeTruthy();
    m.write(ROOT_LEDGER, appendUnsigned(m.read(ROOT_LEDGER), confirmation(attacker)));
    m.write('trellis.yaml', m.read('trellis.yaml').replace(/ci: age1\w+/, `ci: ${attacker}`));
    m.write('scopes/ap-south-1.yaml', SCOPE_FILE);
    await refused(
      m,
      () => m.root(['intermediate', 'ap-south-1', '--now', T1, '--now-ahead']),
      3,
      /recipients: changed since the root ledger last recorded it/,
    );
  });
});

describe('records are claims: verify proves them from the ledger', () => {
  // leaves.yaml is proven by the hash renew's signed entry binds (tests/store-growth.test.ts has the per-field proofs
  // of older stores).
  it.each([
    [
      'a later notAfter hiding an expiring leaf',
      'bundles/us-east-1/leaves.yaml',
      (t: string) => t.replace(/notAfter: \S+/, `notAfter: ${at(T0, 365 * DAY)}`),
      /sha256: does not hash to what scope-ledger entry 2 recorded \(\w+\): edited or rolled back\?/,
    ],
    [
      'a changed serial',
      'bundles/us-east-1/leaves.yaml',
      (t: string) => t.replace(/serial: (\w+)/, 'serial: 01deadbeef'),
      /sha256: does not hash to what scope-ledger entry 2 recorded \(\w+\): edited or rolled back\?/,
    ],
    [
      'a changed fingerprint',
      'bundles/us-east-1/leaves.yaml',
      (t: string) => t.replace(/  fingerprint: sha256:\w+/, '  fingerprint: sha256:00'),
      /sha256: does not hash to what scope-ledger entry 2 recorded \(\w+\): edited or rolled back\?/,
    ],
    [
      'an extra DNS name',
      'bundles/us-east-1/leaves.yaml',
      (t: string) => t.replace(/dns:\n/, 'dns:\n    - evil.us-east-1.mesh.example\n'),
      /sha256: does not hash to what scope-ledger entry 2 recorded \(\w+\): edited or rolled back\?/,
    ],
    [
      'an edited phase',
      'bundles/us-east-1/state.yaml',
      (t: string) => t.replace('phase: steady', 'phase: switch'),
      /phase: switch, but the scope ledger's phase steps lead to steady/,
    ],
    [
      'an edited active intermediate',
      'bundles/eu-west-1/state.yaml',
      (t: string, m: MemoryMesh) =>
        t.replace(/active: \S+/, `active: ${/active: (\S+)/.exec(m.read('bundles/us-east-1/state.yaml'))![1]}`),
      /active: sha256:\w+, but the scope ledger's phase steps lead to sha256:/,
    ],
    [
      'a revocation nobody made',
      'bundles/us-east-1/state.yaml',
      (t: string) =>
        `${t}revoked:\n  - service: api\n    serial: 01aa\n    issuer: sha256:00\n    notAfter: ` +
        `${at(T0, 7 * DAY)}\n    at: ${T1}\n    reason: x\n`,
      /revoked\[0\]\.serial: revocation of api 01AA is in no revoke entry/,
    ],
    [
      'an edited root phase',
      'bundles/root/state.yaml',
      (t: string) => t.replace('phase: steady', 'phase: overlap'),
      /phase: overlap, but the root ledger's steps lead to steady/,
    ],
  ])('%s is an error naming the file and field', async (_, file, edit, finding) => {
    const m = pristine.clone();
    m.write(file, edit(m.read(file), m));
    const v = await verify(m);
    expect(v.code).toBe(1);
    expect(v.findings).toContainEqual(
      expect.objectContaining({ level: 'error', file, message: expect.stringMatching(finding) }),
    );
  });

  it('a revocation dropped from state.yaml (un-revoking a live leaf) is an error', async () => {
    const m = pristine.clone();
    await m.revoke('us-east-1', 'api', new Date(T1));
    expect((await verify(m)).problems).toEqual([]);
    m.write('bundles/us-east-1/state.yaml', m.read('bundles/us-east-1/state.yaml').replace(/revoked:[\s\S]*$/, ''));
    expect((await verify(m)).findings).toContainEqual(
      expect.objectContaining({
        level: 'error',
        message: expect.stringMatching(
          /the scope ledger revoked api \w+ \(entry 3\) but state.yaml no longer lists it/,
        ),
      }),
    );
  });

  it('a switch gate moved earlier in state.yaml, and evidence edited after it was linked, are errors', async () => {
    const m = pristine.clone();
    await m.rotate('eu-west-1', m.mesh().config.overlap.propagation, new Date(T1));
    expect((await verify(m)).problems.filter((p) => p.startsWith('error'))).toEqual([]);
    m.write(
      'bundles/eu-west-1/state.yaml',
      m.read('bundles/eu-west-1/state.yaml').replace(/switchAt: \S+/, `switchAt: ${T1}`),
    );
    const evidence = parseLedger(m.read('bundles/eu-west-1/ledger.jsonl')).entries.at(-1)!.details.evidence as string;
    m.write(evidence, m.read(evidence).replace('"in-progress"', '"completed"'));
    const v = await verify(m);
    expect(v.findings).toContainEqual(
      expect.objectContaining({
        level: 'error',
        file: 'bundles/eu-west-1/state.yaml',
        message: expect.stringMatching(
          new RegExp(
            String.raw`rotation\.switchAt: ${T1}, but the scope ledger's phase steps lead to ${at(T0, 25 * HOUR)}`,
          ),
        ),
      }),
    );
    expect(v.findings).toContainEqual(
      expect.objectContaining({
        level: 'error',
        file: evidence,
        message: expect.stringMatching(/sha256: does not hash to what bundles\/eu-west-1\/ledger.jsonl entry 3 linked/),
      }),
    );
  });
});

describe('paths read from records stay inside the store', () => {
  it.each([
    ['unsigned (a pull request)', async () => (t: string, d: LedgerDraft) => appendUnsigned(t, d)],
    [
      'root-signed',
      async (m: MemoryMesh) => {
        const k = await rootKey(m);
        return (t: string, d: LedgerDraft) => appendToLedger(t, d, US, k).text;
      },
    ],
  ])('an evidence link with ../ in a %s entry is an error, and the file it names is never opened', async (_, make) => {
    const m = pristine.onDisk();
    // A FIFO outside the store: opening it for reading would block verify for good.
    const outside = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-outside-')), 'secret.json');
    execFileSync('mkfifo', [outside]);
    const rel = path.relative(m.dir, outside);
    expect(rel.startsWith('../')).toBe(true);
    const append = await make(pristine);
    m.write(
      US,
      append(m.read(US), {
        op: 'rotate-intermediate-abort',
        at: T1,
        actor: 'x',
        details: { scope: 'us-east-1', evidence: rel, sha256: '00' },
      }),
    );
    const v = await verifyCli(m);
    expect(v.code).toBe(1);
    expect(v.findings).toContainEqual(
      expect.objectContaining({
        level: 'error',
        file: US,
        message: expect.stringMatching(
          new RegExp(
            /seq 3 details\.evidence: evidence path ".*secret\.json" is not a file under /.source +
              /bundles\/us-east-1\/evidence\/: not read/.source,
          ),
        ),
      }),
    );
  });
  it('a state.yaml evidence id that climbs out of the store is refused before anything reads it (exit 1)', async () => {
    const m = pristine.onDisk();
    m.write(
      'bundles/us-east-1/state.yaml',
      `${m.read('bundles/us-east-1/state.yaml')}evidence: ../../../../etc/passwd\n`,
    );
    await refused(
      m,
      () => m.ci(['renew', '--force', '--scope', 'us-east-1', '--now', T1, '--now-ahead']),
      1,
      /bundles\/us-east-1\/state.yaml: evidence: missing or malformed/,
    );
    const v = await m.ci(['verify', '--now', T1, '--now-ahead']);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/state.yaml: evidence: missing or malformed/);
  });
});

describe('revoke acts only on a proven record', () => {
  it('after an edited serial in leaves.yaml, revoke refuses (exit 1) and the store is unchanged', async () => {
    const m = pristine.onDisk();
    // The serial of another live leaf: revoking it would take down the wrong service.
    const other = /serial: (\w+)/.exec(m.read('bundles/eu-west-1/leaves.yaml'))![1]!;
    m.write(
      'bundles/us-east-1/leaves.yaml',
      m.read('bundles/us-east-1/leaves.yaml').replace(/serial: \w+/, `serial: ${other}`),
    );
    await refused(
      m,
      () => m.ci(['revoke', 'us-east-1/api', '--now', T1, '--now-ahead']),
      1,
      new RegExp(
        /bundles\/us-east-1\/leaves.yaml: sha256: does not hash to what scope-ledger entry 2 /.source +
          /recorded.*refusing to act on a record the ledger does not prove.*restore /.source +
          /bundles\/us-east-1\/leaves.yaml from git/.source,
        's',
      ),
    );
  });
  it('with the record as the ledger proves it, revoke revokes exactly that serial', async () => {
    const m = pristine.onDisk();
    const serial = /serial: (\w+)/.exec(m.read('bundles/us-east-1/leaves.yaml'))![1]!;
    const r = await m.ci(['revoke', 'us-east-1/api', '--now', T1, '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
    // Printed as OpenSSL prints it; the ledger keeps the stored form.
    expect(r.stdout).toContain(`serial ${serial.toUpperCase()}`);
    expect(parseLedger(m.read(US)).entries.at(-1)!.details.serial).toBe(serial);
  });
});
