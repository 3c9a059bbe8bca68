import type { CommandModule } from 'yargs';
import { renderReportHtml, reportInput, verifyMesh } from '@trellis/core';
import { checkOutFile, loadMesh, storeReader, writeOutFile } from '@trellis/core/store';
import { clock, withStore } from '@trellis/core/shell';

interface Args {
  store?: string;
  out: string;
  now?: string;
  ledger?: number;
}

export const report: CommandModule<object, Args> = {
  command: 'report',
  describe:
    'Write the mesh as one self-contained HTML page: tree, boundary matrix, expiry timeline, rotations, ' +
    'ledger, findings',
  builder: (y) =>
    y
      .option('out', { type: 'string', demandOption: true, describe: 'the HTML file to write' })
      .option('ledger', { type: 'number', default: 25, describe: 'how many recent ledger entries to show' })
      .example('$0 report --out report.html', 'open it in any browser: it loads nothing from anywhere') as never,
  handler: async (a) => {
    const now = clock(a.now);
    const out = await withStore(a.store, async (store) => {
      const to = { flag: '--out', store: store.dir };
      checkOutFile(a.out, to); // a directory, a device or a link is refused before the mesh is verified
      const mesh = loadMesh(store);
      return writeOutFile(
        a.out,
        renderReportHtml(await reportInput(mesh, now, await verifyMesh(mesh, now, storeReader(mesh.dir)), a.ledger)),
        to,
      );
    });
    process.stdout.write(`wrote ${out}\n`);
  },
};
