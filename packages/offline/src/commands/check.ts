import type { CommandModule } from 'yargs';
import { checkCommand } from '@trellis/core/shell';

/** Shared with the other CLI: one monitoring check for both postures (Nagios exit codes, this command only). */
export const check = checkCommand as unknown as CommandModule;
