/**
 * A crash at any point of a multi-file write leaves the old store or the new
 * one, and the next run completes it. The ceremony below writes ~25 files;
 * the process is killed at its Nth fsync for N across the whole write (by the
 * test-only fault seam, TRELLIS_FAULT; tests/crash-sweep.test.ts covers every
 * other mutating command and every rename too).
 */
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { ROOT_BIN, baseEnv } from './helpers/cli.js';
import { RUN_NOW, at } from './helpers/clock.js';

const T0 = at(RUN_NOW);
let pristine: FakeMesh;

beforeAll(async () => {
  pristine = await FakeMesh.create({
    now: T0,
    intermediates: false,
    scopes: { global: ['control'], 'us-east-1': ['api'], 'eu-west-1': ['api'] },
  });
});

/** The ceremony, killed at its nth fsync; n = 0 only counts them. */
async function ceremonyCrashingAt(m: FakeMesh, n: number) {
  const countFile = path.join(path.dirname(m.dir), 'fault-count.json');
  const fault =
    n === 0 ? { TRELLIS_FAULT: 'count', TRELLIS_FAULT_COUNT_FILE: countFile } : { TRELLIS_FAULT: `fsync:${n}` };
  const r = await execa('node', [ROOT_BIN, '--store', m.dir, 'intermediate', '--pending', '--now', T0, '--now-ahead'], {
    env: baseEnv({
      TRELLIS_ALLOW_ONLINE: '1',
      TRELLIS_ROOT_IDENTITY_FILE: m.rootIdentityFile,
      ...fault,
    }) as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  });
  return {
    ...r,
    fsyncs: n === 0 ? (JSON.parse(fs.readFileSync(countFile, 'utf8')) as { fsync: number }).fsync : undefined,
  };
}

describe('a crash mid-write', () => {
  it('leaves the old store or, once any command runs, the complete new one', async () => {
    const old = pristine.snapshot();
    const outcomes = new Set<string>();
    const counted = await ceremonyCrashingAt(pristine.clone(), 0);
    const total = counted.fsyncs!;
    expect(total).toBeGreaterThan(20);
    // Staging fsyncs come first, then the commit point (the journal rename), then the apply: sample all three stretches
    // and one past the end.
    const points = [
      1,
      Math.floor(total / 4),
      Math.floor(total / 2) - 1,
      Math.floor(total / 2) + 2,
      Math.floor((3 * total) / 4),
      total - 1,
      total + 1,
    ];
    for (const n of points) {
      const m = pristine.clone();
      const crashed = await ceremonyCrashingAt(m, n);
      if (crashed.signal !== 'SIGKILL') {
        expect(crashed.exitCode, crashed.stderr).toBe(0); // n past the last fsync: the run simply finished
        outcomes.add('finished');
        continue;
      }
      // Any command first completes or discards the interrupted write under the lock.
      const status = await m.ci(['status', '--json', '--now', T0, '--now-ahead']);
      expect(status.code, status.stderr).toBe(0);
      const minted = JSON.parse(status.stdout).scopes.filter((s: { intermediate: unknown }) => s.intermediate).length;
      if (minted === 0) {
        expect(m.snapshot(), `crash at fsync ${n}`).toEqual(old);
        outcomes.add('old');
      } else {
        expect(minted, `crash at fsync ${n}: half-applied`).toBe(3);
        const v = await m.ci(['verify', '--now', T0, '--now-ahead']);
        expect(v.code, `crash at fsync ${n}: ${v.stdout}`).toBe(0);
        outcomes.add('new');
      }
      // And a rerun completes the job either way.
      const rerun = await m.root(['intermediate', '--pending', '--now', T0, '--now-ahead']);
      expect(rerun.code).toBe(0);
      expect((await m.ci(['renew', '--now', T0, '--now-ahead'])).code).toBe(0);
      expect((await m.ci(['verify', '--now', T0, '--now-ahead'])).code).toBe(0);
    }
    expect([...outcomes].sort()).toEqual(['finished', 'new', 'old']);
  }, 180_000); // eight ceremonies and their reruns: about a minute on the shared 2-core machine
});
