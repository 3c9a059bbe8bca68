import type { CommandModule } from 'yargs';
import { clock, loadMesh, meshStatus, withStore, renderStatus } from '@trellis/core';

interface Args { store?: string; json?: boolean; now?: string }

export const status: CommandModule<object, Args> = {
  command: 'status',
  describe: 'Show the root, each scope and its leaves',
  builder: (y) => y.option('json', { type: 'boolean', describe: 'machine-readable output' }) as never,
  handler: async (a) => {
    const s = await withStore(a.store, async (store) => meshStatus(loadMesh(store), clock(a.now)));
    process.stdout.write(a.json ? `${JSON.stringify(s, null, 2)}\n` : renderStatus(s));
  },
};
