import type { CommandModule } from 'yargs';
import { statusCommand } from '@trellis/core/shell';

/** Shared with the other CLI: one status for both postures. */
export const status = statusCommand as unknown as CommandModule;
