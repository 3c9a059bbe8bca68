/**
 * Every mutating command, failed at its write points (each fsync and each
 * rename, numbered by the test-only seam TRELLIS_FAULT, docs/crash-safety.md):
 * killed on the spot (SIGKILL) or failed with ENOSPC. After the next command
 * takes the lock, the store is exactly the old one or exactly the new one (the
 * same files changed as in a clean run of the command from the same start),
 * verify is clean, nothing of the journal or the lock is left, and from the
 * old state a rerun completes. A sample is also killed from outside at a
 * random moment.
 *
 * Commands with at most FULL_UP_TO points are swept at every point; longer
 * ones at SAMPLE points (first, last, evenly between). TRELLIS_CRASH_SWEEP=all
 * sweeps every point of every command (slow: the on-demand long run).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { newIdentity, readIdentities } from '@trellis/core';
import { verifyStore } from '@trellis/core/shell';
import { FakeMesh } from './helpers/fake-mesh.js';
import {
  STACK_TRACE,
  bounded,
  changedPaths,
  copyWorld,
  countPoints,
  runTool,
  samplePoints,
  snapshot,
  worldAt,
  type Outcome,
  type Tool,
  type World,
} from './helpers/crash-world.js';

// Fixed instants make runs repeatable; near the real clock, because the agent and its installer check releases against
// it.
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const BASE = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
const T0 = iso(BASE);
const T1 = iso(BASE + HOUR);
const T2 = iso(BASE + 48 * HOUR);
const ALL = process.env.TRELLIS_CRASH_SWEEP === 'all';
const FULL_UP_TO = 16;
const SAMPLE = 3;
/** Commands also failed with ENOSPC at their first point: the clean-error path, store old. */
const THROWN = new Set([
  'trellis-root init',
  'trellis-root intermediate (a new region)',
  'trellis-root crl',
  'trellis-ci renew (a new service)',
  'trellis-ci deploy (dir target)',
  'trellis-agent install (and its installer)',
]);
const CONCURRENCY = 2;

type Label = 'old' | 'new';

interface Case {
  name: string;
  /** When the command runs (its --now), and so when the store is verified after it. */
  at: string;
  start: () => World;
  tool: Tool;
  args: (w: World) => string[];
  /** What the command changes outside the store, as old or new (or a description of what is wrong). */
  outside?: (w: World) => Label | string;
}

const worlds: Record<string, World> = {};
let initRecipients: string[] = [];
const tally = { points: 0, tried: 0, old: 0, new: 0, thrown: 0, external: 0 };
const pointsOf: Record<string, number> = {};

function fromMesh(m: FakeMesh): World {
  return worldAt(path.dirname(m.dir));
}

const targetCert = (w: World) => fs.readFileSync(path.join(w.store, '.trellis/out/us-east-1/api/cert.pem'), 'utf8');

/** A dir or agent target: no release yet (old), or `current` is the release with this run's leaf (new). */
function releaseState(dir: string, cert: string, stamp?: string): Label | string {
  const current = path.join(dir, 'current');
  if (!fs.existsSync(path.join(dir, 'current')))
    return stamp && fs.existsSync(stamp) ? 'a stamp without a release' : 'old';
  for (const f of ['cert.pem', 'key.pem', 'chain.pem', 'trust.openssl.pem']) {
    if (!fs.existsSync(path.join(current, f)) || fs.statSync(path.join(current, f)).size === 0)
      return `current/${f} missing or empty`;
  }
  return fs.readFileSync(path.join(current, 'cert.pem'), 'utf8') === cert
    ? 'new'
    : 'current/cert.pem is neither the old nor the new leaf';
}

beforeAll(async () => {
  const [root, ci] = [await newIdentity(), await newIdentity()];
  worlds.empty = worldAt(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-crash-')));
  fs.writeFileSync(path.join(worlds.empty.dir, 'root.identity'), `${root.identity}\n`, { mode: 0o600 });
  fs.writeFileSync(path.join(worlds.empty.dir, 'ci.identity'), `${ci.identity}\n`, { mode: 0o600 });
  initRecipients = ['--offline-recipient', root.recipient, '--ci-recipient', ci.recipient];

  const m = await FakeMesh.create({
    now: T0,
    scopes: { global: ['control'], 'us-east-1': ['api'], 'eu-west-1': ['api'] },
  });
  worlds.base = fromMesh(m);
  const must = async (w: World, tool: Tool, args: string[]) => {
    const r = await runTool(tool, ['--store', w.store, ...args], w);
    if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  };
  worlds.rotating = copyWorld(worlds.base);
  await must(worlds.rotating, 'root', ['rotate', 'intermediate', 'us-east-1', '--now', T1, '--now-ahead']);
  worlds.overlap = copyWorld(worlds.base);
  await must(worlds.overlap, 'root', ['rotate', 'root', '--now', T1, '--now-ahead']);
  worlds.region = copyWorld(worlds.base);
  fs.writeFileSync(path.join(worlds.region.store, 'scopes/ap-south-1.yaml'), 'kind: region\nservices:\n  api: {}\n');
  worlds.service = copyWorld(worlds.base);
  fs.writeFileSync(
    path.join(worlds.service.store, 'scopes/eu-west-1.yaml'),
    'kind: region\nservices:\n  api: {}\n  web: {}\n',
  );

  // Deploy targets select from the custodian-confirmed allow-list in trellis.yaml.
  const allow = async (w: World, deploy: Record<string, unknown>) => {
    const file = path.join(w.store, 'trellis.yaml');
    fs.writeFileSync(file, stringify({ ...parse(fs.readFileSync(file, 'utf8')), deploy }));
    await must(w, 'root', ['confirm', '--now', T1, '--now-ahead']);
  };
  worlds.retiring = copyWorld(worlds.base);
  fs.rmSync(path.join(worlds.retiring.store, 'scopes/eu-west-1.yaml'));

  worlds.deploy = copyWorld(worlds.base);
  await allow(worlds.deploy, { dir: { paths: [os.tmpdir()] } });
  fs.writeFileSync(
    path.join(worlds.deploy.store, 'scopes/us-east-1.yaml'),
    `kind: region\nservices:\n  api:\n    deploy:\n      - type: dir\n        path: ` +
      `${path.join(worlds.deploy.dir, 'target')}\n`,
  );

  const host = await newIdentity();
  worlds.agent = copyWorld(worlds.base);
  fs.writeFileSync(path.join(worlds.agent.dir, 'host.identity'), `${host.identity}\n`, { mode: 0o600 });
  await allow(worlds.agent, { sealed: { 'web-1': { recipient: host.recipient } } });
  fs.writeFileSync(
    path.join(worlds.agent.store, 'scopes/us-east-1.yaml'),
    'kind: region\nservices:\n  api:\n    deploy:\n      - type: sealed\n        host: web-1\n',
  );
  await must(worlds.agent, 'ci', [
    'deploy',
    '--now',
    T1,
    '--now-ahead',
    '--sealed-out',
    path.join(worlds.agent.dir, 'sealed'),
  ]);
  fs.copyFileSync(path.join(worlds.agent.store, 'bundles/root/roots.pem'), path.join(worlds.agent.dir, 'roots.pem'));
}, 300_000);

const store = (w: World) => ['--store', w.store];

// One row per mutating command.
const CASES: Case[] = [
  {
    name: 'trellis-root init',
    at: T0,
    start: () => worlds.empty!,
    tool: 'root',
    args: (w) => [
      'init',
      ...store(w),
      '--mesh',
      'test',
      '--trust-domain',
      'mesh.example',
      '--now',
      T0,
      '--now-ahead',
      ...initRecipients,
    ],
  },
  {
    name: 'trellis-root intermediate (a new region)',
    at: T1,
    start: () => worlds.region!,
    tool: 'root',
    args: (w) => [...store(w), 'intermediate', 'ap-south-1', '--now', T1, '--now-ahead'],
  },
  {
    name: 'trellis-root rotate intermediate',
    at: T1,
    start: () => worlds.base!,
    tool: 'root',
    args: (w) => [...store(w), 'rotate', 'intermediate', 'us-east-1', '--now', T1, '--now-ahead'],
  },
  {
    name: 'trellis-root rotate intermediate --abort',
    at: T2,
    start: () => worlds.rotating!,
    tool: 'root',
    args: (w) => [...store(w), 'rotate', 'intermediate', 'us-east-1', '--abort', '--now', T2, '--now-ahead'],
  },
  {
    name: 'trellis-root recover',
    at: T1,
    start: () => worlds.base!,
    tool: 'root',
    args: (w) => [...store(w), 'recover', 'eu-west-1', '--reason', 'keyCompromise', '--now', T1, '--now-ahead'],
  },
  {
    name: 'trellis-root rotate root',
    at: T1,
    start: () => worlds.base!,
    tool: 'root',
    args: (w) => [...store(w), 'rotate', 'root', '--now', T1, '--now-ahead'],
  },
  {
    name: 'trellis-root rotate root --finalize',
    at: T2,
    start: () => worlds.overlap!,
    tool: 'root',
    args: (w) => [...store(w), 'rotate', 'root', '--finalize', '--now', T2, '--now-ahead'],
  },
  {
    name: 'trellis-root retire',
    at: T1,
    start: () => worlds.retiring!,
    tool: 'root',
    args: (w) => [...store(w), 'retire', 'eu-west-1', '--now', T1, '--now-ahead'],
  },
  {
    name: 'trellis-root crl',
    at: T1,
    start: () => worlds.base!,
    tool: 'root',
    args: (w) => [...store(w), 'crl', '--now', T1, '--now-ahead'],
  },
  {
    name: 'trellis-ci renew (a new service)',
    at: T1,
    start: () => worlds.service!,
    tool: 'ci',
    args: (w) => [...store(w), 'renew', '--now', T1, '--now-ahead'],
  },
  {
    name: 'trellis-ci revoke',
    at: T1,
    start: () => worlds.base!,
    tool: 'ci',
    args: (w) => [...store(w), 'revoke', 'us-east-1/api', '--reason', 'keyCompromise', '--now', T1, '--now-ahead'],
  },
  {
    name: 'trellis-ci deploy (dir target)',
    at: T1,
    start: () => worlds.deploy!,
    tool: 'ci',
    args: (w) => [...store(w), 'deploy', '--now', T1, '--now-ahead'],
    outside: (w) => releaseState(path.join(w.dir, 'target'), targetCert(w)),
  },
  {
    name: 'trellis-agent install (and its installer)',
    at: T1,
    start: () => worlds.agent!,
    tool: 'agent',
    args: (w) => [
      'install',
      '--bundle',
      path.join(w.dir, 'sealed/us-east-1/api/web-1.age'),
      '--dir',
      path.join(w.dir, 'host'),
      '--roots',
      path.join(w.dir, 'roots.pem'),
    ],
    outside: (w) => releaseState(path.join(w.dir, 'host'), targetCert(w), path.join(w.dir, 'host/.sealed-created')),
  },
];

const isAgent = (c: Case) => c.tool === 'agent';

/**
 * The next command on the store: takes the lock, completes or discards the interrupted write, and checks everything.
 * It is verify's own composition (`verifyStore`, what both CLIs' verify run) with CI's identity, in this process: the
 * crashed command ran in its own, and a verify's process start is most of its cost.
 */
async function settle(c: Case, w: World): Promise<Outcome | undefined> {
  if (isAgent(c)) return undefined; // the agent keeps no store: its release directory is switched by one rename
  const read = (p: string) => fs.readFileSync(p, 'utf8');
  try {
    const { findings } = await verifyStore(w.store, () => ({
      now: new Date(c.at),
      custody: { ci: readIdentities('ci', { TRELLIS_CI_IDENTITY_FILE: path.join(w.dir, 'ci.identity') }, read) },
    }));
    const errors = findings.filter((f) => f.level === 'error');
    return { code: errors.length ? 1 : 0, signal: undefined, stdout: JSON.stringify(errors, null, 2), stderr: '' };
  } catch (e) {
    return { code: 1, signal: undefined, stdout: '', stderr: String(e) };
  }
}

/** Old or new, never in between: the store (and the target) after a failure, once the next command ran. */
/** What a clean run of the command did: the files it changed, and each ledger's length after it. */
interface CleanRun {
  changed: string[];
  ledgerLines: Record<string, number>;
}

const lines = (text: string | undefined) => (text ?? '').split('\n').filter(Boolean);

function cleanRun(before: Record<string, string>, after: Record<string, string>): CleanRun {
  const changed = changedPaths(before, after);
  return {
    changed,
    ledgerLines: Object.fromEntries(
      changed.filter((p) => p.endsWith('.jsonl')).map((p) => [p, lines(after[p]).length]),
    ),
  };
}

async function judge(c: Case, w: World, before: Record<string, string>, clean: CleanRun, what: string): Promise<Label> {
  const changedByCleanRun = clean.changed;
  // `before` is this world's own start: copies differ in the paths their scope files name.
  const v = await settle(c, w);
  const after = snapshot(w.store);
  const changed = changedPaths(before, after);
  // Anchor files are named by their certificate's fingerprint, and every run mints fresh keys: compare them by count.
  const byShape = (ps: string[]) =>
    JSON.stringify(ps.map((p) => p.replace(/-[0-9a-f]{16}\.pem$/, '-<fingerprint>.pem')).sort());
  const storeLabel: Label | string =
    changed.length === 0
      ? 'old'
      : byShape(changed) === byShape(changedByCleanRun)
        ? 'new'
        : `half-applied: changed ${changed.join(', ')}`;
  expect(storeLabel, what).toMatch(/^(old|new)$/);
  if (storeLabel === 'new') {
    // Each ledger head is the clean run's: the old entries untouched, and exactly its new ones after them.
    for (const [p, n] of Object.entries(clean.ledgerLines)) {
      expect(lines(after[p]).length, `${what}: ${p}`).toBe(n);
      expect(lines(after[p]).slice(0, lines(before[p]).length), `${what}: ${p} keeps its old entries`).toEqual(
        lines(before[p]),
      );
    }
  }
  if (v && !(c.name.endsWith('init') && storeLabel === 'old'))
    expect(v.code, `${what}: verify after settling\n${v.stdout}${v.stderr}`).toBe(0);
  const work = fs.existsSync(path.join(w.store, '.trellis')) ? fs.readdirSync(path.join(w.store, '.trellis')) : [];
  if (!isAgent(c) && !(c.name.endsWith('init') && storeLabel === 'old'))
    expect(
      work.filter((n) => n === 'lock' || n.startsWith('journal')),
      `${what}: left in .trellis`,
    ).toEqual([]);
  const outside = c.outside?.(w);
  if (outside !== undefined) expect(outside, `${what}: outside the store`).toMatch(/^(old|new)$/);
  const label = (isAgent(c) ? outside : storeLabel) as Label;
  if (label === 'old' || outside === 'old') {
    // From the old state a rerun completes the job.
    const rerun = await runTool(c.tool, c.args(w), w);
    expect(rerun.code, `${what}: rerun\n${rerun.stderr}`).toBe(0);
    const again = await settle(c, w);
    if (again) expect(again.code, `${what}: verify after the rerun\n${again.stdout}`).toBe(0);
    if (c.outside) expect(c.outside(w), `${what}: outside the store after the rerun`).toBe('new');
  }
  return label;
}

describe('a crash at any write point of any mutating command', () => {
  it.each(CASES)(
    '$name: old or new at every point tried, verify clean, a rerun completes',
    async (c) => {
      const clean = copyWorld(c.start());
      const before = snapshot(clean.store);
      const counted = await countPoints(c.tool, c.args(clean), clean);
      expect(counted.outcome.code, counted.outcome.stderr).toBe(0);
      const cleanResult = cleanRun(before, snapshot(clean.store));
      const changedByCleanRun = cleanResult.changed;
      const total = counted.fsync + counted.rename;
      expect(total, 'a mutating command passes write points').toBeGreaterThan(0);
      expect(counted.outcome.stderr).not.toMatch(STACK_TRACE);
      if (!isAgent(c)) expect(changedByCleanRun.length).toBeGreaterThan(0);
      else expect(c.outside!(clean)).toBe('new');

      const points = ALL || total <= FULL_UP_TO ? samplePoints(total, total) : samplePoints(total, SAMPLE);
      const kills = points.map((n) => async () => {
        const w = copyWorld(c.start());
        const start = snapshot(w.store);
        const crashed = await runTool(c.tool, c.args(w), w, { TRELLIS_FAULT: `point:${n}` });
        expect(crashed.signal, `point ${n} of ${total} is reached: ${crashed.stderr}`).toBe('SIGKILL');
        const label = await judge(c, w, start, cleanResult, `killed at point ${n} of ${total}`);
        fs.rmSync(w.dir, { recursive: true, force: true });
        return label;
      });
      // A thrown I/O error (a full disk at that moment) at the first point; for the journal sweep, at the last too.
      const throws = (THROWN.has(c.name) ? [...new Set([1, ...(total <= FULL_UP_TO ? [total] : [])])] : []).map(
        (n) => async () => {
          const w = copyWorld(c.start());
          const start = snapshot(w.store);
          const failed = await runTool(c.tool, c.args(w), w, { TRELLIS_FAULT: `point:${n}:enospc` });
          expect(failed.code, `ENOSPC at point ${n}: ${failed.stderr}`).toBe(1);
          expect(failed.stderr, `ENOSPC at point ${n}`).toMatch(
            /no space left on (the )?device.*ENOSPC|ENOSPC: no space left/,
          );
          expect(failed.stderr).not.toMatch(STACK_TRACE);
          expect(fs.existsSync(path.join(w.store, '.trellis/lock')), 'the lock is released').toBe(false);
          const label = await judge(c, w, start, cleanResult, `ENOSPC at point ${n} of ${total}`);
          fs.rmSync(w.dir, { recursive: true, force: true });
          return label;
        },
      );
      const labels = await bounded(CONCURRENCY, [...kills, ...throws]);
      tally.points += total;
      pointsOf[c.name] = total;
      tally.tried += kills.length;
      tally.thrown += throws.length;
      tally.old += labels.filter((l) => l === 'old').length;
      tally.new += labels.filter((l) => l === 'new').length;
      // The first point is before the commit, the last after it: both outcomes are seen.
      expect(new Set(labels)).toEqual(new Set(['old', 'new']));
    },
    ALL ? 7_200_000 : 600_000,
  );

  it.each([
    ['trellis-root intermediate (a new region)', 2],
    ['trellis-ci renew (a new service)', 2],
  ] as const)(
    '%s killed from outside at a random moment: old or new, and a rerun completes',
    async (name, trials) => {
      const c = CASES.find((k) => k.name === name)!;
      const clean = copyWorld(c.start());
      const cleanStart = snapshot(clean.store);
      const t0 = Date.now();
      expect((await runTool(c.tool, c.args(clean), clean)).code).toBe(0);
      const duration = Date.now() - t0;
      const cleanResult = cleanRun(cleanStart, snapshot(clean.store));
      for (let i = 0; i < trials; i++) {
        const w = copyWorld(c.start());
        const before = snapshot(w.store);
        const delay = Math.floor(Math.random() * duration);
        const r = await runTool(c.tool, c.args(w), w, {}, { killAfterMs: delay });
        await judge(
          c,
          w,
          before,
          cleanResult,
          `killed from outside after ${delay} ms (${r.signal ?? `exit ${r.code}`})`,
        );
        fs.rmSync(w.dir, { recursive: true, force: true });
        tally.external++;
      }
    },
    300_000,
  );

  it('reports the points tried', () => {
    // The summary line for the report: every point tried ended old or new and recovered.
    process.stdout.write(
      `crash sweep: ${CASES.length} commands, ${tally.points} write points, ${tally.tried} kill points tried ` +
        `and recovered (${tally.old} old, ${tally.new} new incl. ${tally.thrown} ENOSPC), ${tally.external} ` +
        `external SIGKILLs recovered\n`,
    );
    for (const [name, n] of Object.entries(pointsOf)) process.stdout.write(`  ${name}: ${n} write points\n`);
    expect(tally.tried).toBeGreaterThanOrEqual(CASES.length * 2);
  });
});
