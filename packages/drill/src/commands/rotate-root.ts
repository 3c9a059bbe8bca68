import type { CommandModule } from 'yargs';
import { rotateRoot as procedure } from '../runbooks.js';
import { runDrill, type DrillArgs } from '../run.js';

export const rotateRoot: CommandModule<object, DrillArgs> = {
  command: 'rotate-root [scope]',
  describe: "Rehearse a root rotation (overlap → finalize) on a scratch copy of the mesh's shape",
  builder: (y) =>
    y
      .positional('scope', {
        type: 'string',
        describe: 'the scope whose services the checklist handshakes through (default: the first region)',
      })
      .example('$0 rotate-root', 'before trellis-root rotate root') as never,
  handler: (a) => runDrill(a, procedure),
};
