import type { CommandModule } from 'yargs';
import { verifyCommand } from '@trellis/core';

/** Shared with trellis-ci; here custody is proven with the offline root identity. */
export const verify = verifyCommand('root') as unknown as CommandModule;
