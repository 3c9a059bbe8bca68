import type { CommandModule } from 'yargs';
import { collisionRefusal, custodyRefusal } from '@trellis/core';
import { clock, withStore } from '@trellis/core/shell';
import { renderOutlook, renewOutlook } from './renew.js';

interface Args {
  store?: string;
  scope?: string;
  now?: string;
  json?: boolean;
}

export const plan: CommandModule<object, Args> = {
  command: 'plan',
  describe: 'Print what renew would do, and why: exactly renew --dry-run (phase steps, leaves, CRLs)',
  builder: (y) =>
    y
      .option('scope', { type: 'string', describe: 'only this scope' })
      .option('json', { type: 'boolean', describe: 'machine-readable output' }) as never,
  handler: async (a) => {
    // The very computation renew runs, so plan is exactly renew --dry-run.
    const x = await withStore(a.store, (store) => renewOutlook(store, { now: clock(a.now), scope: a.scope }));
    const p = x.plan;
    const json = {
      ...p,
      phases: x.phases.steps.map((s) => ({ scope: s.scope, step: s.step })),
      crls: Object.fromEntries(x.staleCrls),
    };
    process.stdout.write(a.json ? `${JSON.stringify(json, null, 2)}\n` : `${renderOutlook(x)}\n`);
    // As renew would: the plan is printed, then the collisions fail it (exit 2).
    const refusal = collisionRefusal(p.collisions, 'renew would hold') ?? custodyRefusal(p.custody, 'renew would hold');
    if (refusal) throw refusal;
  },
};
