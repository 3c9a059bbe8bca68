import { assertCiPosture } from '@trellis/core';

/** Every trellis-ci command starts here: the root identity must never reach CI. */
export function requireCiPosture(env: NodeJS.ProcessEnv = process.env): void {
  assertCiPosture(env);
}
