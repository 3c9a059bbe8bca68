import { beforeAll, describe, expect, it } from 'vitest';
import { signCertificate, type Certificate } from '../src/x509/certificates.js';
import { sha256Hex } from '../src/crypto/crypto.js';
import { caKey, nodeCryptoSeam } from '../src/x509/seam.js';
import { TrellisError } from '../src/model/errors.js';
import {
  appendToLedger,
  canonicalJson,
  ledgerFingerprints,
  ledgerProblems,
  parseLedger,
  unsignedAfterSigned,
} from '../src/ledger/ledger.js';
import {
  entrySignatureValid,
  ledgerSigner,
  signerCertificate,
  type LedgerSigner,
} from '../src/ledger/ledger-signature.js';
import { evidencePathProblem } from '../src/ledger/record-proofs.js';

const FILE = 'bundles/x/ledger.jsonl';
const sha = (o: unknown) => sha256Hex(canonicalJson(o));

function ledgerOf(n: number, signer: LedgerSigner | null = null, from = ''): string {
  let text = from;
  for (let i = 0; i < n; i++) {
    text = appendToLedger(
      text,
      {
        op: 'renew',
        at: `2026-11-2${i}T00:00:00Z`,
        actor: 't',
        created: [{ kind: 'leaf', fingerprint: `sha256:${i}` }],
      },
      FILE,
      signer,
    ).text;
  }
  return text;
}

async function selfSigned(name: string): Promise<{ cert: Certificate; signer: LedgerSigner }> {
  const keys = await nodeCryptoSeam.generateKeyPair('ecdsa-p256');
  const cert = await signCertificate({
    serial: '01',
    subject: `CN=${name}`,
    issuer: `CN=${name}`,
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2030-01-01T00:00:00Z'),
    subjectPublicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: 'ecdsa-p256',
    extensions: [],
  });
  return { cert, signer: ledgerSigner(caKey('intermediate', cert, { key: keys.privateKey, algorithm: 'ecdsa-p256' })) };
}

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof TrellisError) return `${e.reason}: ${e.message}`;
    throw e;
  }
}

describe('hash-chained ledger', () => {
  const text = ledgerOf(3);
  const lines = text.trim().split('\n');
  it('an untouched chain has no problems and lists what was created', () => {
    expect(ledgerProblems(text)).toEqual([]);
    expect([...ledgerFingerprints(text)]).toEqual(['sha256:0', 'sha256:1', 'sha256:2']);
  });
  it.each([
    ['an edited entry', [lines[0], lines[1]!.replace('sha256:1', 'sha256:X'), lines[2]], /entry 2: hash/],
    ['a dropped entry', [lines[0], lines[2]], /entry 2: seq/],
    ['reordered entries', [lines[1], lines[0], lines[2]], /entry 1: seq/],
    ['a line that is not JSON', [lines[0], '{oops', lines[1], lines[2]], /line 2: not JSON/],
  ])('detects %s', (_, ls, problem) => {
    expect(ledgerProblems(`${ls.join('\n')}\n`).join('\n')).toMatch(problem);
  });
  it('is written as one canonical line per operation, so appends never rewrite history', () => {
    const more = appendToLedger(text, { op: 'x', at: '2026-11-30T00:00:00Z', actor: 't' }, FILE, null).text;
    expect(more.startsWith(text)).toBe(true);
    expect(more.trim().split('\n')).toHaveLength(4);
  });
});

describe('signed ledger entries', () => {
  let a: Awaited<ReturnType<typeof selfSigned>>;
  let b: Awaited<ReturnType<typeof selfSigned>>;
  beforeAll(async () => {
    a = await selfSigned('a');
    b = await selfSigned('b');
  });

  it("each entry carries its signer and a signature over its hash that verifies under the signer's certificate", () => {
    const { entries } = parseLedger(ledgerOf(2, a.signer));
    expect(ledgerProblems(ledgerOf(2, a.signer))).toEqual([]);
    for (const e of entries) {
      expect(e.signer).toMatchObject({ keyId: a.signer.keyId, fingerprint: a.signer.fingerprint });
      expect(entrySignatureValid(e.hash, e.signature!, a.cert)).toBe(true);
      expect(entrySignatureValid(e.hash, e.signature!, b.cert)).toBe(false);
    }
  });
  it("carries the signer's certificate on the first entry that key signs, and only there", () => {
    const { entries } = parseLedger(ledgerOf(3, a.signer));
    expect(entries.map((e) => Boolean(e.signer?.certificate))).toEqual([true, false, false]);
    expect(signerCertificate(entries[0]!.signer!, new Map())?.subject).toBe('CN=a');
  });
  it('refuses a carried certificate that is not the one the signer names', () => {
    const [first] = parseLedger(ledgerOf(1, a.signer)).entries;
    expect(signerCertificate({ ...first!.signer!, certificate: b.signer.certificate }, new Map())).toBeUndefined();
  });
  it('migrates a legacy ledger: the first signed entry chains to the unsigned ones, whose hashes stay as they were', () => {
    const legacy = ledgerOf(2);
    const signed = ledgerOf(1, a.signer, legacy);
    expect(signed.startsWith(legacy)).toBe(true);
    const { entries } = parseLedger(signed);
    expect(entries[2]!.prev).toBe(entries[1]!.hash);
    expect(ledgerProblems(signed)).toEqual([]);
    expect(unsignedAfterSigned(entries)).toBeUndefined();
  });
  it('the signer is part of the hash: stripping it from an entry breaks the chain', () => {
    const text = ledgerOf(2, a.signer);
    const [l1, l2] = text.trim().split('\n');
    const stripped = JSON.parse(l1!);
    delete stripped.signer;
    delete stripped.signature;
    expect(ledgerProblems(`${JSON.stringify(stripped)}\n${l2}\n`).join('\n')).toMatch(/entry 1: hash does not match/);
  });
  it.each([
    [
      'an unsigned entry onto a signed ledger',
      () => ledgerOf(1, null, ledgerOf(1, a.signer)),
      /the ledger is signed: an unsigned entry cannot be appended/,
    ],
    [
      'a signed entry on top of an unsigned one that follows signed entries',
      () => ledgerOf(1, b.signer, forgedAfterSigned()),
      /entry 2 is unsigned but follows signed entries/,
    ],
  ])('refuses to append %s', (_, act, why) => {
    expect(reasonOf(act)).toMatch(why);
  });
  it('finds the first unsigned entry after a signed one', () => {
    expect(unsignedAfterSigned(parseLedger(forgedAfterSigned()).entries)?.seq).toBe(2);
    expect(unsignedAfterSigned(parseLedger(ledgerOf(2)).entries)).toBeUndefined();
  });

  /** A signed ledger with an unsigned entry appended by hand, as a pull request could. */
  function forgedAfterSigned(): string {
    const signed = ledgerOf(1, a.signer);
    const head = parseLedger(signed).entries[0]!;
    // Build the forged entry by extending an unsigned copy, then graft it with the signed entry's hash as prev.
    const unsignedCopy = ledgerOf(1);
    const grafted = appendToLedger(
      unsignedCopy,
      { op: 'confirm', at: '2026-11-29T00:00:00Z', actor: 'pr', details: { ciRecipient: 'age1attacker' } },
      FILE,
      null,
    ).entry;
    const body = { ...grafted, prev: head.hash };
    const { hash: _h, ...rest } = body;
    const hash = sha(rest);
    return `${signed}${JSON.stringify({ ...rest, hash })}\n`;
  }
});

describe('evidence paths read from ledgers stay inside the store', () => {
  it.each([
    ["a scope's own evidence", 'bundles/us-east-1/evidence/20261122T1000Z-rotation.json', 'us-east-1', undefined],
    [
      "any scope's evidence, from the root ledger",
      'bundles/us-east-1/evidence/20261122T1000Z-recovery.json',
      'root',
      undefined,
    ],
    [
      "another scope's evidence, from a scope ledger",
      'bundles/eu-west-1/evidence/x.json',
      'us-east-1',
      /not a file under bundles\/us-east-1\/evidence/,
    ],
    ['a path that climbs out', '../../etc/passwd.json', 'us-east-1', /not read/],
    ['a path that climbs out from inside', 'bundles/us-east-1/evidence/../../../x.json', 'us-east-1', /not read/],
    ['an absolute path', '/etc/passwd.json', 'root', /not read/],
    ['a file that is not a JSON record', 'bundles/us-east-1/evidence/x.md', 'us-east-1', /not read/],
    ['a value that is not a string', 42, 'us-east-1', /not a path/],
  ])('%s', (_, rel, scope, want) => {
    const why = evidencePathProblem(rel, scope);
    if (want) expect(why).toMatch(want);
    else expect(why).toBeUndefined();
  });
});
