import type { CommandModule } from 'yargs';
import { verifyCommand } from '@trellis/core/shell';

/** Shared with trellis-root; here custody is proven with the CI identity. */
export const verify = verifyCommand('ci') as unknown as CommandModule;
