/**
 * A CI identity per scope (trellis.yaml recipients.ciScopes): parsed fail
 * closed; counts only once a custodian confirmed it; ceremonies encrypt each
 * scope's keys to its own recipient (checked with the real age CLI);
 * `trellis-ci rekey` moves scopes onto their identities (ledger-recorded,
 * crash-safe); trellis-ci refuses, exit 3 and the store unchanged, an identity
 * that opens a separated scope it was not asked to work on; verify proves
 * which recipient each key is encrypted to.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  type TrellisError,
  assertIdentityScoped,
  encryptTo,
  newIdentity,
  parseMeshConfig,
  tryDecrypt,
} from '@trellis/core';
import { Store, loadMesh } from '@trellis/core/store';
import { FakeMesh } from './helpers/fake-mesh.js';
import { expectRefused, tool, trellisCi } from './helpers/cli.js';
import { snapshotStore } from './helpers/store-hash.js';

const SCOPES = ['eu-west-1', 'global', 'us-east-1'] as const;
const idLines = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('AGE-SECRET-KEY'));
const ledger = (m: FakeMesh, scope: string) =>
  m
    .read(`bundles/${scope}/ledger.jsonl`)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { op: string; details: Record<string, unknown> });
/** The real age CLI: does this identity file open this key file? */
const ageOpens = async (idFile: string, file: string) =>
  (await tool('age', ['-d', '-i', idFile, '-o', '/dev/null', file])).code === 0;

interface Separated {
  m: FakeMesh;
  ids: Record<string, { file: string; recipient: string; identity: string }>;
}

/**
 * A mesh of three scopes, us-east-1 and eu-west-1 each given its own CI recipient in trellis.yaml (as a pull request
 * would: unconfirmed).
 */
async function proposed(): Promise<Separated> {
  const m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api'], 'eu-west-1': ['api'] } });
  const ids: Separated['ids'] = {};
  for (const s of ['us-east-1', 'eu-west-1']) {
    const id = await newIdentity();
    const file = path.join(path.dirname(m.dir), `ci-${s}.identity`);
    fs.writeFileSync(file, `# CI identity of ${s}\n${id.identity}\n`, { mode: 0o600 });
    ids[s] = { file, ...id };
  }
  setCiScopes(m, { 'us-east-1': ids['us-east-1']!.recipient, 'eu-west-1': ids['eu-west-1']!.recipient });
  return { m, ids };
}

function setCiScopes(m: FakeMesh, ciScopes: Record<string, string> | undefined): void {
  const cfg = parse(m.read('trellis.yaml')) as { recipients: Record<string, unknown> };
  if (ciScopes) cfg.recipients.ciScopes = ciScopes;
  else delete cfg.recipients.ciScopes;
  m.write('trellis.yaml', stringify(cfg));
}

async function confirmed(): Promise<Separated> {
  const w = await proposed();
  const c = await w.m.root(['confirm', '--confirm-recipients']);
  expect(c.code, c.stderr).toBe(0);
  return w;
}

/** Separated and rekeyed: each region's keys on its own recipient, global's on the shared one. */
async function rekeyed(): Promise<Separated> {
  const w = await confirmed();
  const r = await w.m.ci(['rekey']);
  expect(r.code, r.stderr).toBe(0);
  return w;
}

const both = (w: Separated, ...scopes: string[]) => {
  const file = path.join(path.dirname(w.m.dir), `ci-${scopes.join('+')}.identity`);
  fs.writeFileSync(file, scopes.map((s) => `${w.ids[s]!.identity}\n`).join(''), { mode: 0o600 });
  return file;
};

describe('recipients.ciScopes in trellis.yaml', () => {
  let base: { offline: string; ci: string; other: string; pq: string };
  beforeAll(async () => {
    base = {
      offline: (await newIdentity()).recipient,
      ci: (await newIdentity()).recipient,
      other: (await newIdentity()).recipient,
      pq: (await newIdentity(true)).recipient,
    };
  });
  const cfg = (ciScopes: unknown) =>
    `version: 1\nmesh: prod\ntrustDomain: mesh.example\nrecipients:\n  offline: [${base.offline}]\n  ci: ` +
    `${base.ci}\n  ciScopes: ${JSON.stringify(ciScopes)}\n`;
  const refusal = (text: string) => {
    try {
      parseMeshConfig(text);
    } catch (e) {
      return e as TrellisError;
    }
    throw new Error('accepted');
  };

  it('parses a scope map; a scope without an entry uses recipients.ci', () => {
    const c = parseMeshConfig(cfg({ 'us-east-1': base.other }));
    expect(c.recipients.ciScopes).toEqual({ 'us-east-1': base.other });
    expect(parseMeshConfig(cfg({})).recipients.ciScopes).toBeUndefined();
  });

  it('refuses, naming the field: a mixed classic/post-quantum CI tier, the shared or an offline recipient, one recipient for two scopes, a bad scope name, a non-recipient', () => {
    let e = refusal(cfg({ 'us-east-1': base.pq }));
    expect([e.reason, e.exitCode, e.place.field]).toEqual(['custody-recipients', 3, 'recipients.ciScopes.us-east-1']);
    expect(e.message).toMatch(/post-quantum but recipients\.ci is classic/);
    e = refusal(cfg({ 'us-east-1': base.ci }));
    expect([e.reason, e.exitCode]).toEqual(['bad-config', 2]);
    expect(e.message).toMatch(/is recipients\.ci, the shared CI recipient/);
    e = refusal(cfg({ 'us-east-1': base.offline }));
    expect([e.reason, e.exitCode]).toEqual(['custody-recipients', 3]);
    e = refusal(cfg({ 'eu-west-1': base.other, 'us-east-1': base.other }));
    expect(e.message).toMatch(/also the recipient of scope eu-west-1: one identity would open both/);
    e = refusal(cfg({ 'US-East': base.other }));
    expect(e.place.field).toBe('recipients.ciScopes.US-East');
    e = refusal(cfg({ 'us-east-1': 'AGE-SECRET-KEY-1QQQQ' }));
    expect(e.message).not.toMatch(/AGE-SECRET-KEY-1QQQQ/);
    e = refusal(cfg(['us-east-1']));
    expect(e.place.field).toBe('recipients.ciScopes');
  });
});

describe('a CI identity per scope, end to end', () => {
  it('counts only once confirmed: before, ceremonies and rekey refuse (exit 3, store unchanged) and CI keeps the shared identity; confirm records the map', async () => {
    const { m } = await proposed();
    const snap = snapshotStore(m.dir);
    const rotate = await m.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '1h']);
    expectRefused(rotate, 'custody-recipients');
    expect(rotate.stderr, 'names the field').toMatch(
      /recipients\.ciScopes\.us-east-1 .* \(confirmed: none, the shared one\)/,
    );
    const rekey = await m.ci(['rekey']);
    expectRefused(rekey, 'custody-not-confirmed');
    expect(rekey.stderr, 'names the field').toMatch(
      /recipients\.ciScopes\.eu-west-1 age1\S+ \(confirmed: none, the shared one\)/,
    );
    expect(snap.now()).toEqual(snap.before);
    // Unconfirmed, the map separates nothing: the shared identity still renews a region, and verify warns.
    expect((await m.ci(['renew', '--scope', 'us-east-1', '--shard', '--force'])).code).toBe(0);
    const v = await trellisCi(['--store', m.dir, 'verify']);
    expect(v.stdout).toMatch(/recipients\.ciScopes\.eu-west-1 .* is not confirmed by a custodian/);

    const c = await m.root(['confirm', '--confirm-recipients']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/us-east-1: age1/);
    const entry = m
      .read('bundles/root/ledger.jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { op: string; details: Record<string, unknown> })
      .at(-1)!;
    expect(entry.op).toBe('confirm-recipients');
    expect(Object.keys(entry.details.ciScopeRecipients as object).sort()).toEqual(['eu-west-1', 'us-east-1']);
  });

  it('before the rekey the shared identity is refused for every shard (it still opens the separated keys); rekey moves them, recorded; the age CLI opens each region key with its identity only', async () => {
    const w = await confirmed();
    const { m, ids } = w;
    const snap = snapshotStore(m.dir);
    const r = await m.ci(['renew', '--scope', 'global', '--shard', '--force']);
    expectRefused(r, 'custody-identity-too-broad');
    expect(r.stderr, 'names the identity and the scopes').toMatch(
      /the shared CI recipient \(recipients\.ci\)\) also opens the intermediate key of eu-west-1, us-east-1/,
    );
    expect(r.stderr, 'the hint').toMatch(/→ .*run trellis-ci rekey/);
    expect(r.stderr).not.toMatch(/AGE-SECRET-KEY/);
    expect(snap.now()).toEqual(snap.before);
    // verify with the shared identity names each key still on it.
    const v = await m.ci(['verify']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(
      new RegExp(
        /encrypted to the shared CI recipient \(recipients\.ci\), but us-east-1's confirmed CI recipient /.source +
          /is scope us-east-1's own/.source,
      ),
    );

    const k = await m.ci(['rekey']);
    expect(k.code, k.stderr).toBe(0);
    expect(k.stdout).toMatch(/rekeyed 2 intermediate key file\(s\) \(eu-west-1 → age1\S+, us-east-1 → age1\S+\)/);
    const oldShared = /^# recipient: (\S+)$/m.exec(fs.readFileSync(m.ciIdentityFile, 'utf8'))?.[1];
    for (const s of ['us-east-1', 'eu-west-1']) {
      expect(ledger(m, s).at(-1)).toMatchObject({
        op: 'rekey',
        details: { ciRecipient: ids[s]!.recipient, scopeRecipient: true, keys: [`bundles/${s}/intermediate.key.age`] },
      });
      if (oldShared) expect(ledger(m, s).at(-1)!.details.oldCiRecipients).toEqual([oldShared]);
    }
    expect(ledger(m, 'global').at(-1)!.op).not.toBe('rekey');
    for (const s of SCOPES) {
      const key = m.path(`bundles/${s}/intermediate.key.age`);
      expect(await ageOpens(ids['us-east-1']!.file, key), `us-east-1 identity on ${s}`).toBe(s === 'us-east-1');
      expect(await ageOpens(ids['eu-west-1']!.file, key), `eu-west-1 identity on ${s}`).toBe(s === 'eu-west-1');
      expect(await ageOpens(m.ciIdentityFile, key), `shared identity on ${s}`).toBe(s === 'global');
    }
    // A second rekey with the shared identity finds nothing left to move.
    const again = await m.ci(['rekey']);
    expect(again.stdout).toMatch(/nothing to rekey/);
  });

  it("renew --scope S --shard runs with S's identity; another scope's, the shared one, or one holding two scopes is refused, exit 3, store byte-identical", async () => {
    const w = await rekeyed();
    const { m, ids } = w;
    // A sealed target, so deploy --scope us-east-1 needs the CI identity.
    m.writeScope('us-east-1', [{ api: { deploy: [{ type: 'sealed', host: 'web-1' }] } }]);
    await m.allow({ sealed: { 'web-1': { recipient: (await newIdentity()).recipient } } });
    const own = await m.ci(['renew', '--scope', 'us-east-1', '--shard', '--force'], {
      TRELLIS_CI_IDENTITY_FILE: ids['us-east-1']!.file,
    });
    expect(own.code, own.stderr).toBe(0);
    expect(own.stdout).toMatch(/minted 1 leaf/);
    const global = await m.ci(['renew', '--scope', 'global', '--shard', '--force']);
    expect(global.code, global.stderr).toBe(0);

    const snap = snapshotStore(m.dir);
    const cases: [string, string, RegExp][] = [
      [
        ids['eu-west-1']!.file,
        'us-east-1',
        new RegExp(
          /scope eu-west-1's own CI recipient \(recipients\.ciScopes\.eu-west-1\)\) also opens the /.source +
            /intermediate key of eu-west-1/.source,
        ),
      ],
      [
        m.ciIdentityFile,
        'us-east-1',
        /the shared CI recipient \(recipients\.ci\)\) also opens the intermediate key of global/,
      ],
      [
        both(w, 'us-east-1', 'eu-west-1'),
        'us-east-1',
        /also opens the intermediate key of eu-west-1, which this run was not asked to work on \(us-east-1\)/,
      ],
      [ids['us-east-1']!.file, 'global', /also opens the intermediate key of us-east-1/],
    ];
    for (const [file, scope, msg] of cases) {
      const r = await m.ci(['renew', '--scope', scope, '--shard', '--force'], { TRELLIS_CI_IDENTITY_FILE: file });
      expectRefused(r, 'custody-identity-too-broad');
      expect(r.stderr, `${scope} with ${path.basename(file)}: names the identity and the scope`).toMatch(msg);
      expect(r.stderr).not.toMatch(/AGE-SECRET-KEY/);
      expect(snap.now()).toEqual(snap.before);
    }
    // The identity given through TRELLIS_CI_IDENTITY (as the action passes it) is held to the same rule.
    const direct = await m.ci(['renew', '--scope', 'us-east-1', '--shard', '--force'], {
      TRELLIS_CI_IDENTITY_FILE: '',
      TRELLIS_CI_IDENTITY: idLines(ids['eu-west-1']!.file)[0],
    });
    expectRefused(direct, 'custody-identity-too-broad');
    // revoke and deploy of a scope: the same refusal.
    const revoke = await m.ci(['revoke', 'us-east-1/api'], { TRELLIS_CI_IDENTITY_FILE: ids['eu-west-1']!.file });
    expectRefused(revoke, 'custody-identity-too-broad');
    expect(revoke.stderr, 'names the scope').toMatch(/intermediate key of eu-west-1/);
    const deploy = await m.ci(['deploy', '--scope', 'us-east-1'], {
      TRELLIS_CI_IDENTITY_FILE: both(w, 'us-east-1', 'eu-west-1'),
    });
    expectRefused(deploy, 'custody-identity-too-broad');
    expect(deploy.stderr, 'names the scope').toMatch(/intermediate key of eu-west-1/);
    // The reason, as the contract names it (docs/decisions.md).
    const e = await assertIdentityScoped(loadMesh(new Store(m.dir)), idLines(ids['eu-west-1']!.file), [
      'us-east-1',
    ]).catch((x: unknown) => x as TrellisError);
    expect([e?.reason, e?.exitCode]).toEqual(['custody-identity-too-broad', 3]);
    await expect(
      assertIdentityScoped(loadMesh(new Store(m.dir)), idLines(ids['us-east-1']!.file), ['us-east-1']),
    ).resolves.toBeUndefined();
    expect(snap.now()).toEqual(snap.before);
    // An unsharded run works on every scope: it may hold every identity.
    const all = path.join(path.dirname(m.dir), 'ci-all.identity');
    fs.writeFileSync(
      all,
      fs.readFileSync(m.ciIdentityFile, 'utf8') + fs.readFileSync(both(w, 'us-east-1', 'eu-west-1'), 'utf8'),
    );
    const whole = await m.ci(['renew', '--force'], { TRELLIS_CI_IDENTITY_FILE: all });
    expect(whole.code, whole.stderr).toBe(0);
    const rv = await m.ci(['revoke', 'us-east-1/api'], { TRELLIS_CI_IDENTITY_FILE: ids['us-east-1']!.file });
    expect(rv.code, rv.stderr).toBe(0);
    const sealed = await m.ci(['deploy', '--scope', 'us-east-1', '--type', 'sealed'], {
      TRELLIS_CI_IDENTITY_FILE: ids['us-east-1']!.file,
    });
    expect(sealed.code, sealed.stderr).toBe(0);
  });

  it("ceremonies encrypt a scope's new keys to its own recipient: a rotation's next key and a new scope's first (age CLI)", async () => {
    const w = await rekeyed();
    const { m, ids } = w;
    const rot = await m.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '1h']);
    expect(rot.code, rot.stderr).toBe(0);
    const next = m.path('bundles/us-east-1/intermediate.next.key.age');
    expect(await ageOpens(ids['us-east-1']!.file, next)).toBe(true);
    expect(await ageOpens(m.ciIdentityFile, next)).toBe(false);
    // A new region with its own recipient from the start: confirmed with the ceremony that mints it.
    const ap = await newIdentity();
    const apFile = path.join(path.dirname(m.dir), 'ci-ap.identity');
    fs.writeFileSync(apFile, `${ap.identity}\n`);
    m.writeScope('ap-south-1', ['api']);
    const cfg = parse(m.read('trellis.yaml')) as { recipients: { ciScopes: Record<string, string> } };
    setCiScopes(m, { ...cfg.recipients.ciScopes, 'ap-south-1': ap.recipient });
    const refused = await m.root(['intermediate', 'ap-south-1']);
    expectRefused(refused, 'custody-recipients');
    const dry = await m.root(['confirm', '--confirm-recipients', '--dry-run']);
    expect(dry.stdout).toMatch(
      new RegExp(
        /would confirm \(with --confirm-recipients\) 1 CI recipient change\(s\):\n {2}/.source +
          /recipients\.ciScopes\.ap-south-1 age1\S+ \(confirmed: none, the shared one\)/.source,
      ),
    );
    expect((await m.root(['confirm', '--confirm-recipients'])).code).toBe(0);
    // ap-south-1's identity provisioned before its ceremony opens nothing yet: beside us-east-1's it is not too broad,
    // until the key exists.
    const pair = path.join(path.dirname(m.dir), 'ci-us+ap.identity');
    fs.writeFileSync(pair, `${idLines(ids['us-east-1']!.file)[0]}\n${ap.identity}\n`);
    const early = await m.ci(['renew', '--scope', 'us-east-1', '--shard', '--force'], {
      TRELLIS_CI_IDENTITY_FILE: pair,
    });
    expect(early.code, early.stderr).toBe(0);
    const mint = await m.root(['intermediate', 'ap-south-1']);
    expect(mint.code, mint.stderr).toBe(0);
    const late = await m.ci(['renew', '--scope', 'us-east-1', '--shard', '--force'], {
      TRELLIS_CI_IDENTITY_FILE: pair,
    });
    expectRefused(late, 'custody-identity-too-broad');
    expect(late.stderr, 'names the scope').toMatch(/intermediate key of ap-south-1/);
    const key = m.path('bundles/ap-south-1/intermediate.key.age');
    expect(await ageOpens(apFile, key)).toBe(true);
    expect(await ageOpens(m.ciIdentityFile, key)).toBe(false);
    const renew = await m.ci(['renew', '--scope', 'ap-south-1', '--shard'], { TRELLIS_CI_IDENTITY_FILE: apFile });
    expect(renew.code, renew.stderr).toBe(0);
    expect(renew.stdout).toMatch(/mint ap-south-1\/api/);
  });

  it("activate-standby re-encrypts the activated key to the scope's own recipient (age CLI)", async () => {
    const w = await rekeyed();
    const { m, ids } = w;
    const bg = path.join(path.dirname(m.dir), 'breakglass.identity');
    expect((await tool('age-keygen', ['-o', bg])).code).toBe(0);
    const cfg = parse(m.read('trellis.yaml')) as { recipients: Record<string, unknown> };
    cfg.recipients.breakglass = (await tool('age-keygen', ['-y', bg])).stdout.trim();
    m.write('trellis.yaml', stringify(cfg));
    const sb = await m.root(['intermediate', 'us-east-1', '--standby', '--confirm-recipients']);
    expect(sb.code, sb.stderr).toBe(0);
    const a = await trellisCi(['--store', m.dir, 'activate-standby', 'us-east-1'], {
      env: { TRELLIS_BREAKGLASS_IDENTITY_FILE: bg },
    });
    expect(a.code, a.stderr).toBe(0);
    const key = m.path('bundles/us-east-1/intermediate.key.age');
    expect(await ageOpens(ids['us-east-1']!.file, key)).toBe(true);
    expect(await ageOpens(m.ciIdentityFile, key)).toBe(false);
    const renew = await m.ci(['renew', '--scope', 'us-east-1', '--shard'], {
      TRELLIS_CI_IDENTITY_FILE: ids['us-east-1']!.file,
    });
    expect(renew.code, renew.stderr).toBe(0);
  });

  it('verify: with a scope identity it proves that scope and reports nothing out of its reach; a key on the wrong recipient (either way) and a kind mismatch are errors', async () => {
    const w = await rekeyed();
    const { m, ids } = w;
    const own = await m.ci(['verify'], { TRELLIS_CI_IDENTITY_FILE: ids['us-east-1']!.file });
    expect(own.code, own.stdout).toBe(0);
    expect(own.stdout).toMatch(
      /us-east-1.*intermediate key opens with the identity of scope us-east-1's own CI recipient/,
    );
    expect(own.stdout).not.toMatch(/eu-west-1.*intermediate key opens/);
    expect((await trellisCi(['--store', m.dir, 'verify'])).code).toBe(0);

    // global's key put on us-east-1's recipient: the reverse of "still on the shared one".
    const g = m.clone();
    const shared = idLines(m.ciIdentityFile);
    const opened = await tryDecrypt(shared, g.read('bundles/global/intermediate.key.age'));
    expect(opened.ok).toBe(true);
    g.write(
      'bundles/global/intermediate.key.age',
      await encryptTo([ids['us-east-1']!.recipient], (opened as { text: string }).text),
    );
    const all = path.join(path.dirname(g.dir), 'ci-all.identity');
    fs.writeFileSync(
      all,
      fs.readFileSync(m.ciIdentityFile, 'utf8') + fs.readFileSync(both(w, 'us-east-1', 'eu-west-1'), 'utf8'),
    );
    const v = await g.ci(['verify'], { TRELLIS_CI_IDENTITY_FILE: all });
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(
      new RegExp(
        /global.*encrypted to scope us-east-1's own CI recipient \(recipients\.ciScopes\.us-east-1\), but /.source +
          /global's confirmed CI recipient is the shared CI recipient/.source,
      ),
    );

    // Without any secret: a region key on a post-quantum recipient when its recipient is classic.
    g.write('bundles/eu-west-1/intermediate.key.age', await encryptTo([(await newIdentity(true)).recipient], 'x'));
    const kind = await trellisCi(['--store', g.dir, 'verify']);
    expect(kind.code).toBe(1);
    expect(kind.stdout).toMatch(
      /eu-west-1.*encrypted to a post-quantum recipient, but its CI recipient is scope eu-west-1's own CI recipient/,
    );
  });

  it('a pull request that redirects a scope after confirmation changes nothing: rekey and ceremonies refuse, trellis-ci keeps the confirmed map', async () => {
    const w = await rekeyed();
    const { m, ids } = w;
    const attacker = await newIdentity();
    setCiScopes(m, { 'us-east-1': attacker.recipient, 'eu-west-1': ids['eu-west-1']!.recipient });
    const snap = snapshotStore(m.dir);
    expectRefused(await m.ci(['rekey'], { TRELLIS_CI_IDENTITY_FILE: ids['us-east-1']!.file }), 'custody-not-confirmed');
    expectRefused(await m.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '1h']), 'custody-recipients');
    expect(snap.now()).toEqual(snap.before);
    // Dropping the map in a pull request does not let the shared identity at a region either.
    setCiScopes(m, undefined);
    const r = await m.ci(['renew', '--scope', 'us-east-1', '--shard', '--force']);
    expectRefused(r, 'custody-identity-too-broad');
    const ok = await m.ci(['renew', '--scope', 'us-east-1', '--shard', '--force'], {
      TRELLIS_CI_IDENTITY_FILE: ids['us-east-1']!.file,
    });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('a crash at write points of the rekey to per-scope identities leaves every key openable by the old or the new identity, all or none moved', async () => {
    const { m, ids } = await confirmed();
    const base = path.dirname(m.dir);
    const countFile = path.join(base, 'count.json');
    const dry = m.clone();
    expect((await dry.ci(['rekey'], { TRELLIS_FAULT: 'count', TRELLIS_FAULT_COUNT_FILE: countFile })).code).toBe(0);
    const { fsync, rename } = JSON.parse(fs.readFileSync(countFile, 'utf8')) as { fsync: number; rename: number };
    const total = fsync + rename;
    expect(total).toBeGreaterThan(2);
    let moved = 0;
    for (const n of [...new Set([1, Math.ceil(total / 2), total - 1, total])]) {
      const copy = m.clone();
      const crash = await copy.ci(['rekey'], { TRELLIS_FAULT: `point:${n}` });
      expect(crash.code, `point ${n}: ${crash.stderr}`).not.toBe(0);
      await trellisCi(['--store', copy.dir, 'status']);
      const states: string[] = [];
      for (const s of ['us-east-1', 'eu-west-1']) {
        const key = copy.path(`bundles/${s}/intermediate.key.age`);
        states.push(
          (await ageOpens(m.ciIdentityFile, key)) ? 'old' : (await ageOpens(ids[s]!.file, key)) ? 'new' : 'neither',
        );
      }
      expect(states, `point ${n}`).not.toContain('neither');
      expect(new Set(states).size, `point ${n}: ${states.join(',')}`).toBe(1);
      if (states[0] === 'new') moved++;
    }
    expect(moved).toBeGreaterThan(0);
  });
});
