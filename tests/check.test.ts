/**
 * `check` on both CLIs: every Nagios code reached by a real store state (time
 * moved with --now), the summary line first, thresholds per tier and their
 * flags, and `status` keeping the contract's codes. The states and thresholds
 * are judged in-process (MemoryMesh: meshHealth and renderHealth, what the
 * command prints; each flag through the command's own handler); the codes, the
 * UNKNOWN line, both CLIs and the pager's view through the real CLIs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_THRESHOLDS,
  NAGIOS,
  meshHealth,
  renderHealth,
  type Thresholds,
} from '../packages/core/src/report/health.js';
import { checkCommand } from '../packages/core/src/shell/check-command.js';
import { MemoryMesh, type DiskMesh } from './helpers/memory-mesh.js';
import { trellisCi } from './helpers/cli.js';
import { RUN_HOUR } from './helpers/clock.js';
import { DAY, HOUR, at } from './helpers/drill.js';

const T0 = RUN_HOUR;
const later = (ms: number) => at(new Date(T0.getTime() + ms));
const SUMMARY = /^TRELLIS (OK|WARNING|CRITICAL|UNKNOWN) - [^\n]+$/;

/**
 * A mesh made at T0 (the first store by the real CLIs), after editing trellis.yaml's defaults before the first
 * ceremony.
 */
const meshWith = (scopes: Record<string, (string | Record<string, { ttl?: string }>)[]>, defaults = {}) =>
  MemoryMesh.create({ scopes, now: at(T0), defaults });

/** check without any identity, through the real CLI: it needs none. */
const checkCli = (m: DiskMesh | string, args: string[]) =>
  trellisCi(['check', '--store', typeof m === 'string' ? m : m.dir, ...args]);

/** What check prints and its Nagios code (shell/check-command.ts), in-process: the rule, with these thresholds. */
async function check(
  m: MemoryMesh,
  now: string,
  t: Partial<Thresholds> = {},
): Promise<{ code: number; stdout: string }> {
  const th = { ...DEFAULT_THRESHOLDS, ...t };
  const h = await meshHealth(m.mesh(), new Date(now), th);
  return { code: NAGIOS[h.level], stdout: renderHealth(h, th) };
}

/** check's own handler in-process, on a copy on disk: the flags as the command parses them. */
async function checkHandler(m: MemoryMesh, now: string, flags: Record<string, string>) {
  const d = m.onDisk();
  let stdout = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => {
    stdout += String(c);
    return true;
  });
  const saved = process.exitCode;
  process.exitCode = 0;
  try {
    await checkCommand.handler({ store: d.dir, now, nowAhead: true, ...flags });
    return { code: Number(process.exitCode ?? 0), stdout };
  } finally {
    spy.mockRestore();
    process.exitCode = saved;
  }
}

/** A flag gives the thresholds it names: the handler with it prints what the rule prints with them. */
async function flagged(m: MemoryMesh, now: string, flags: Record<string, string>, t: Partial<Thresholds>) {
  const viaFlags = await checkHandler(m, now, flags);
  const rule = await check(m, now, t);
  expect(viaFlags).toEqual(rule);
  return rule;
}
const lines = (out: string) => out.split('\n');

let day: MemoryMesh; // leaves of 24h, CRLs of 72h
let dayDisk: DiskMesh; // the same, on disk for the real CLIs
beforeAll(async () => {
  day = await meshWith({ global: [{ control: { ttl: '24h' } }], 'us-east-1': [{ api: { ttl: '24h' } }] });
  dayDisk = day.onDisk();
}, 120_000);

describe('serials are printed one way: as `openssl x509 -serial` prints them', () => {
  it("check, metrics, status --json and explain print the leaf's serial exactly as OpenSSL does", async () => {
    const { tool } = await import('./helpers/cli.js');
    const certFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-serial-')), 'cert.pem');
    fs.writeFileSync(certFile, day.firstOut.get('us-east-1/api/cert.pem')!);
    const openssl = (await tool('openssl', ['x509', '-noout', '-serial', '-in', certFile])).stdout
      .trim()
      .split('=')[1]!;
    expect(openssl).toMatch(/^[0-9A-F]+$/);
    const now = ['--now', later(HOUR), '--now-ahead'];
    const checked = await checkCli(dayDisk, now);
    expect(checked.stdout).toMatch(new RegExp(`^OK +certificate us-east-1/api +leaf serial ${openssl} `, 'm'));
    const prom = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-serial-')), 'trellis.prom');
    expect((await checkCli(dayDisk, [...now, '--metrics', prom])).code).toBe(0);
    expect(fs.readFileSync(prom, 'utf8')).toContain(`service="api",role="current",serial="${openssl}"`);
    const status = await trellisCi(['status', '--store', dayDisk.dir, '--json', ...now]);
    const leaf = (
      JSON.parse(status.stdout) as { scopes: { scope: string; leaves: { service: string; serial: string }[] }[] }
    ).scopes
      .find((s) => s.scope === 'us-east-1')!
      .leaves.find((l) => l.service === 'api')!;
    expect(leaf.serial).toBe(openssl);
    const explained = await trellisCi(['explain', 'us-east-1/api', 'global/control', '--store', dayDisk.dir, ...now]);
    expect(explained.stdout).toContain(`leaf ${openssl} `);
    // The stored form is unchanged (lower-case): only what is printed changed.
    expect(day.read('bundles/us-east-1/leaves.yaml')).toContain(openssl.toLowerCase());
  });
});

describe('exit codes through the real CLIs', () => {
  it('0: a fresh mesh is OK, on both CLIs, and the first line is the summary', async () => {
    for (const r of [
      await checkCli(dayDisk, ['--now', later(HOUR), '--now-ahead']),
      await dayDisk.root(['check', '--now', later(HOUR), '--now-ahead'], { TRELLIS_ROOT_IDENTITY_FILE: undefined }),
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

  it('1 and 2: a leaf past its renewal point, then under a sixth of its life; trellis-root says the same as the rule', async () => {
    for (const [h, code] of [
      [17, 1],
      [21, 2],
    ] as const) {
      const now = later(h * HOUR);
      const r = await checkCli(dayDisk, ['--now', now, '--now-ahead']);
      expect(r.code, r.stdout).toBe(code);
      // execa drops the final newline.
      expect(r.stdout).toBe((await check(day, now)).stdout.trimEnd());
      const root = await dayDisk.root(['check', '--now', now, '--now-ahead'], {
        TRELLIS_ROOT_IDENTITY_FILE: undefined,
      });
      expect(root.code).toBe(code);
      expect(lines(root.stdout)[0]).toBe(lines(r.stdout)[0]);
    }
  });

  it('--leaf-warn and --leaf-crit replace the life fractions with fixed remaining times', async () => {
    const r = await checkCli(dayDisk, [
      '--now',
      later(17 * HOUR),
      '--now-ahead',
      '--leaf-warn',
      '2h',
      '--leaf-crit',
      '1h',
    ]);
    expect(r.code, r.stdout).toBe(0);
    const strict = await checkCli(dayDisk, ['--now', later(17 * HOUR), '--now-ahead', '--leaf-crit', '8h']);
    expect(strict.code).toBe(2);
  });

  it('3: a missing store, a corrupt record and a bad threshold are UNKNOWN, with the summary line first', async () => {
    const missing = await checkCli('/nonexistent/trellis-store', []);
    expect(missing.code).toBe(3);
    expect(lines(missing.stdout)[0]).toMatch(/^TRELLIS UNKNOWN - .*\/nonexistent\/trellis-store/);

    const m = day.onDisk();
    m.write('bundles/us-east-1/leaves.yaml', 'api: [not, a, record]\n');
    const corrupt = await checkCli(m, ['--now', later(HOUR), '--now-ahead']);
    expect(corrupt.code).toBe(3);
    expect(lines(corrupt.stdout)[0]).toMatch(/^TRELLIS UNKNOWN - .*bundles\/us-east-1\/leaves\.yaml/);

    const bad = await checkCli(dayDisk, ['--leaf-crit', 'soon']);
    expect(bad.code).toBe(3);
    expect(lines(bad.stdout)[0]).toMatch(/^TRELLIS UNKNOWN - --leaf-crit: "soon" is not a duration/);
  });

  it('status keeps the contract codes: 0 on a state check calls CRITICAL', async () => {
    const r = await dayDisk.ci(['status', '--now', later(25 * HOUR), '--now-ahead']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/expired/);
  });
});

describe('leaves by remaining life', () => {
  it('1: a leaf past its renewal point (⅓ of 24h left) is a WARNING naming it', async () => {
    const r = await check(day, later(17 * HOUR));
    expect(r.code, r.stdout).toBe(1);
    expect(lines(r.stdout)[0]).toMatch(
      new RegExp(
        '^TRELLIS WARNING - 0 critical, 2 warning: ' +
          String.raw`global\/control: leaf serial \w+ expires ${later(DAY)} \(in 7h\)`,
      ),
    );
    expect(lines(r.stdout)[0]).toMatch(SUMMARY);
    expect(r.stdout).toMatch(
      /^WARNING +certificate us-east-1\/api +leaf .*past its renewal point: trellis-ci renew has not re-minted it/m,
    );
  });

  it('2: a leaf under a sixth of its life (4h of 24h) is CRITICAL; an expired one too', async () => {
    const soon = await check(day, later(21 * HOUR));
    expect(soon.code, soon.stdout).toBe(2);
    expect(lines(soon.stdout)[0]).toMatch(/^TRELLIS CRITICAL - 2 critical, 0 warning: /);
    expect(soon.stdout).toMatch(/^CRITICAL certificate global\/control +leaf .*\(in 3h\): critical under 4h/m);
    const gone = await check(day, later(25 * HOUR));
    expect(gone.code).toBe(2);
    expect(gone.stdout).toMatch(
      new RegExp(
        String.raw`^CRITICAL certificate us-east-1\/api +leaf serial \w+ expired ${later(DAY)} \(1h ago\), renew at`,
        'm',
      ),
    );
  });

  it('--leaf-warn and --leaf-crit set the leaf window', async () => {
    const t = later(17 * HOUR);
    expect(
      (await flagged(day, t, { leafWarn: '2h', leafCrit: '1h' }, { leaf: { warn: 2 * HOUR, crit: HOUR } })).code,
    ).toBe(0);
    expect((await flagged(day, t, { leafCrit: '8h' }, { leaf: { crit: 8 * HOUR } })).code).toBe(2);
  });

  it('a pending ceremony (a declared scope without its intermediate) is a WARNING', async () => {
    const m = day.clone();
    m.write('scopes/eu-west-1.yaml', 'kind: region\nservices:\n  api: {}\n');
    const r = await check(m, later(HOUR));
    expect(r.code, r.stdout).toBe(1);
    expect(lines(r.stdout)[0]).toMatch(
      /^TRELLIS WARNING - 0 critical, 1 warning: eu-west-1: pending its offline ceremony/,
    );
    expect(r.stdout).toMatch(/trellis-root intermediate eu-west-1/);
  });
});

describe('intermediates, by remaining time (warn 90d, crit 30d)', () => {
  // 20 days before the intermediates end: the root CRL and the leaves are made fresh, so only the intermediates speak.
  const end = new Date(T0.getTime() + 3 * 365 * DAY);
  const tx = at(new Date(end.getTime() - 20 * DAY));
  let m: MemoryMesh;
  beforeAll(async () => {
    m = day.clone();
    await m.crl(new Date(tx));
    await m.renew(new Date(tx));
  });

  it('2: an intermediate within the critical window; the summary counts both scopes', async () => {
    const r = await check(m, tx);
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
    const w = DEFAULT_THRESHOLDS.intermediate;
    expect((await flagged(m, tx, { intermediateCrit: '10d' }, { intermediate: { ...w, crit: 10 * DAY } })).code).toBe(
      1,
    );
    expect(
      (
        await flagged(
          m,
          tx,
          { intermediateWarn: '15d', intermediateCrit: '10d' },
          { intermediate: { warn: 15 * DAY, crit: 10 * DAY } },
        )
      ).code,
    ).toBe(0);
  });
});

describe('CRLs by nextUpdate', () => {
  let m: MemoryMesh; // leaf CRLs of 6h, leaves of 7d
  beforeAll(async () => {
    m = await meshWith({ global: ['control'], 'us-east-1': ['api'] }, { crl: { leaf: '6h' } });
  }, 120_000);

  it('a scope CRL past half its life (renew re-signs there) is a WARNING, a stale one CRITICAL, and renew clears both', async () => {
    const half = await check(m, later(4 * HOUR));
    expect(half.code, half.stdout).toBe(1);
    expect(half.stdout).toMatch(
      new RegExp(
        String.raw`^WARNING +crl +us-east-1 +leaf CRL of .* next update ${later(6 * HOUR)} \(in 2h\): ` +
          'warning under 3h; trellis-ci renew re-signs it',
        'm',
      ),
    );
    const stale = await check(m, later(7 * HOUR));
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
    await fresh.renew(new Date(later(7 * HOUR)));
    expect((await check(fresh, later(7 * HOUR))).code).toBe(0);
  });

  it('--crl-warn and --crl-crit set the scope CRL window', async () => {
    const t = later(4 * HOUR);
    expect((await flagged(m, t, { crlWarn: '1h' }, { crl: { warn: HOUR } })).code).toBe(0);
    expect((await flagged(m, t, { crlCrit: '3h' }, { crl: { crit: 3 * HOUR } })).code).toBe(2);
  });

  it('the root CRL: a WARNING 30 days before its nextUpdate (180d); --root-crl-warn and --root-crl-crit move it', async () => {
    const soon = m.clone();
    // Leaves and scope CRLs fresh at that instant: only the root CRL is judged.
    const t = later(160 * DAY);
    await soon.renew(new Date(t));
    const r = await check(soon, t);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toMatch(
      /^WARNING +crl +root +root CRL of .*\(in 20d\): warning under 30d; the custodian runs trellis-root crl/m,
    );
    const w = DEFAULT_THRESHOLDS.rootCrl;
    expect((await flagged(soon, t, { rootCrlWarn: '10d' }, { rootCrl: { ...w, warn: 10 * DAY } })).code).toBe(0);
    expect((await flagged(soon, t, { rootCrlCrit: '25d' }, { rootCrl: { ...w, crit: 25 * DAY } })).code).toBe(2);
  });

  describe('rotation gates', () => {
    let r: MemoryMesh;
    beforeAll(async () => {
      r = m.clone();
      await r.rotate('us-east-1', undefined, new Date(later(HOUR)));
    });

    it('an open gate renew has not advanced for over a day is overdue (WARNING); before that it is reported OK', async () => {
      const state = parse(r.read('bundles/us-east-1/state.yaml'));
      expect(state.phase).toBe('publish');
      const ontime = await check(r, later(30 * HOUR));
      expect(ontime.stdout).toMatch(
        new RegExp(`^OK +gate +us-east-1 +phase publish: its switch gate opened ${state.rotation.switchAt}`, 'm'),
      );
      const overdue = await check(r, later(50 * HOUR));
      expect(overdue.code).toBeGreaterThanOrEqual(1);
      expect(overdue.stdout).toMatch(
        new RegExp(
          /^WARNING +gate +us-east-1 +phase publish: its switch gate opened .* overdue by more than 1d: /.source +
            /trellis-ci renew has not advanced it/.source,
          'm',
        ),
      );
      expect((await flagged(r, later(50 * HOUR), { gateOverdue: '2d' }, { gateOverdue: 2 * DAY })).stdout).toMatch(
        /^OK +gate +us-east-1/m,
      );
    });

    it('after the switch the previous intermediate is listed, not judged; the new one is', async () => {
      const sw = r.clone();
      await sw.renew(new Date(later(26 * HOUR)));
      const x = await flagged(
        sw,
        later(26 * HOUR),
        { intermediateWarn: '4y' },
        { intermediate: { ...DEFAULT_THRESHOLDS.intermediate, warn: 4 * 365 * DAY } },
      );
      expect(x.stdout).toMatch(
        /^OK +certificate us-east-1 +previous intermediate .*\(being retired: not judged, its leaves are re-minted\)/m,
      );
      expect(x.stdout).toMatch(/^WARNING +certificate us-east-1 +active intermediate/m);
      expect(x.stdout).toMatch(/^OK +gate +us-east-1 +phase switch: its retire gate opens/m);
    });

    it('during publish the active intermediate is not judged alone: the incoming one is', async () => {
      const x = await check(r, later(2 * HOUR), {
        intermediate: { ...DEFAULT_THRESHOLDS.intermediate, warn: 4 * 365 * DAY },
      });
      expect(x.stdout).toMatch(/^WARNING +certificate us-east-1 +next intermediate/m);
      expect(x.stdout).toMatch(/^OK +certificate us-east-1 +active intermediate/m);
      expect(x.stdout).toMatch(/^WARNING +certificate global +active intermediate/m);
    });
  });

  it('--root-warn and --root-crit set the root window', async () => {
    const t = later(HOUR);
    const w = DEFAULT_THRESHOLDS.root;
    expect((await flagged(m, t, { rootWarn: '40y' }, { root: { ...w, warn: 40 * 365 * DAY } })).code).toBe(1);
    expect((await flagged(m, t, { rootCrit: '40y' }, { root: { ...w, crit: 40 * 365 * DAY } })).code).toBe(2);
  });
});

describe('the output is for a pager', () => {
  it('only the first line carries the verdict; no identity appears', async () => {
    const r = await dayDisk.ci(['check', '--now', later(HOUR), '--now-ahead']);
    expect(lines(r.stdout).filter((l) => /^TRELLIS /.test(l))).toHaveLength(1);
    const identity = day.ciIds.join('\n');
    expect(r.stdout + r.stderr).not.toContain(identity.split('\n').pop()!.slice(0, 30));
  });
});
