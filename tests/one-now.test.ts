/**
 * One notion of now, checked everywhere (issue 19): a time that is not now is
 * a class of hostile input, closed by one predicate in core (notYetValid,
 * CLOCK_SKEW_MS) and one rule for --now (assertNowNotAhead).
 *
 * - Leaves, CRLs and intermediates dated after the real clock are verify
 *   errors, check criticals and status states; renew re-mints and re-signs them.
 * - --now ahead of the real clock needs --now-ahead (usage, exit 2, both times named).
 * - A ledger time bounds the workstation's clock only once a root the store
 *   holds signed it; recover orders what a burned key signed by sequence.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CLOCK_SKEW_MS,
  appendToLedger,
  assertNowNotAhead,
  canonicalJson,
  isTrellisError,
  ledgerSigner,
  notYetValid,
  parseCertificate,
  parseLedger,
  sha256Hex,
  tryDecrypt,
  type LedgerDraft,
  type LedgerSigner,
  caKeyFromPem,
} from '@trellis/core';
import fs from 'node:fs';
import { meshStatus } from '../packages/core/src/procedures/plan.js';
import { FakeMesh } from './helpers/fake-mesh.js';
import { MemoryMesh } from './helpers/memory-mesh.js';
import { at, DAY, HOUR, MINUTE, RUN_NOW } from './helpers/clock.js';

const RUNS = Number(process.env.TRELLIS_FUZZ_RUNS ?? 6);
const ROOT_LEDGER = 'bundles/root/ledger.jsonl';
const FAR = '2099-01-01T00:00:00Z';

/** Offsets from a clock: around the skew allowance, and far either side. */
const offsets = fc.oneof(
  fc.integer({ min: -400 * DAY, max: 400 * DAY }),
  fc.integer({ min: CLOCK_SKEW_MS - 2 * MINUTE, max: CLOCK_SKEW_MS + 2 * MINUTE }),
  fc.constantFrom(0, CLOCK_SKEW_MS, CLOCK_SKEW_MS + 1, -CLOCK_SKEW_MS),
);

describe('the predicate', () => {
  it('is not yet valid exactly when it starts later than now plus the skew allowance', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_000_000_000_000 }), offsets, (base, off) => {
        const now = new Date(base);
        expect(notYetValid(new Date(base + off), now)).toBe(off > CLOCK_SKEW_MS);
      }),
      { numRuns: 500 },
    );
  });

  it('--now ahead by more than the allowance is usage (exit 2) naming both times, unless --now-ahead', () => {
    fc.assert(
      fc.property(offsets, fc.boolean(), (off, ahead) => {
        const real = new Date(RUN_NOW);
        const now = new Date(real.getTime() + off);
        let thrown: unknown;
        try {
          assertNowNotAhead(now, real, ahead);
        } catch (e) {
          thrown = e;
        }
        if (off > CLOCK_SKEW_MS && !ahead) {
          expect(isTrellisError(thrown) && thrown.exitCode).toBe(2);
          expect((thrown as Error).message).toContain(now.toISOString().slice(0, 19));
          expect((thrown as Error).message).toContain(real.toISOString().slice(0, 19));
        } else expect(thrown).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });
});

const identities = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('AGE-SECRET-KEY'));
async function keyOf(m: FakeMesh, certFile: string, keyFile: string, identityFile: string): Promise<LedgerSigner> {
  const opened = await tryDecrypt(identities(identityFile), m.read(keyFile));
  if (!opened.ok) throw new Error(`cannot open ${keyFile}`);
  const role = certFile.startsWith('bundles/root/') ? 'root' : 'intermediate';
  return ledgerSigner(await caKeyFromPem(role, parseCertificate(m.read(certFile)), opened.text));
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

describe('--now through the CLIs', () => {
  let m: FakeMesh;
  beforeAll(async () => {
    m = await FakeMesh.create({ scopes: { 'us-east-1': ['api'] } });
  });

  it('every CLI refuses --now ahead of its clock without --now-ahead, and takes it with', async () => {
    // Away from the boundary by a minute either side: the real clock moves while a CLI starts.
    const away = fc.oneof(
      fc.integer({ min: -30 * DAY, max: CLOCK_SKEW_MS - MINUTE }),
      fc.integer({ min: CLOCK_SKEW_MS + MINUTE, max: 400 * DAY }),
    );
    await fc.assert(
      fc.asyncProperty(away, fc.constantFrom('ci', 'root'), async (off, cli) => {
        const when = at(new Date(), off);
        const run = (extra: string[]) =>
          cli === 'ci' ? m.ci(['status', '--now', when, ...extra]) : m.root(['status', '--now', when, ...extra]);
        const r = await run([]);
        if (off > CLOCK_SKEW_MS) {
          expect(r.code, r.stderr).toBe(2);
          expect(r.stderr).toContain(`--now ${when} is ahead of this machine's clock (`);
          expect(r.stderr).toMatch(/--now-ahead/);
          expect((await run(['--now-ahead'])).code).toBe(0);
        } else if (cli === 'ci' || off >= 0) {
          expect(r.code, r.stderr).toBe(0); // trellis-root refuses a time behind its ledger: another rule
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('check answers a --now ahead as Nagios UNKNOWN (exit 3), its own code for a run it cannot judge', async () => {
    const when = at(new Date(), DAY);
    const r = await m.ci(['check', '--now', when]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^TRELLIS UNKNOWN - .*--now \S+ is ahead of this machine's clock/);
    expect((await m.ci(['check', '--now', when, '--now-ahead'])).stdout).not.toMatch(/UNKNOWN/);
  });
});

const leafStates = (json: string) =>
  (JSON.parse(json) as { scopes: { scope: string; leaves: { state: string }[] }[] }).scopes
    .find((s) => s.scope === 'us-east-1')!
    .leaves.map((l) => l.state);

describe('leaves minted at generated offsets, judged at the real clock', () => {
  it('status says not-yet-valid exactly for a leaf dated beyond the skew allowance, and renew at the real clock re-mints it (in-process)', async () => {
    const m = await MemoryMesh.create({ scopes: { 'us-east-1': ['api'] } });
    // Leaves are backdated a minute; a minute's margin either side of the boundary, for the real clock moving
    // meanwhile.
    const away = fc.oneof(
      fc.integer({ min: 0, max: CLOCK_SKEW_MS - MINUTE }),
      fc.integer({ min: CLOCK_SKEW_MS + 3 * MINUTE, max: 30 * DAY }),
    );
    await fc.assert(
      fc.asyncProperty(away, async (off) => {
        await m.renew(new Date(Date.now() + off), { force: true });
        const early = off > CLOCK_SKEW_MS;
        // status --json is meshStatus at the clock; renew --dry-run prints the outlook renew computes.
        expect(leafStates(JSON.stringify(meshStatus(m.mesh(), new Date())))).toEqual([early ? 'not-yet-valid' : 'ok']);
        const renew = (await m.renew(new Date(), { dryRun: true })).lines.join('\n');
        expect(renew.includes('not-yet-valid'), renew).toBe(early);
      }),
      { numRuns: 6 * Math.min(RUNS, 4) },
    );
  }, 120_000);
});

describe('a renew with --now far ahead, judged at the real clock', () => {
  let m: FakeMesh;
  const AHEAD = at(RUN_NOW, 400 * DAY);
  beforeAll(async () => {
    m = await FakeMesh.create({ scopes: { 'us-east-1': ['api', 'web'] } });
    const r = await m.ci(['renew', '--now', AHEAD, '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('verify, check and status report the leaves and the CRL not yet valid; renew re-mints and re-signs them', async () => {
    const verify = await m.ci(['verify']);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/✗ error +expiry +\[us-east-1\] api: leaf not yet valid .*valid from /);
    expect(verify.stdout).toMatch(/✗ error +expiry +\[us-east-1\] web: leaf not yet valid/);
    expect(verify.stdout).toMatch(/✗ error +crl +\[us-east-1\] CRL of .* is not valid before /);

    const check = await m.ci(['check']);
    expect(check.code).toBe(2);
    expect(check.stdout).toMatch(/^TRELLIS CRITICAL/);
    expect(check.stdout).toMatch(
      /CRITICAL +certificate +us-east-1\/api +leaf serial \S+ not valid before .*run trellis-ci renew/,
    );
    expect(check.stdout).toMatch(/CRITICAL +crl +us-east-1 +leaf CRL of .* not valid before /);

    const status = await m.ci(['status', '--json']);
    expect(leafStates(status.stdout)).toEqual(['not-yet-valid', 'not-yet-valid']);
    expect((await m.root(['status'])).stdout).toMatch(/api +not-yet-valid/);

    const renew = await m.ci(['renew']);
    expect(renew.code, renew.stderr).toBe(0);
    expect(renew.stdout + renew.stderr).toMatch(/api/);
    const after = await m.ci(['verify']);
    expect(after.stdout).not.toMatch(/not yet valid|not valid before/);
    const recheck = await m.ci(['check']);
    expect(recheck.stdout).not.toMatch(/not valid before/);
    expect(leafStates((await m.ci(['status', '--json'])).stdout)).toEqual(['ok', 'ok']);
  });

  it('an intermediate minted under a --now ahead is a verify error and a check critical', async () => {
    m.writeScope('ap-south-1', ['api']);
    const r = await m.root(['intermediate', 'ap-south-1', '--now', at(RUN_NOW, 2 * DAY), '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
    const verify = await m.ci(['verify']);
    expect(verify.stdout).toMatch(/✗ error +expiry +\[ap-south-1\] intermediate not valid before /);
    expect((await m.ci(['check'])).stdout).toMatch(
      /CRITICAL +certificate +ap-south-1 +active intermediate serial \S+ not valid before /,
    );
    expect((await m.ci(['status'])).stdout).toMatch(/scope ap-south-1 .*NOT YET VALID: valid from /);
  });
});

describe('ledger times that count', () => {
  let m: FakeMesh;
  let pristineLedger: string;
  beforeAll(async () => {
    m = await FakeMesh.create({ scopes: { 'us-east-1': ['api'] } });
    pristineLedger = m.read(ROOT_LEDGER);
  });

  it('a forged, unsigned root-ledger line dated 2099 locks no trellis-root command out; verify reports it', async () => {
    m.write(ROOT_LEDGER, appendUnsigned(pristineLedger, { op: 'crl', at: FAR, actor: 'mallory' }));
    const status = await m.root(['status']);
    expect(status.code, status.stderr).toBe(0);
    const verify = await m.root(['verify']);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/entry \d+: unsigned, after signed entries/);
    expect(verify.stderr).not.toMatch(/earlier than the newest root ledger entry/);
  });

  it('an entry dated 2099 signed by the CI-held intermediate key does not bound the workstation', async () => {
    const ci = await keyOf(
      m,
      'bundles/us-east-1/intermediate.pem',
      'bundles/us-east-1/intermediate.key.age',
      m.ciIdentityFile,
    );
    m.write(
      ROOT_LEDGER,
      appendToLedger(pristineLedger, { op: 'crl', at: FAR, actor: 'stolen-key', details: {} }, ROOT_LEDGER, ci).text,
    );
    const status = await m.root(['status']);
    expect(status.code, status.stderr).toBe(0);
    expect((await m.root(['verify'])).stdout).toMatch(/which is not a root certificate/);
  });

  it('a root-signed entry still bounds it (the rule is intact)', async () => {
    const root = await keyOf(m, 'bundles/root/root.pem', 'bundles/root/root.key.age', m.rootIdentityFile);
    m.write(
      ROOT_LEDGER,
      appendToLedger(
        pristineLedger,
        { op: 'crl', at: at(RUN_NOW, DAY), actor: 'custodian', details: {} },
        ROOT_LEDGER,
        root,
      ).text,
    );
    const r = await m.root(['status']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/earlier than the newest root ledger entry/);
    m.write(ROOT_LEDGER, pristineLedger);
  });
});

describe("recover with the workstation clock behind CI's", () => {
  it('orders what the burned key signed by sequence: renew of the recovered scope works', async () => {
    const m = await FakeMesh.create({ now: at(RUN_NOW, -3 * HOUR), scopes: { 'us-east-1': ['api', 'web'] } });
    // CI signs at the real clock; the workstation's clock is an hour behind it.
    expect((await m.ci(['renew', '--force', '--scope', 'us-east-1'])).code).toBe(0);
    const burnedKey = await keyOf(
      m,
      'bundles/us-east-1/intermediate.pem',
      'bundles/us-east-1/intermediate.key.age',
      m.ciIdentityFile,
    );
    const rec = await m.root(['recover', 'us-east-1', '--reason', 'keyCompromise', '--now', at(RUN_NOW, -HOUR)]);
    expect(rec.code, rec.stderr).toBe(0);
    const renew = await m.ci(['renew']);
    expect(renew.code, renew.stderr).toBe(0);
    const verify = await m.ci(['verify']);
    expect(verify.stdout).not.toMatch(/✗ error +ledger/);
    // What the burned key signs after the recovery still counts for nothing, whatever time it claims.
    const US = 'bundles/us-east-1/ledger.jsonl';
    m.write(
      US,
      appendToLedger(
        m.read(US),
        { op: 'renew', at: at(RUN_NOW, -2 * HOUR), actor: 'thief', details: {} },
        US,
        burnedKey,
      ).text,
    );
    expect((await m.ci(['verify'])).stdout).toMatch(
      /✗ error +ledger +\[us-east-1\] entry \d+: signed by intermediate \S+ after the entry that revoked it/,
    );
  });
});
