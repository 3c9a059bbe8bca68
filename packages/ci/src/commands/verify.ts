import fs from 'node:fs';
import type { CommandModule } from 'yargs';
import { clock, custodyFindings, loadMesh, withStore, readIdentities, renderFindings, verifyMesh, worstLevel } from '@trellis/core';

interface Args { store?: string; json?: boolean; now?: string }

export const verify: CommandModule<object, Args> = {
  command: 'verify',
  describe: 'Check the store without secrets; with the CI identity, also prove key custody',
  builder: (y) => y.option('json', { type: 'boolean', describe: 'machine-readable output' }) as never,
  handler: async (a) => {
    const mesh = await withStore(a.store, async (store) => loadMesh(store));
    const ci = readIdentities('ci', process.env, (p) => fs.readFileSync(p, 'utf8'));
    const findings = [...(await verifyMesh(mesh, clock(a.now))), ...(await custodyFindings(mesh, { ci }))];
    process.stdout.write(a.json ? `${JSON.stringify({ ok: worstLevel(findings) !== 'error', findings }, null, 2)}\n` : renderFindings(findings));
    if (worstLevel(findings) === 'error') process.exitCode = 1;
  },
};
