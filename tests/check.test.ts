/**
 * `check` on both CLIs: every Nagios code reached by a real store state (time
 * moved with --now), the summary line first, thresholds per tier and their
 * flags, and `status` keeping the contract's codes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { trellisCi } from './helpers/cli.js';
import { RUN_HOUR } from './helpers/clock.js';
import { DAY, HOUR, at } from './helpers/drill.js';

const T0 = RUN_HOUR;
const later = (ms: number) => at(new Date(T0.getTime() + ms));
const SUMMARY = /^TRELLIS (OK|WARNING|CRITICAL|UNKNOWN) - [^\n]+$/;

/** A mesh made with the real CLIs at T0, after editing trellis.yaml's defaults before the first ceremony. */
async function meshWith(
  scopes: Record<string, Parameters<FakeMesh['writeScope']>[1]>,
  defaults: Record<string, unknown> = {},
): Promise<FakeMesh> {
  const m = await FakeMesh.create({
    scopes,
    now: at(T0),
    intermediates: false,
    defaults: defaults as Record<string, Record<string, string>>,
  });
  for (const step of [
    () => m.root(['intermediate', '--pending', '--now', at(T0), '--now-ahead']),
    () => m.ci(['renew', '--now', at(T0), '--now-ahead']),
  ]) {
    const r = await step();
    if (r.code !== 0) throw new Error(r.stderr);
  }
  return m;
}

/** check without any identity: it needs none. */
const check = (m: FakeMesh | string, args: string[]) =>
  trellisCi(['check', '--store', typeof m === 'string' ? m : m.dir, ...args]);
const lines = (out: string) => out.split('\n');

let day: FakeMesh; // leaves of 24h, CRLs of 72h
beforeAll(async () => {
  day = await meshWith({ global: [{ control: { ttl: '24h' } }], 'us-east-1': [{ api: { ttl: '24h' } }] });
});

describe('serials are printed one way: as `openssl x509 -serial` prints them', () => {
  it("check, metrics, status --json and explain print the leaf's serial exactly as OpenSSL does", async () => {
    const { tool } = await import('./helpers/cli.js');
    const openssl = (
      await tool('openssl', ['x509', '-noout', '-serial', '-in', day.out('us-east-1', 'api', 'cert.pem')])
    ).stdout
      .trim()
      .split('=')[1]!;
    expect(openssl).toMatch(/^[0-9A-F]+$/);
    const now = ['--now', later(HOUR), '--now-ahead'];
    const checked = await check(day, now);
    expect(checked.stdout).toMatch(new RegExp(`^OK +certificate us-east-1/api +leaf serial ${openssl} `, 'm'));
    const prom = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-serial-')), 'trellis.prom');
    expect((await check(day, [...now, '--metrics', prom])).code).toBe(0);
    expect(fs.readFileSync(prom, 'utf8')).toContain(`service="api",role="current",serial="${openssl}"`);
    const status = await trellisCi(['status', '--store', day.dir, '--json', ...now]);
    const leaf = (
      JSON.parse(status.stdout) as { scopes: { scope: string; leaves: { service: string; serial: string }[] }[] }
    ).scopes
      .find((s) => s.scope === 'us-east-1')!
      .leaves.find((l) => l.service === 'api')!;
    expect(leaf.serial).toBe(openssl);
    const explained = await trellisCi(['explain', 'us-east-1/api', 'global/control', '--store', day.dir, ...now]);
    expect(explained.stdout).toContain(`leaf ${openssl} `);
    // The stored form is unchanged (lower-case): only what is printed changed.
    expect(day.read('bundles/us-east-1/leaves.yaml')).toContain(openssl.toLowerCase());
  });
});

describe('exit codes from real store states', () => {
  it('0: a fresh mesh is OK, on both CLIs, and the first line is the summary', async () => {
    for (const r of [
      await check(day, ['--now', later(HOUR), '--now-ahead']),
      await day.root(['check', '--now', later(HOUR), '--now-ahead'], { TRELLIS_ROOT_IDENTITY_FILE: undefined }),
    ]) {
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(lines(r.stdout)[0]).toMatch(SUMMARY);
      expect(lines(r.stdout)[0]).toMatch(
        /^TRELLIS OK - 5 certificates, 5 CRLs, 2 scopes in service \| critical=0 warning=0 certificates=5 /,
      );
      // Details follow: every certificate and CRL has its line.
      expect(r.stdout).toMatch(/^OK +certificate root +root serial/m);
      expect(r.stdout).toMatch(/^OK +certificate us-east-1\/api +leaf serial/m);
      expect(r.stdout.match(/^OK +crl /gm)).toHaveLength(5);
    }
  });

  it('1: a leaf past its renewal point (⅓ of 24h left) is a WARNING naming it; trellis-root says the same', async () => {
    const r = await check(day, ['--now', later(17 * HOUR), '--now-ahead']);
    expect(r.code, r.stdout).toBe(1);
    expect(lines(r.stdout)[0]).toMatch(
      new RegExp(
        '^TRELLIS WARNING - 0 critical, 2 warning: ' +
          String.raw`global\/control: leaf serial \w+ expires ${later(DAY)} \(in 7h\)`,
      ),
    );
    expect(r.stdout).toMatch(
      /^WARNING +certificate us-east-1\/api +leaf .*past its renewal point: trellis-ci renew has not re-minted it/m,
    );
    const root = await day.root(['check', '--now', later(17 * HOUR), '--now-ahead'], {
      TRELLIS_ROOT_IDENTITY_FILE: undefined,
    });
    expect(root.code).toBe(1);
    expect(lines(root.stdout)[0]).toBe(lines(r.stdout)[0]);
  });

  it('2: a leaf under a sixth of its life (4h of 24h) is CRITICAL; an expired one too', async () => {
    const soon = await check(day, ['--now', later(21 * HOUR), '--now-ahead']);
    expect(soon.code, soon.stdout).toBe(2);
    expect(lines(soon.stdout)[0]).toMatch(/^TRELLIS CRITICAL - 2 critical, 0 warning: /);
    expect(soon.stdout).toMatch(/^CRITICAL certificate global\/control +leaf .*\(in 3h\): critical under 4h/m);
    const gone = await check(day, ['--now', later(25 * HOUR), '--now-ahead']);
    expect(gone.code).toBe(2);
    expect(gone.stdout).toMatch(
      new RegExp(
        String.raw`^CRITICAL certificate us-east-1\/api +leaf serial \w+ expired ${later(DAY)} \(1h ago\), renew at`,
        'm',
      ),
    );
  });

  it('--leaf-warn and --leaf-crit replace the life fractions with fixed remaining times', async () => {
    const r = await check(day, ['--now', later(17 * HOUR), '--now-ahead', '--leaf-warn', '2h', '--leaf-crit', '1h']);
    expect(r.code, r.stdout).toBe(0);
    const strict = await check(day, ['--now', later(17 * HOUR), '--now-ahead', '--leaf-crit', '8h']);
    expect(strict.code).toBe(2);
  });

  it('a pending ceremony (a declared scope without its intermediate) is a WARNING', async () => {
    const m = day.clone();
    m.writeScope('eu-west-1', ['api']);
    const r = await check(m, ['--now', later(HOUR), '--now-ahead']);
    expect(r.code, r.stdout).toBe(1);
    expect(lines(r.stdout)[0]).toMatch(
      /^TRELLIS WARNING - 0 critical, 1 warning: eu-west-1: pending its offline ceremony/,
    );
    expect(r.stdout).toMatch(/trellis-root intermediate eu-west-1/);
  });

  it('3: a missing store, a corrupt record and a bad threshold are UNKNOWN, with the summary line first', async () => {
    const missing = await check('/nonexistent/trellis-store', []);
    expect(missing.code).toBe(3);
    expect(lines(missing.stdout)[0]).toMatch(/^TRELLIS UNKNOWN - .*\/nonexistent\/trellis-store/);

    const m = day.clone();
    m.write('bundles/us-east-1/leaves.yaml', 'api: [not, a, record]\n');
    const corrupt = await check(m, ['--now', later(HOUR), '--now-ahead']);
    expect(corrupt.code).toBe(3);
    expect(lines(corrupt.stdout)[0]).toMatch(/^TRELLIS UNKNOWN - .*bundles\/us-east-1\/leaves\.yaml/);

    const bad = await check(day, ['--leaf-crit', 'soon']);
    expect(bad.code).toBe(3);
    expect(lines(bad.stdout)[0]).toMatch(/^TRELLIS UNKNOWN - --leaf-crit: "soon" is not a duration/);
  });

  it('status keeps the contract codes: 0 on a state check calls CRITICAL', async () => {
    const r = await day.ci(['status', '--now', later(25 * HOUR), '--now-ahead']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/expired/);
  });
});

describe('intermediates, by remaining time (warn 90d, crit 30d)', () => {
  // 20 days before the intermediates end: the root CRL and the leaves are made fresh, so only the intermediates speak.
  const end = new Date(T0.getTime() + 3 * 365 * DAY);
  const tx = at(new Date(end.getTime() - 20 * DAY));
  let m: FakeMesh;
  beforeAll(async () => {
    m = day.clone();
    for (const r of [
      await m.root(['crl', '--now', tx, '--now-ahead']),
      await m.ci(['renew', '--now', tx, '--now-ahead']),
    ])
      expect(r.code, r.stderr).toBe(0);
  });

  it('2: an intermediate within the critical window; the summary counts both scopes', async () => {
    const r = await check(m, ['--now', tx, '--now-ahead']);
    expect(r.code, r.stdout).toBe(2);
    expect(lines(r.stdout)[0]).toMatch(
      new RegExp(
        '^TRELLIS CRITICAL - 2 critical, 0 warning: ' +
          String.raw`global: active intermediate serial \w+ expires ${at(end)} \(in 20d\)`,
      ),
    );
    expect(lines(r.stdout)[0]).toMatch(/ \| critical=2 warning=0 .* intermediate_left=1728000s;7776000;2592000 /);
    expect(r.stdout).toMatch(
      new RegExp(
        /^CRITICAL certificate us-east-1 +active intermediate .*critical under 30d; rotate it: /.source +
          /trellis-root rotate intermediate us-east-1/.source,
        'm',
      ),
    );
  });

  it('the flags move the windows: --intermediate-crit 10d makes it a WARNING, a narrower warn window OK', async () => {
    expect((await check(m, ['--now', tx, '--now-ahead', '--intermediate-crit', '10d'])).code).toBe(1);
    expect(
      (await check(m, ['--now', tx, '--now-ahead', '--intermediate-warn', '15d', '--intermediate-crit', '10d'])).code,
    ).toBe(0);
  });
});

describe('CRLs by nextUpdate', () => {
  let m: FakeMesh; // leaf CRLs of 6h, leaves of 7d
  beforeAll(async () => {
    m = await meshWith({ global: ['control'], 'us-east-1': ['api'] }, { crl: { leaf: '6h' } });
  });

  it('a scope CRL past half its life (renew re-signs there) is a WARNING, a stale one CRITICAL, and renew clears both', async () => {
    const half = await check(m, ['--now', later(4 * HOUR), '--now-ahead']);
    expect(half.code, half.stdout).toBe(1);
    expect(half.stdout).toMatch(
      new RegExp(
        String.raw`^WARNING +crl +us-east-1 +leaf CRL of .* next update ${later(6 * HOUR)} \(in 2h\): ` +
          'warning under 3h; trellis-ci renew re-signs it',
        'm',
      ),
    );
    const stale = await check(m, ['--now', later(7 * HOUR), '--now-ahead']);
    expect(stale.code).toBe(2);
    expect(lines(stale.stdout)[0]).toMatch(/^TRELLIS CRITICAL - 4 critical, 0 warning: /);
    expect(stale.stdout).toMatch(
      new RegExp(
        /^CRITICAL crl +global +anchor CRL of .*\(1h ago\): stale, verifiers that check CRLs refuse every /.source +
          /chain through it/.source,
        'm',
      ),
    );
    const fresh = m.clone();
    expect((await fresh.ci(['renew', '--now', later(7 * HOUR), '--now-ahead'])).code).toBe(0);
    expect((await check(fresh, ['--now', later(7 * HOUR), '--now-ahead'])).code).toBe(0);
  });

  it('the root CRL: a WARNING 30 days before its nextUpdate (180d); --root-crl-warn and --root-crl-crit move it', async () => {
    const soon = m.clone();
    // Leaves and scope CRLs fresh at that instant: only the root CRL is judged.
    const t = later(160 * DAY);
    expect((await soon.ci(['renew', '--now', t, '--now-ahead'])).code).toBe(0);
    const r = await check(soon, ['--now', t, '--now-ahead']);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toMatch(
      /^WARNING +crl +root +root CRL of .*\(in 20d\): warning under 30d; the custodian runs trellis-root crl/m,
    );
    expect((await check(soon, ['--now', t, '--now-ahead', '--root-crl-warn', '10d'])).code).toBe(0);
    expect((await check(soon, ['--now', t, '--now-ahead', '--root-crl-crit', '25d'])).code).toBe(2);
  });

  describe('rotation gates', () => {
    let r: FakeMesh;
    beforeAll(async () => {
      r = m.clone();
      const x = await r.root(['rotate', 'intermediate', 'us-east-1', '--now', later(HOUR), '--now-ahead']);
      expect(x.code, x.stderr).toBe(0);
    });

    it('an open gate renew has not advanced for over a day is overdue (WARNING); before that it is reported OK', async () => {
      const state = parse(r.read('bundles/us-east-1/state.yaml'));
      expect(state.phase).toBe('publish');
      const ontime = await check(r, ['--now', later(30 * HOUR), '--now-ahead']);
      expect(ontime.stdout).toMatch(
        new RegExp(`^OK +gate +us-east-1 +phase publish: its switch gate opened ${state.rotation.switchAt}`, 'm'),
      );
      const overdue = await check(r, ['--now', later(50 * HOUR), '--now-ahead']);
      expect(overdue.code).toBeGreaterThanOrEqual(1);
      expect(overdue.stdout).toMatch(
        new RegExp(
          /^WARNING +gate +us-east-1 +phase publish: its switch gate opened .* overdue by more than 1d: /.source +
            /trellis-ci renew has not advanced it/.source,
          'm',
        ),
      );
      expect((await check(r, ['--now', later(50 * HOUR), '--now-ahead', '--gate-overdue', '2d'])).stdout).toMatch(
        /^OK +gate +us-east-1/m,
      );
    });

    it('after the switch the previous intermediate is listed, not judged; the new one is', async () => {
      const sw = r.clone();
      expect((await sw.ci(['renew', '--now', later(26 * HOUR), '--now-ahead'])).code).toBe(0);
      const x = await check(sw, ['--now', later(26 * HOUR), '--now-ahead', '--intermediate-warn', '4y']);
      expect(x.stdout).toMatch(
        /^OK +certificate us-east-1 +previous intermediate .*\(being retired: not judged, its leaves are re-minted\)/m,
      );
      expect(x.stdout).toMatch(/^WARNING +certificate us-east-1 +active intermediate/m);
      expect(x.stdout).toMatch(/^OK +gate +us-east-1 +phase switch: its retire gate opens/m);
    });

    it('during publish the active intermediate is not judged alone: the incoming one is', async () => {
      const x = await check(r, ['--now', later(2 * HOUR), '--now-ahead', '--intermediate-warn', '4y']);
      expect(x.stdout).toMatch(/^WARNING +certificate us-east-1 +next intermediate/m);
      expect(x.stdout).toMatch(/^OK +certificate us-east-1 +active intermediate/m);
      expect(x.stdout).toMatch(/^WARNING +certificate global +active intermediate/m);
    });
  });
});

describe('the output is for a pager', () => {
  it('only the first line carries the verdict; no identity appears', async () => {
    const r = await day.ci(['check', '--now', later(HOUR), '--now-ahead']);
    expect(lines(r.stdout).filter((l) => /^TRELLIS /.test(l))).toHaveLength(1);
    const identity = fs.readFileSync(day.ciIdentityFile, 'utf8').trim();
    expect(r.stdout + r.stderr).not.toContain(identity.split('\n').pop()!.slice(0, 30));
  });
});
