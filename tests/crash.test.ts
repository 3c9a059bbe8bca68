/**
 * A crash at any point of a multi-file write leaves the old store or the new
 * one, and the next run completes it. The ceremony below writes ~25 files;
 * the process is killed at its Nth fsync for N across the whole write.
 */
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { ROOT_BIN, baseEnv } from './helpers/cli.js';

const T0 = '2026-11-22T10:00:00Z';
const HOOK = path.join(import.meta.dirname, 'helpers/crash-at-fsync.mjs');
let pristine: FakeMesh;

beforeAll(async () => {
  pristine = await FakeMesh.create({ now: T0, intermediates: false, scopes: { global: ['control'], 'us-east-1': ['api'], 'eu-west-1': ['api'] } });
});

async function ceremonyCrashingAt(m: FakeMesh, n: number) {
  return execa('node', ['--import', HOOK, ROOT_BIN, '--store', m.dir, 'intermediate', '--pending', '--now', T0], {
    env: baseEnv({ TRELLIS_ALLOW_ONLINE: '1', TRELLIS_ROOT_IDENTITY_FILE: m.rootIdentityFile, TRELLIS_TEST_CRASH_AT_FSYNC: String(n) }) as NodeJS.ProcessEnv,
    extendEnv: false, reject: false, stdin: 'ignore',
  });
}

describe('a crash mid-write', () => {
  it('leaves the old store or, once any command runs, the complete new one', async () => {
    const old = pristine.snapshot();
    const outcomes = new Set<string>();
    const counted = await ceremonyCrashingAt(pristine.clone(), 0);
    const total = Number(/fsyncs: (\d+)/.exec(counted.stderr)?.[1]);
    expect(total).toBeGreaterThan(20);
    // Staging fsyncs come first, then the commit point (the journal rename), then the apply: sample all three stretches and one past the end.
    const points = [1, Math.floor(total / 4), Math.floor(total / 2) - 1, Math.floor(total / 2) + 2, Math.floor((3 * total) / 4), total - 1, total + 1];
    for (const n of points) {
      const m = pristine.clone();
      const crashed = await ceremonyCrashingAt(m, n);
      if (crashed.signal !== 'SIGKILL') {
        expect(crashed.exitCode, crashed.stderr).toBe(0); // n past the last fsync: the run simply finished
        outcomes.add('finished');
        continue;
      }
      // Any command first completes or discards the interrupted write under the lock.
      const status = await m.ci(['status', '--json', '--now', T0]);
      expect(status.code, status.stderr).toBe(0);
      const minted = JSON.parse(status.stdout).scopes.filter((s: { intermediate: unknown }) => s.intermediate).length;
      if (minted === 0) {
        expect(m.snapshot(), `crash at fsync ${n}`).toEqual(old);
        outcomes.add('old');
      } else {
        expect(minted, `crash at fsync ${n}: half-applied`).toBe(3);
        const v = await m.ci(['verify', '--now', T0]);
        expect(v.code, `crash at fsync ${n}: ${v.stdout}`).toBe(0);
        outcomes.add('new');
      }
      // And a rerun completes the job either way.
      const rerun = await m.root(['intermediate', '--pending', '--now', T0]);
      expect(rerun.code).toBe(0);
      expect((await m.ci(['renew', '--now', T0])).code).toBe(0);
      expect((await m.ci(['verify', '--now', T0])).code).toBe(0);
    }
    expect([...outcomes].sort()).toEqual(['finished', 'new', 'old']);
  });
});
