import type { CommandModule } from 'yargs';
import { clock, collisionRefusal, loadMesh, withStore, planRenew } from '@trellis/core';
import { renderPlan } from './renew.js';

interface Args { store?: string; scope?: string; now?: string; json?: boolean }

export const plan: CommandModule<object, Args> = {
  command: 'plan',
  describe: 'Print what renew would mint, and why',
  builder: (y) => y.option('scope', { type: 'string', describe: 'only this scope' }).option('json', { type: 'boolean', describe: 'machine-readable output' }) as never,
  handler: async (a) => {
    const p = await withStore(a.store, async (store) => planRenew(loadMesh(store), clock(a.now), { scope: a.scope }));
    process.stdout.write(a.json ? `${JSON.stringify(p, null, 2)}\n` : renderPlan(p));
    // As renew would: the plan is printed, then the collisions fail it (exit 2).
    const refusal = collisionRefusal(p.collisions, 'renew would hold');
    if (refusal) throw refusal;
  },
};
