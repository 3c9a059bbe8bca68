/**
 * Every refusal of the contract, through the real CLIs: the exit code, a
 * message that names the place and what to do, and a store left as it was.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateHybridIdentity, identityToRecipient } from 'age-encryption';
import { encryptTo, newIdentity, parseCertificate } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { expectRefused, trellisRoot, type Reason } from './helpers/cli.js';
import { at, HOUR, RUN_NOW } from './helpers/clock.js';

const T0 = at(RUN_NOW);
let pristine: FakeMesh;
let strangerFile: string;

beforeAll(async () => {
  pristine = await FakeMesh.create({
    now: T0,
    scopes: { global: ['control'], 'us-east-1': ['api'], 'eu-west-1': ['api'] },
  });
  strangerFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-stranger-')), 'id');
  fs.writeFileSync(strangerFile, (await newIdentity()).identity);
});

/**
 * Runs `act` on a copy of the mesh and checks the refusal's reason and exit code, that it names what `names` says
 * (the file, the field, the way out: prose only where the words are the point), and that it left the store byte for
 * byte as it was.
 */
async function refused(
  act: (m: FakeMesh) => Promise<{ code: number; stdout: string; stderr: string }>,
  reason: Reason,
  names?: RegExp,
  prepare?: (m: FakeMesh) => void,
) {
  const m = pristine.clone();
  prepare?.(m);
  const before = m.snapshot();
  const r = await act(m);
  expectRefused(r, reason);
  if (names) expect(r.stderr).toMatch(names);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace for an expected failure
  expect(m.snapshot()).toEqual(before);
  return m;
}

const online = Object.values(os.networkInterfaces())
  .flat()
  .some((a) => a && !a.internal);

describe('custody and posture (exit 3)', () => {
  it('trellis-ci refuses to run with the root identity in its environment', async () => {
    await refused(
      (m) => m.ci(['renew', '--force', '--now', T0, '--now-ahead'], { TRELLIS_ROOT_IDENTITY_FILE: m.rootIdentityFile }),
      'custody-root-identity-in-ci',
      /TRELLIS_ROOT_IDENTITY_FILE is set/,
    );
  });
  it('trellis-root refuses to run in CI', async () => {
    await refused((m) => m.root(['intermediate', '--pending'], { CI: 'true' }), 'custody-ci-posture');
  });
  it('trellis-root refuses to run next to the CI identity', async () => {
    await refused(
      (m) => m.root(['status'], { TRELLIS_CI_IDENTITY_FILE: m.ciIdentityFile }),
      'custody-ci-identity-on-root',
      /TRELLIS_CI_IDENTITY_FILE is set/,
    );
  });
  it('trellis-root refuses a networked machine unless --allow-online is given', async () => {
    const m = pristine.clone();
    const r = await m.root(['status'], { TRELLIS_ALLOW_ONLINE: '' });
    if (online) {
      expectRefused(r, 'custody-online');
      expect(r.stderr, 'names the way out').toMatch(/--allow-online/);
    } else expect(r.code).toBe(0);
    expect((await m.root(['status', '--allow-online'], { TRELLIS_ALLOW_ONLINE: '' })).code).toBe(0);
  });
  it('renew refuses a CI identity that does not open the intermediate key', async () => {
    await refused(
      (m) => m.ci(['renew', '--force', '--now', T0, '--now-ahead'], { TRELLIS_CI_IDENTITY_FILE: strangerFile }),
      'custody-wrong-identity',
      /bundles\/\S+\/intermediate.key.age: /,
    );
  });
  it('renew refuses to run without the CI identity when a leaf is due', async () => {
    await refused(
      (m) => m.ci(['renew', '--force', '--now', T0, '--now-ahead'], { TRELLIS_CI_IDENTITY_FILE: '' }),
      'custody-missing-identity',
      /→ set TRELLIS_CI_IDENTITY_FILE/,
    );
  });
  it('the root ceremony refuses the CI identity in place of the root identity', async () => {
    await refused(
      (m) => m.root(['intermediate', 'ap-south-1'], { TRELLIS_ROOT_IDENTITY_FILE: m.ciIdentityFile }),
      'custody-wrong-identity',
      /bundles\/root\/root.key.age: /,
      (m) => m.writeScope('ap-south-1', ['api']),
    );
  });
  it('the root ceremony refuses to run without the root identity', async () => {
    await refused(
      (m) => m.root(['intermediate', 'ap-south-1'], { TRELLIS_ROOT_IDENTITY_FILE: '' }),
      'custody-missing-identity',
      /→ set TRELLIS_ROOT_IDENTITY/,
      (m) => m.writeScope('ap-south-1', ['api']),
    );
  });
});

describe('bad input (exit 2)', () => {
  it('a scope file with an unknown key names the file and the field', async () => {
    await refused(
      (m) => m.ci(['renew', '--now', T0, '--now-ahead']),
      'bad-scope',
      /scopes\/us-east-1.yaml: services.api.dsn: /,
      (m) => m.write('scopes/us-east-1.yaml', 'kind: region\nservices:\n  api:\n    dsn: [x]\n'),
    );
  });
  it('a scope file that is not YAML names the file', async () => {
    await refused(
      (m) => m.ci(['renew', '--now', T0, '--now-ahead']),
      'bad-scope',
      /scopes\/eu-west-1.yaml: /,
      (m) => m.write('scopes/eu-west-1.yaml', 'kind: [region\n'),
    );
  });
  it('an extra DNS name outside the scope is refused before any leaf is minted', async () => {
    await refused(
      (m) => m.ci(['renew', '--force', '--now', T0, '--now-ahead']),
      'bad-scope',
      /services.api.dns\[0\]: "api.eu-west-1.mesh.example"/,
      (m) =>
        m.write('scopes/us-east-1.yaml', 'kind: region\nservices:\n  api:\n    dns: [api.eu-west-1.mesh.example]\n'),
    );
  });
  it('trellis.yaml with a typo names the field', async () => {
    await refused(
      (m) => m.ci(['status']),
      'bad-config',
      /trellis.yaml: defaults.ttl.laef: /,
      (m) => m.write('trellis.yaml', m.read('trellis.yaml').replace('    leaf: 7d', '    leaf: 7d\n    laef: 1d')),
    );
  });
  it('a --now that is not RFC 3339 is refused', async () => {
    await refused((m) => m.ci(['renew', '--now', 'tomorrow']), 'bad-time', /--now "tomorrow"/);
  });
  it('an unknown scope is refused with the declared ones listed', async () => {
    await refused(
      (m) => m.root(['intermediate', 'mars-1']),
      'unknown-scope',
      /→ declared scopes: eu-west-1, global, us-east-1/,
    );
  });
  it('init refuses to overwrite an existing store', async () => {
    await refused(
      (m) =>
        trellisRoot([
          'init',
          '--store',
          m.dir,
          '--mesh',
          'x',
          '--trust-domain',
          'mesh.example',
          '--ci-recipient',
          'age1qqqq',
        ]),
      'store-exists',
    );
  });
  it('init refuses to mix post-quantum and classic offline recipients', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-init-'));
    const r = await trellisRoot([
      'init',
      '--store',
      dir,
      '--mesh',
      'x',
      '--trust-domain',
      'mesh.example',
      '--ci-recipient',
      (await newIdentity()).recipient,
      '--offline-recipient',
      await identityToRecipient(await generateHybridIdentity()),
      '--offline-recipient',
      (await newIdentity()).recipient,
    ]);
    expectRefused(r, 'custody-recipients');
    expect(r.stderr, 'names the flag').toMatch(/--offline-recipient: /);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
  it('a command given no store says where it looked', async () => {
    const r = await trellisRoot(['status'], { cwd: os.tmpdir() });
    expectRefused(r, 'no-store');
    expect(r.stderr, 'says where it looked').toContain(os.tmpdir());
  });
});

describe('refused operations (exit 1)', () => {
  it('a second ceremony for a minted scope points at rotation and recovery', async () => {
    await refused(
      (m) => m.root(['intermediate', 'us-east-1']),
      'already-minted',
      /→ .*rotate intermediate us-east-1.*recover us-east-1/s,
    );
  });
  it('a leaf that would outlive its intermediate is refused, not truncated', async () => {
    const notAfter = parseCertificate(pristine.read('bundles/us-east-1/intermediate.pem')).notAfter;
    const late = new Date(notAfter.getTime() - 3 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await refused(
      (m) => m.ci(['renew', '--scope', 'us-east-1', '--force', '--now', late, '--now-ahead']),
      'outlives-issuer',
      /→ .*rotate the intermediate/s,
    );
  });
  it('renew refuses to sign under a tampered intermediate certificate', async () => {
    await refused(
      (m) => m.ci(['renew', '--force', '--now', T0, '--now-ahead']),
      'verification-failed',
      /bundles\/us-east-1\/intermediate.pem: /,
      (m) => {
        // Swap in eu-west-1's certificate: a real certificate, but not this scope's key or constraints.
        m.write('bundles/us-east-1/intermediate.pem', tamper(m.read('bundles/us-east-1/intermediate.pem')));
      },
    );
  });
});

describe('concurrency (exit 4)', () => {
  it('a run refuses a store locked by another live run', async () => {
    await refused(
      (m) => m.ci(['renew', '--force', '--now', T0, '--now-ahead']),
      'store-locked',
      /\.trellis\/lock: .*pid \d+/,
      (m) => {
        fs.mkdirSync(m.path('.trellis'), { recursive: true });
        fs.writeFileSync(
          m.path('.trellis/lock'),
          JSON.stringify({ pid: process.pid, host: os.hostname(), since: 'now' }),
        );
      },
    );
  });
});

describe('verify finds what was tampered with (exit 1)', () => {
  it.each([
    [
      'a flipped byte in an intermediate signature',
      'bundles/eu-west-1/intermediate.pem',
      tamper,
      /\[eu-west-1\] intermediate is not signed by any root/,
    ],
    [
      'an edited ledger entry',
      'bundles/us-east-1/ledger.jsonl',
      (t: string) => t.replace('"op":"renew"', '"op":"renuw"'),
      /entry 2: hash does not match/,
    ],
    [
      'another region smuggled into a bundle',
      'bundles/us-east-1/trust.pem',
      (t: string, m: FakeMesh) => t + m.read('bundles/eu-west-1/intermediate.pem'),
      /\[us-east-1\] trust.pem does not hold exactly/,
    ],
    [
      'a trust.openssl.pem that lost its trust settings',
      'bundles/global/trust.openssl.pem',
      (_t: string, m: FakeMesh) => m.read('bundles/global/trust.pem'),
      /\[global\] trust.openssl.pem does not hold exactly/,
    ],
    [
      'a leaf record not in the ledger',
      'bundles/us-east-1/leaves.yaml',
      (t: string) => t.replace(/fingerprint: sha256:\w+/, 'fingerprint: sha256:00'),
      /sha256: does not hash to what scope-ledger entry \d+ recorded/,
    ],
    [
      'a root whose key was swapped',
      'bundles/root/root.pem',
      (_t: string, m: FakeMesh) => m.read('bundles/us-east-1/intermediate.pem'),
      /root: basicConstraints|root is not validly self-signed/,
    ],
  ])('%s', async (_, file, edit, finding) => {
    const m = pristine.clone();
    m.write(file, (edit as (t: string, m: FakeMesh) => string)(m.read(file), m));
    const v = await m.ci(['verify', '--now', T0, '--now-ahead']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(finding);
  });
  it('an intermediate key that no longer matches its certificate', async () => {
    const m = pristine.clone();
    m.write('bundles/us-east-1/intermediate.key.age', m.read('bundles/eu-west-1/intermediate.key.age'));
    const v = await m.ci(['verify', '--now', T0, '--now-ahead']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/\[us-east-1\] the intermediate key does not match its certificate/);
  });
  it('an intermediate key encrypted to the root identity is caught by trellis-root verify', async () => {
    const m = pristine.clone();
    m.write('bundles/global/intermediate.key.age', m.read('bundles/root/root.key.age'));
    const v = await m.root(['verify', '--now', T0, '--now-ahead']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/\[global\] the root identity opens this intermediate key/);
  });
  it('trellis-root verify proves the root key opens and matches', async () => {
    const v = await pristine.root(['verify', '--now', T0, '--now-ahead']);
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toContain('root key opens with the offline identity and matches its certificate');
  });
});

/** Flips one byte inside the signature of the first certificate of a PEM file. */
function tamper(pem: string): string {
  const b64 = pem
    .split('\n')
    .filter((l) => !l.startsWith('-----'))
    .join('');
  const der = Buffer.from(b64, 'base64');
  der[der.length - 5] ^= 0x01;
  return (
    `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END ` + `CERTIFICATE-----\n`
  );
}

describe('init in an existing repository', () => {
  it('extends the .gitignore it finds instead of replacing it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-repo-'));
    fs.writeFileSync(path.join(dir, '.gitignore'), 'node_modules/\n');
    const r = await trellisRoot([
      'init',
      '--store',
      dir,
      '--mesh',
      'x',
      '--trust-domain',
      'mesh.example',
      '--ci-recipient',
      (await newIdentity()).recipient,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, '.gitignore'), 'utf8')).toBe('node_modules/\n.trellis/\n');
  });
});

describe('custody of recipients (exit 3)', () => {
  it('init refuses a CI recipient that is also an offline recipient', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-init-'));
    const shared = (await newIdentity()).recipient;
    const r = await trellisRoot([
      'init',
      '--store',
      dir,
      '--mesh',
      'x',
      '--trust-domain',
      'mesh.example',
      '--ci-recipient',
      shared,
      '--offline-recipient',
      shared,
    ]);
    expectRefused(r, 'custody-recipients');
    expect(r.stderr, 'names the field').toMatch(/recipients.ci: /);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
  it('a pull request that changes recipients.ci cannot redirect the next intermediate key', async () => {
    const attacker = (await newIdentity()).recipient;
    const m = await refused(
      (x) => x.root(['intermediate', 'ap-south-1']),
      'custody-recipients',
      /trellis.yaml: recipients: .*--confirm-recipients/s,
      (x) => {
        x.write('trellis.yaml', x.read('trellis.yaml').replace(/ci: age1\w+/, `ci: ${attacker}`));
        x.writeScope('ap-south-1', ['api']);
      },
    );
    const ok = await m.root(['intermediate', 'ap-south-1', '--confirm-recipients']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(m.read('bundles/root/ledger.jsonl').trim().split('\n').at(-1)).toContain(attacker);
  });
  it('renew refuses an identity that opens the root key, even when handed over as the CI identity', async () => {
    await refused(
      (m) => m.ci(['renew', '--force', '--now', T0, '--now-ahead'], { TRELLIS_CI_IDENTITY_FILE: m.rootIdentityFile }),
      'custody-root-identity-in-ci',
      /bundles\/root\/root.key.age: /,
    );
  });
  it('a usage error with the root identity set is still a custody refusal', async () => {
    await refused(
      (m) => m.ci(['renw'], { TRELLIS_ROOT_IDENTITY: 'AGE-SECRET-KEY-1QQQQ' }),
      'custody-root-identity-in-ci',
    );
  });
});

describe('a damaged store is refused before anything is signed', () => {
  it('a garbage intermediate key file is called damaged, not a wrong identity (exit 1)', async () => {
    await refused(
      (m) => m.ci(['renew', '--force', '--now', T0, '--now-ahead']),
      'corrupt-store',
      /bundles\/us-east-1\/intermediate.key.age: /,
      (m) => m.write('bundles/us-east-1/intermediate.key.age', 'garbage\n'),
    );
  });
  it("an intermediate key swapped with another scope's does not sign (exit 1)", async () => {
    await refused(
      (m) => m.ci(['renew', '--force', '--scope', 'us-east-1', '--now', T0, '--now-ahead']),
      'key-mismatch',
      /bundles\/us-east-1\/intermediate.key.age: /,
      (m) => m.write('bundles/us-east-1/intermediate.key.age', m.read('bundles/eu-west-1/intermediate.key.age')),
    );
  });
  it('a missing intermediate.pem is not a pending scope: the ceremony refuses to mint over it', async () => {
    const m = await refused(
      (x) => x.root(['intermediate', '--pending']),
      'corrupt-store',
      /bundles\/us-east-1\/intermediate.pem: /,
      (x) => fs.rmSync(x.path('bundles/us-east-1/intermediate.pem')),
    );
    const v = await m.ci(['verify', '--now', T0, '--now-ahead']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/intermediate.pem is missing but the scope had an intermediate/);
  });
  it('a ledger whose chain is broken is not extended (exit 1)', async () => {
    await refused(
      (m) => m.ci(['renew', '--force', '--scope', 'us-east-1', '--now', T0, '--now-ahead']),
      'corrupt-store',
      /bundles\/us-east-1\/ledger.jsonl: /,
      (m) => m.write('bundles/us-east-1/ledger.jsonl', `${m.read('bundles/us-east-1/ledger.jsonl')}null\n`),
    );
  });
  it('--out that is not a directory is bad input (exit 2)', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-out-')), 'f');
    fs.writeFileSync(file, 'x');
    await refused(
      (m) => m.ci(['renew', '--force', '--now', T0, '--now-ahead', '--out', file]),
      'usage',
      /→ point --out at a directory/,
    );
  });
});

describe('verify without secrets', () => {
  it.each([
    [
      'a root in roots.pem the root ledger never recorded',
      (m: FakeMesh, o: FakeMesh) =>
        m.write('bundles/root/roots.pem', m.read('bundles/root/roots.pem') + o.read('bundles/root/root.pem')),
      /in roots.pem is not recorded in the root ledger/,
    ],
    [
      'a key file that is not age ciphertext to one recipient',
      (m: FakeMesh) => m.write('bundles/global/intermediate.key.age', 'garbage\n'),
      /\[global\] the key file is not age ciphertext to exactly one/,
    ],
    [
      'a root key re-encrypted to an extra recipient',
      (m: FakeMesh, _o: FakeMesh, twoRecipients: string) => m.write('bundles/root/root.key.age', twoRecipients),
      /root key file is not age ciphertext to exactly the 1 offline recipient/,
    ],
    [
      'a ledger line that is JSON but not an entry',
      (m: FakeMesh) => m.write('bundles/global/ledger.jsonl', `${m.read('bundles/global/ledger.jsonl')}null\n`),
      /line \d+: not a ledger entry/,
    ],
  ])('finds %s', async (_, edit, finding) => {
    const other = await otherMesh();
    const m = pristine.clone();
    const twoRecipients = await encryptTo(
      [(await newIdentity()).recipient, (await newIdentity()).recipient],
      'not a key',
    );
    (edit as (m: FakeMesh, o: FakeMesh, t: string) => void)(m, other, twoRecipients);
    const v = await m.ci(['verify', '--now', T0, '--now-ahead']);
    expect(v.code, v.stdout).toBe(1);
    expect(v.stdout).toMatch(finding);
  });
  it('warns before expiry and errs after: leaf due, leaf expired, intermediate within 90 days, root within a year', async () => {
    const m = pristine.clone();
    // Five days without a renew: the leaves are due (a warning) and the 72-hour leaf CRLs have lapsed (an error).
    const due = await m.ci(['verify', '--now', at(T0, 122 * HOUR), '--now-ahead']);
    expect(due.code).toBe(1);
    expect(due.stdout).toMatch(/! warning expiry +\[us-east-1\] api: leaf is due/);
    expect(due.stdout).toMatch(/✗ error +crl +\[us-east-1\] CRL of .* past its nextUpdate/);
    const expired = await m.ci(['verify', '--now', at(T0, 194 * HOUR), '--now-ahead']);
    expect(expired.code).toBe(1);
    expect(expired.stdout).toMatch(/✗ error +expiry +\[us-east-1\] api: leaf expired/);
    const inter = parseCertificate(m.read('bundles/us-east-1/intermediate.pem')).notAfter;
    const lateInter = await m.ci([
      'verify',
      '--json',
      '--now',
      new Date(inter.getTime() - 30 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z'),
      '--now-ahead',
    ]);
    const findings = JSON.parse(lateInter.stdout).findings as {
      level: string;
      check: string;
      message: string;
      scope?: string;
    }[];
    expect(findings).toContainEqual(
      expect.objectContaining({
        level: 'warning',
        check: 'expiry',
        scope: 'us-east-1',
        message: expect.stringMatching(/intermediate expires in 30 days/),
      }),
    );
    const root = parseCertificate(m.read('bundles/root/root.pem')).notAfter;
    const lateRoot = await m.ci([
      'verify',
      '--json',
      '--now',
      new Date(root.getTime() - 100 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z'),
      '--now-ahead',
    ]);
    expect(JSON.parse(lateRoot.stdout).findings).toContainEqual(
      expect.objectContaining({
        level: 'warning',
        check: 'expiry',
        message: expect.stringMatching(/root expires in 100 days/),
      }),
    );
  });
  it('trellis-root verify --json proves root custody in machine-readable form', async () => {
    const v = await pristine.root(['verify', '--json', '--now', T0, '--now-ahead']);
    expect(v.code).toBe(0);
    const out = JSON.parse(v.stdout);
    expect(out.ok).toBe(true);
    expect(out.findings).toContainEqual(
      expect.objectContaining({ level: 'ok', check: 'custody', file: 'bundles/root/root.key.age' }),
    );
  });
});

describe('scoped renew', () => {
  it("renew --scope touches only that scope's files", async () => {
    const m = pristine.clone();
    m.write('bundles/global/trust.pem', 'stale\n');
    const r = await m.ci(['renew', '--force', '--scope', 'us-east-1', '--now', T0, '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
    expect(m.read('bundles/global/trust.pem')).toBe('stale\n');
    const g = await m.ci(['renew', '--scope', 'global', '--now', T0, '--now-ahead']);
    expect(g.stdout).toMatch(/refreshed 1 bundle file/);
    expect(m.read('bundles/global/ledger.jsonl').trim().split('\n').at(-1)).toContain('"bundles":"recomposed"');
    expect((await m.ci(['verify', '--now', T0, '--now-ahead'])).code).toBe(0);
  });
});

let other: FakeMesh | undefined;
async function otherMesh(): Promise<FakeMesh> {
  other ??= await FakeMesh.fresh({ now: T0, scopes: { global: [], 'us-east-1': ['api'] }, leaves: false });
  return other;
}
