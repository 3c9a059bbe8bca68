/**
 * The benchmark runs and its table has the promised shape. Speed is not
 * judged here (that is the benchmark's own job): only that every row is
 * there and every number in it is a positive, finite measurement.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { at, buildMesh, distribute } from '../scripts/bench/mesh.js';
import { HEADER, judge, type BaselineRow, type CommandRow } from '../scripts/bench/table.js';
import { CLI_LABEL, parseArgs, UsageError } from '../scripts/bench/run.js';
import { REPO } from './helpers/cli.js';

const COMMANDS = [
  'renew, every leaf new',
  'renew, nothing due',
  'verify',
  'status',
  'plan',
  'deploy to dir targets',
  'renew, a third due',
];
const positive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

describe('pnpm bench --quick', () => {
  // 300 services (14-15 a scope) give the same rows as 1k, and a cold renew big enough for the worker pool (renew.ts
  // WORKER_MIN_LEAVES).
  it('prints one table of the release build with every baseline and every command row, each number positive and finite', async () => {
    const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-test-')), 'bench.json');
    const r = await execa(
      process.execPath,
      ['--import', 'tsx', 'scripts/bench/run.ts', '--quick', '--sizes', '300', '--json', json],
      {
        cwd: REPO,
        reject: false,
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
        extendEnv: false,
        timeout: 280_000,
      },
    );
    expect(r.stderr).not.toMatch(/failed|Error/);
    expect(r.exitCode).toBe(0);

    const lines = String(r.stdout).split('\n');
    const at = lines.findIndex((l) => l.startsWith('layout'));
    expect(lines[at - 1]).toBe(CLI_LABEL.release);
    expect(lines[at]!.split(/\s{2,}/)).toEqual(HEADER);
    expect(lines[at + 1]).toMatch(/^[- ]+$/);
    const body = lines.slice(at + 2).filter((l) => /^(baseline|mesh)\s{2,}/.test(l));
    expect(body).toHaveLength(4 + COMMANDS.length);
    const cells = body.map((l) => l.split(/\s{2,}/));
    for (const c of cells) {
      // s, leaves/s, RSS, the four ratios, the mint phase's rate and ratio, the tsc build's s: a number (with × on
      // ratios) or a dash where it does not apply.
      for (const v of c.slice(3, 13)) {
        if (v === '—') continue;
        expect(positive(Number(v.replace(/×$/, ''))), `${c[2]}: ${v}`).toBe(true);
      }
      expect(positive(Number(c[3])), `${c[2]} has seconds`).toBe(true);
      expect(positive(Number(c[5])), `${c[2]} has a peak RSS`).toBe(true);
    }
    expect(cells.filter((c) => c[0] === 'baseline').map((c) => c[2]!.replace(/, n=\d+$/, ''))).toEqual([
      'openssl req -x509 -CA, a process per leaf',
      '@peculiar/x509 naive, in-process',
      'node:crypto keygen + sign, 1 thread',
      `node:crypto keygen + sign, every core (${os.availableParallelism()} threads)`,
    ]);
    const rows = cells.filter((c) => c[0] === 'mesh');
    expect(rows.map((c) => c[2]!.replace(/ \(\d+\)$/, ''))).toEqual(COMMANDS);
    expect(rows.every((c) => c[1] === '300')).toBe(true);
    // Rates and ratios exactly where leaves are minted or delivered.
    for (const c of rows) {
      const mints = c[2]!.startsWith('renew') && c[2] !== 'renew, nothing due';
      expect(c[4] !== '—', `${c[2]} leaves/s`).toBe(mints || c[2]!.startsWith('deploy'));
      expect(
        c.slice(6, 10).every((v) => v !== '—'),
        `${c[2]} ratios`,
      ).toBe(mints);
      // The minting phase where the pool minted (300 cold; the third due, 100, mints in-process); the tsc build beside
      // the rows that change nothing.
      expect(
        c.slice(10, 12).every((v) => v !== '—'),
        `${c[2]} mint phase`,
      ).toBe(c[2] === 'renew, every leaf new');
      expect(c[12] !== '—', `${c[2]} tsc build`).toBe(
        ['renew, nothing due', 'verify', 'status', 'plan'].includes(c[2]!),
      );
    }

    const raw = JSON.parse(fs.readFileSync(json, 'utf8')) as {
      rows: (CommandRow & { rate?: number })[];
      baselines: BaselineRow[];
    };
    expect(raw.baselines).toHaveLength(8);
    for (const b of raw.baselines) expect([b.seconds, b.rssMb, b.count].every(positive), b.label).toBe(true);
    const count = (c: string) => raw.rows.find((x) => x.command === c)!.count;
    expect([count('renew-cold'), count('renew-none'), count('renew-third')]).toEqual([300, 0, 100]);
    expect(raw.rows.find((x) => x.command === 'renew-cold')!.mint).toMatchObject({ leaves: 300 });
    for (const x of raw.rows) expect([x.seconds, x.rssMb].every(positive), x.command).toBe(true);
    fs.rmSync(path.dirname(json), { recursive: true, force: true });
  }, 300_000);
});

describe('the synthetic mesh', () => {
  it('buildMesh with leaves makes a store that verifies, with every leaf minted and the allow-list confirmed', async () => {
    const now = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
    const m = await buildMesh(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-mesh-')), {
      services: 42,
      now,
      leaves: true,
      deploy: { every: 21 },
    });
    expect([m.services, m.shortTtl, m.deployTargets]).toEqual([42, 14, 2]);
    const verify = await m.ci(['verify', '--now', at(now), '--now-ahead']);
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
    expect(JSON.parse((await m.ci(['plan', '--json', '--now', at(now), '--now-ahead'])).stdout)).toMatchObject({
      mint: [],
    });
    // 49 h on, exactly the 72 h third is due.
    expect(
      JSON.parse(
        (await m.ci(['plan', '--json', '--now', at(new Date(now.getTime() + 49 * 3_600_000)), '--now-ahead'])).stdout,
      ).mint,
    ).toHaveLength(14);
    fs.rmSync(m.base, { recursive: true, force: true });
  }, 120_000);

  it.each([
    ['spreads services evenly over global and 20 regions', 'mesh', 1000, 21, [48, 47]],
    ['puts every service in one region when one scope holds them all', 'single', 1000, 21, [0, 1000]],
  ] as const)('%s', (_name, layout, n, scopes, sizes) => {
    const d = distribute(n, layout, 20);
    expect(Object.keys(d)).toHaveLength(scopes);
    expect(Object.values(d).flat()).toHaveLength(n);
    expect(new Set(Object.values(d).flat()).size).toBe(n);
    expect(new Set(Object.values(d).map((s) => s.length))).toEqual(new Set(sizes));
  });
});

describe("the issue's targets", () => {
  const base = (baseline: BaselineRow['baseline'], perSecond: number): BaselineRow => ({
    baseline,
    label: baseline,
    count: perSecond,
    seconds: 1,
    rssMb: 10,
  });
  const baselines = [base('openssl', 100), base('x509', 150), base('ceiling-1', 6000), base('ceiling-all', 10_000)];
  const row = (
    services: number,
    command: CommandRow['command'],
    seconds: number,
    rssMb = 200,
    layout: CommandRow['layout'] = 'mesh',
  ): CommandRow => ({
    layout,
    services,
    command,
    seconds,
    rssMb,
    ...(command.startsWith('renew') ? { count: command === 'renew-none' ? 0 : services } : {}),
  });
  const checks = (rows: CommandRow[]) =>
    judge(rows, baselines, { sampledDeploy: true }).map((r) =>
      r.checks.map((c) => `${c.ok ? 'ok' : 'FAIL'} ${c.label}`),
    );

  it.each([
    [
      'a 10k cold renew in 3.4 s at 2,941 leaves/s meets the time but not half the ceiling',
      [row(10_000, 'renew-cold', 3.4)],
      ['ok ≤ 3.5 s', 'FAIL ≥ ½ ceiling', 'ok ≤ 400 MB'],
    ],
    [
      'a 10k cold renew in 2 s meets both',
      [row(10_000, 'renew-cold', 2)],
      ['ok ≤ 3.5 s', 'ok ≥ ½ ceiling', 'ok ≤ 400 MB'],
    ],
    [
      'with its minting phase timed, half the ceiling is judged on that phase: 10k leaves in 2 s of signing is ' +
        '5,000/s, the half ceiling',
      [{ ...row(10_000, 'renew-cold', 3.4), mint: { leaves: 10_000, seconds: 2, wallSeconds: 2.5, threads: 2 } }],
      ['ok ≤ 3.5 s', 'ok ≥ ½ ceiling (mint phase)', 'ok ≤ 400 MB'],
    ],
    [
      'a minting phase below half the ceiling fails it, whatever the whole process did',
      [{ ...row(10_000, 'renew-cold', 2), mint: { leaves: 10_000, seconds: 2.5, wallSeconds: 2.5, threads: 2 } }],
      ['ok ≤ 3.5 s', 'FAIL ≥ ½ ceiling (mint phase)', 'ok ≤ 400 MB'],
    ],
    ['a 10k verify of 2.1 s and 401 MB fails both', [row(10_000, 'verify', 2.1, 401)], ['FAIL ≤ 2 s', 'FAIL ≤ 400 MB']],
    ['1k rows carry no target', [row(1000, 'status', 5)], []],
    ['the one-scope layout is judged for growth only', [row(10_000, 'plan', 2, 900, 'single')], []],
  ] as const)('%s', (_name, rows, want) => {
    expect(checks([...rows]).at(-1)).toEqual(want);
  });

  it('judges 50k against 10k of the same layout and command', () => {
    const got = checks([
      row(10_000, 'verify', 1, 100, 'single'),
      row(50_000, 'verify', 5.4, 100, 'single'),
      row(10_000, 'status', 1, 100, 'single'),
      row(50_000, 'status', 6, 100, 'single'),
    ]);
    expect(got[1]).toEqual(['ok ≤ 5.5× 10k (5.4×)']);
    expect(got[3]).toEqual(['FAIL ≤ 5.5× 10k (6.0×)']);
  });

  it('gives renew its ratios to every baseline, and no other command', () => {
    const [cold, status] = judge([row(10_000, 'renew-cold', 10), row(10_000, 'status', 1)], baselines, {
      sampledDeploy: true,
    });
    expect(cold!.ratios).toEqual({ openssl: 10, x509: 1000 / 150, ceiling1: 1000 / 6000, halfCeilingAll: 0.2 });
    const [timed] = judge(
      [{ ...row(10_000, 'renew-cold', 10), mint: { leaves: 10_000, seconds: 1, wallSeconds: 4, threads: 2 } }],
      baselines,
      { sampledDeploy: true },
    );
    expect(timed!.mintRate).toBe(10_000);
    expect(timed!.ratios!.mintHalfCeilingAll).toBe(2);
    expect(status!.ratios).toBeUndefined();
  });
});

describe('the flags', () => {
  it.each([
    [
      'every size and both layouts by default',
      [],
      { sizes: [1000, 10_000, 50_000], layouts: ['mesh', 'single'], deployTargets: 210 },
    ],
    ['sizes in thousands or plain', ['--sizes', '1k,2500'], { sizes: [1000, 2500] }],
    [
      '--quick is 1k, the mesh layout and small samples',
      ['--quick'],
      { sizes: [1000], layouts: ['mesh'], deployTargets: 10 },
    ],
    ['--sizes after --quick still wins', ['--quick', '--sizes', '105'], { sizes: [105], layouts: ['mesh'] }],
    ['every service deployed', ['--deploy-targets', 'all'], { deployTargets: 'all' }],
    ['the release build by default', [], { cli: 'release' }],
    ['the tsc build when asked', ['--cli', 'tsc'], { cli: 'tsc' }],
  ] as const)('%s', (_name, argv, want) => {
    expect(parseArgs([...argv])).toMatchObject(want);
  });

  it.each([
    [['--sizes', '0'], /--sizes: 0/],
    [['--sizes', '10m'], /--sizes: 10m/],
    [['--layouts', 'mesh,ring'], /--layouts: ring/],
    [['--json'], /--json needs a value/],
    [['--bogus'], /unknown argument --bogus/],
    [['--cli', 'dist'], /--cli: dist is neither release nor tsc/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(UsageError);
    expect(() => parseArgs(argv)).toThrow(message);
  });
});
