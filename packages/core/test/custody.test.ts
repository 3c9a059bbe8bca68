import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateHybridIdentity, identityToRecipient } from 'age-encryption';
import {
  ageStanzaCount,
  assertCiPosture,
  assertRootPosture,
  encryptTo,
  newIdentity,
  readIdentities,
  tryDecrypt,
  validateRecipients,
} from '../src/custody/custody.js';
import { TrellisError } from '../src/model/errors.js';

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof TrellisError) return `${e.reason}/${e.exitCode}`;
    throw e;
  }
}

describe('posture: trellis-ci', () => {
  it.each([
    [
      'refuses the root identity in its environment',
      { TRELLIS_ROOT_IDENTITY: 'AGE-SECRET-KEY-1X' },
      'custody-root-identity-in-ci/3',
    ],
    [
      'refuses the root identity file variable too',
      { TRELLIS_ROOT_IDENTITY_FILE: '/x' },
      'custody-root-identity-in-ci/3',
    ],
    ['runs with only the CI identity', { TRELLIS_CI_IDENTITY_FILE: '/x', CI: 'true' }, undefined],
    ['treats an empty variable as unset', { TRELLIS_ROOT_IDENTITY: '' }, undefined],
  ])('%s', (_, env, want) => expect(reasonOf(() => assertCiPosture(env))).toBe(want));
});

describe('posture: trellis-root', () => {
  it.each([
    ['refuses to run in CI', { CI: 'true' }, [], false, 'custody-ci-posture/3'],
    ['refuses in CI even with --allow-online', { CI: '1' }, [], true, 'custody-ci-posture/3'],
    [
      'refuses next to the CI identity',
      { TRELLIS_CI_IDENTITY: 'AGE-SECRET-KEY-1X' },
      [],
      false,
      'custody-ci-identity-on-root/3',
    ],
    [
      'refuses next to the CI identity even with --allow-online',
      { TRELLIS_CI_IDENTITY_FILE: '/x' },
      [],
      true,
      'custody-ci-identity-on-root/3',
    ],
    ['refuses on a networked machine', {}, ['eth0'], false, 'custody-online/3'],
    ['runs online when explicitly allowed', {}, ['eth0'], true, undefined],
    ['runs on an air-gapped machine', {}, [], false, undefined],
  ])('%s', (_, env, ifaces, allowOnline, want) => {
    expect(reasonOf(() => assertRootPosture({ env, onlineInterfaces: ifaces, allowOnline }))).toBe(want);
  });
});

describe('identities and recipients', () => {
  it('reads identities from a file written by age-keygen, skipping comments', async () => {
    const { identity } = await newIdentity();
    const ids = readIdentities(
      'ci',
      { TRELLIS_CI_IDENTITY_FILE: '/f' },
      () => `# created: now\n# public key: age1x\n${identity}\n`,
    );
    expect(ids).toEqual([identity]);
  });
  it('refuses a file that holds no age identity, naming the variable', () => {
    expect(() => readIdentities('ci', { TRELLIS_CI_IDENTITY_FILE: '/f' }, () => 'ssh-ed25519 AAAA')).toThrow(
      /TRELLIS_CI_IDENTITY_FILE/,
    );
  });
  it('refuses mixed post-quantum and classic recipients in one file', async () => {
    const pq = [
      await identityToRecipient(await generateHybridIdentity()),
      await identityToRecipient(await generateHybridIdentity()),
    ];
    const classic = (await newIdentity()).recipient;
    expect(reasonOf(() => validateRecipients([pq[0]!, classic], {}))).toBe('custody-recipients/3');
    expect(reasonOf(() => validateRecipients(pq, {}))).toBeUndefined();
  });
  it('refuses a string that only looks like a recipient, before anything is encrypted', () => {
    expect(reasonOf(() => validateRecipients(['age1qqqq'], { field: '--ci-recipient' }))).toBe('bad-recipient/2');
  });
  it('round-trips a post-quantum (ML-KEM-768 hybrid) identity', async () => {
    const id = await generateHybridIdentity();
    const ct = await encryptTo([await identityToRecipient(id)], 'secret');
    expect(await tryDecrypt([id], ct)).toEqual({ ok: true, text: 'secret' });
    expect(ageStanzaCount(ct)).toBe(1);
  });
  it('encrypts to exactly the recipients given: another identity cannot open it', async () => {
    const a = await newIdentity();
    const b = await newIdentity();
    const ct = await encryptTo([a.recipient], 'secret');
    expect(await tryDecrypt([a.identity], ct)).toEqual({ ok: true, text: 'secret' });
    expect(await tryDecrypt([b.identity], ct)).toEqual({ ok: false, why: 'no-match' });
    expect(await tryDecrypt([a.identity], 'garbage')).toEqual({ ok: false, why: 'malformed' });
  });
  it('refuses an identity that does not parse with bad input (exit 2), not a crash', async () => {
    await expect(tryDecrypt(['AGE-SECRET-KEY-1QQQQ'], 'x')).rejects.toMatchObject({ reason: 'bad-identity' });
  });
  it('writes ciphertext the real age CLI opens with the right identity and refuses with another', async () => {
    const a = await newIdentity();
    const b = await newIdentity();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-age-'));
    fs.writeFileSync(path.join(dir, 'a'), a.identity);
    fs.writeFileSync(path.join(dir, 'b'), b.identity);
    fs.writeFileSync(path.join(dir, 'ct'), await encryptTo([a.recipient], 'secret'));
    expect(execFileSync('age', ['-d', '-i', path.join(dir, 'a'), path.join(dir, 'ct')], { encoding: 'utf8' })).toBe(
      'secret',
    );
    expect(() =>
      execFileSync('age', ['-d', '-i', path.join(dir, 'b'), path.join(dir, 'ct')], { stdio: 'pipe' }),
    ).toThrow(/no identity matched/);
  });
});
