/**
 * `plan` is `renew --dry-run`: one function (renewOutlook) computes both, so
 * for any store and any time they print the same phase steps, mints and CRL
 * re-signs, and exit alike. Checked as a property over times across a
 * rotation's gates and over scopes, on a store with a rotation in flight.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { at, HOUR, RUN_NOW } from './helpers/clock.js';

const T0 = at(RUN_NOW);
let m: FakeMesh;

beforeAll(async () => {
  m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api', 'web'] }, now: T0 });
  const r = await m.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '1h', '--now', T0]);
  if (r.code !== 0) throw new Error(r.stderr);
});

describe('plan is renew --dry-run', () => {
  it('property: same output and exit code at any time, for the whole mesh or one scope', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 10 * 24 }),
        fc.constantFrom([], ['--scope', 'us-east-1'], ['--scope', 'global']),
        async (hours, scope) => {
          const now = at(RUN_NOW, hours * HOUR);
          const plan = await m.ci(['plan', '--now', now, '--now-ahead', ...scope]);
          const dry = await m.ci(['renew', '--dry-run', '--now', now, '--now-ahead', ...scope]);
          expect(plan.code, plan.stderr).toBe(dry.code);
          expect(plan.stdout, `at +${hours}h ${scope.join(' ')}`).toBe(dry.stdout);
        },
      ),
      {
        numRuns: 8,
        seed: 21,
        examples: [
          [2, []],
          [3 * 24, ['--scope', 'us-east-1']],
        ],
      },
    );
  }, 120_000);

  it('after the switch gate opened, plan names the phase step and the mints it brings (the case that disagreed)', async () => {
    const plan = await m.ci(['plan', '--now', at(RUN_NOW, 2 * HOUR), '--now-ahead']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/^phase us-east-1: switch/m);
    expect(plan.stdout).toMatch(/^mint us-east-1\/api/m);
    expect(plan.stdout).not.toMatch(/no leaf is due/);
  });
});
