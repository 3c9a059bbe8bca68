/**
 * `plan` is `renew --dry-run`: one function (renewOutlook) computes both, so
 * for any store and any time they print the same phase steps, mints and CRL
 * re-signs, and exit alike. Checked as a property over times across a
 * rotation's gates and over scopes, on a store with a rotation in flight:
 * in-process on the procedures (MemoryMesh), and once through the real CLIs.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { collisionRefusal, custodyRefusal, isTrellisError } from '@trellis/core';
import { renderOutlook, renewOutlook } from '../packages/ci/src/commands/renew.js';
import { MemoryMesh } from './helpers/memory-mesh.js';
import { at, HOUR, plus, RUN_NOW } from './helpers/clock.js';

const T0 = at(RUN_NOW);
let m: MemoryMesh;

beforeAll(async () => {
  m = await MemoryMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api', 'web'] }, now: T0 });
  await m.rotate('us-east-1', HOUR, RUN_NOW);
}, 120_000);

/** What `plan` prints and the refusal it ends in (packages/ci/src/commands/plan.ts), in-process. */
async function plan(now: Date, scope?: string): Promise<{ out: string; reason?: string }> {
  const x = await renewOutlook(m.store, { now, scope });
  const refusal =
    collisionRefusal(x.plan.collisions, 'renew would hold') ?? custodyRefusal(x.plan.custody, 'renew would hold');
  return { out: renderOutlook(x), reason: refusal?.reason };
}

/** What `renew --dry-run` prints (its `say` lines) and the refusal it ends in, in-process. */
async function dryRun(now: Date, scope?: string): Promise<{ out: string; reason?: string }> {
  const lines: string[] = [];
  try {
    const before = m.snapshot();
    lines.push(...(await m.renew(now, { scope, dryRun: true })).lines);
    expect(m.snapshot(), 'a dry run changed the store').toEqual(before);
    return { out: lines.join('\n') };
  } catch (e) {
    if (!isTrellisError(e)) throw e;
    return { out: lines.join('\n'), reason: e.reason };
  }
}

describe('plan is renew --dry-run', () => {
  it('property: same output and refusal at any time, for the whole mesh or one scope', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 10 * 24 }),
        fc.constantFrom(undefined, 'us-east-1', 'global'),
        async (hours, scope) => {
          const now = plus(RUN_NOW, hours * HOUR);
          const p = await plan(now, scope);
          const d = await dryRun(now, scope);
          expect(p.reason).toBe(d.reason);
          expect(p.out, `at +${hours}h ${scope ?? ''}`).toBe(d.out);
        },
      ),
      {
        numRuns: 40,
        seed: 21,
        examples: [
          [2, undefined],
          [3 * 24, 'us-east-1'],
        ],
      },
    );
  }, 120_000);

  it('after the switch gate opened, plan names the phase step and the mints it brings (the case that disagreed)', async () => {
    const p = await plan(plus(RUN_NOW, 2 * HOUR));
    expect(p.reason).toBeUndefined();
    expect(p.out).toMatch(/^phase us-east-1: switch/m);
    expect(p.out).toMatch(/^mint us-east-1\/api/m);
    expect(p.out).not.toMatch(/no leaf is due/);
  });

  it('through the real CLIs: plan and renew --dry-run print the same and exit 0, the store unchanged', async () => {
    const d = m.onDisk();
    const before = d.snapshot();
    for (const scope of [[], ['--scope', 'us-east-1']]) {
      const now = at(RUN_NOW, 2 * HOUR);
      const plan = await d.ci(['plan', '--now', now, '--now-ahead', ...scope]);
      const dry = await d.ci(['renew', '--dry-run', '--now', now, '--now-ahead', ...scope]);
      expect(plan.code, plan.stderr).toBe(0);
      expect(dry.code, dry.stderr).toBe(0);
      expect(plan.stdout).toMatch(/^phase us-east-1: switch/m);
      expect(plan.stdout).toBe(dry.stdout);
    }
    expect(d.snapshot()).toEqual(before);
  });
});
