import type { CommandModule } from 'yargs';
import { recover as procedure } from '../runbooks.js';
import { runDrill, type DrillArgs } from '../run.js';

export const recover: CommandModule<object, DrillArgs> = {
  command: 'recover <scope>',
  describe: "Rehearse compromise recovery of a scope's intermediate on a scratch copy of the mesh's shape",
  builder: (y) =>
    y
      .positional('scope', { type: 'string', describe: 'the scope whose intermediate is compromised' })
      .example('$0 recover us-east-1', 'what trellis-root recover us-east-1 and the renew after it will do') as never,
  handler: (a) => runDrill(a, procedure),
};
