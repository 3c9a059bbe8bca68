import type { CommandModule } from 'yargs';
import { rotateIntermediate as procedure } from '../runbooks.js';
import { runDrill, type DrillArgs } from '../run.js';

export const rotateIntermediate: CommandModule<object, DrillArgs> = {
  command: 'rotate-intermediate <scope>',
  describe:
    "Rehearse a planned intermediate rotation (publish → switch → retire) on a scratch copy of the mesh's shape",
  builder: (y) =>
    y
      .positional('scope', { type: 'string', describe: 'the scope whose intermediate rotates' })
      .example('$0 rotate-intermediate us-east-1', 'before trellis-root rotate intermediate us-east-1') as never,
  handler: (a) => runDrill(a, procedure),
};
