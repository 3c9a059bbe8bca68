/**
 * TRELLIS_TIMINGS=1 (packages/ci/src/timings.ts): renew prints one JSON line
 * of its phase timings on stderr, the worker pool's minting phase in it, and
 * changes nothing on stdout or in the store. The benchmark reads the minting
 * phase's rate from it (scripts/bench/run.ts mintPhase).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Timings, timingsFor } from '../packages/ci/src/timings.js';
import { mintPhase } from '../scripts/bench/run.js';
import { FakeMesh } from './helpers/fake-mesh.js';
import { MINUTE, RUN_NOW, at } from './helpers/clock.js';

const NOW = at(RUN_NOW);
const LATER = at(RUN_NOW, 5 * MINUTE);
/** Past renew's worker threshold (renew.ts WORKER_MIN_LEAVES), so the pool mints. */
const N = 300;
const names = Array.from({ length: N }, (_, i) => `svc-${String(i).padStart(4, '0')}`);
const PHASES = ['start', 'load', 'plan', 'keys', 'procedures', 'write', 'ledger', 'total'];

interface Line {
  trellis: string;
  command: string;
  ms: Record<string, number>;
  mint?: { leaves: number; threads: number; wallMs: number; signMs: number[]; filesMs: number[] };
}

let plain: FakeMesh;
let timed: FakeMesh;
beforeAll(async () => {
  const m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': names }, now: NOW, leaves: false });
  plain = m.clone();
  timed = m.clone();
}, 120_000);

/** stdout names the output directory, which differs between the two copies. */
const sameStdout = (s: string, m: FakeMesh) => s.replaceAll(m.dir, '<store>');

describe('renew with TRELLIS_TIMINGS=1', () => {
  it('minting: one parseable JSON line on stderr with every phase and the pool, stdout and the store as without it', async () => {
    const a = await plain.ci(['renew', '--now', NOW, '--now-ahead']);
    const b = await timed.ci(['renew', '--now', NOW, '--now-ahead'], { TRELLIS_TIMINGS: '1' });
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stderr).toBe('');
    expect(sameStdout(b.stdout, timed)).toBe(sameStdout(a.stdout, plain));
    const lines = b.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    const t = JSON.parse(lines[0]!) as Line;
    expect(t).toMatchObject({ trellis: 'timings', command: 'renew' });
    expect(Object.keys(t.ms)).toEqual(PHASES);
    for (const v of Object.values(t.ms)) expect(v).toBeGreaterThanOrEqual(0);
    expect(t.mint).toMatchObject({ leaves: N + 1 });
    expect(t.mint!.signMs).toHaveLength(t.mint!.threads);
    expect(t.mint!.filesMs).toHaveLength(t.mint!.threads);
    expect(t.mint!.signMs.every((v) => v > 0)).toBe(true);
    // The phase of the pool lies inside renew's procedures, and the busiest thread's signing inside the pool's wall
    // time.
    expect(t.mint!.wallMs).toBeLessThanOrEqual(t.ms.procedures! + 1);
    expect(Math.max(...t.mint!.signMs)).toBeLessThanOrEqual(t.mint!.wallMs + 1);
    // Same store: records, ledgers, bundles (serials and keys are random, so compare which files exist).
    expect(Object.keys(timed.snapshot()).sort()).toEqual(Object.keys(plain.snapshot()).sort());
    expect(mintPhase(b.stderr)).toMatchObject({
      leaves: N + 1,
      threads: t.mint!.threads,
      seconds: Math.max(...t.mint!.signMs) / 1000,
      wallSeconds: t.mint!.wallMs / 1000,
    });
  }, 120_000);

  it('nothing due: the line has the phases that ran and no minting phase; stdout as without it, the store unchanged', async () => {
    const before = timed.snapshot();
    const a = await plain.ci(['renew', '--now', LATER, '--now-ahead']);
    const b = await timed.ci(['renew', '--now', LATER, '--now-ahead'], { TRELLIS_TIMINGS: '1' });
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(b.stdout).toBe(a.stdout);
    const lines = b.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    const t = JSON.parse(lines[0]!) as Line;
    expect(Object.keys(t.ms)).toEqual(['start', 'load', 'plan', 'total']);
    expect(t.mint).toBeUndefined();
    expect(mintPhase(b.stderr)).toBeUndefined();
    expect(timed.snapshot()).toEqual(before);
  }, 60_000);

  it('only TRELLIS_TIMINGS=1 turns it on', () => {
    expect(timingsFor('renew', {})).toBeUndefined();
    expect(timingsFor('renew', { TRELLIS_TIMINGS: '0' })).toBeUndefined();
    expect(timingsFor('renew', { TRELLIS_TIMINGS: '1' })).toBeInstanceOf(Timings);
  });

  it('adds up a phase marked twice, and the pool per thread over the span of its chunks', () => {
    const t = new Timings('renew');
    t.mark('load');
    t.mark('plan');
    t.mark('load');
    t.chunk(0, 2, 128, 100, 150, 30, 10);
    t.chunk(1, 2, 128, 110, 170, 40, 15);
    t.chunk(0, 2, 44, 150, 190, 12, 4);
    const line = JSON.parse(t.line()) as Line;
    expect(Object.keys(line.ms)).toEqual(['start', 'load', 'plan', 'total']);
    expect(line.mint).toEqual({ leaves: 300, threads: 2, wallMs: 90, signMs: [42, 40], filesMs: [14, 15] });
    expect(t.line().split('\n')).toHaveLength(2); // one line, newline-terminated
  });

  it('the bench refuses a renew that printed no timings line', () => {
    expect(() => mintPhase('minted 3 leaves\n')).toThrow(/no TRELLIS_TIMINGS line/);
  });
});
