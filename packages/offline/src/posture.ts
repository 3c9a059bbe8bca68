import { assertRootPosture, onlineInterfaces } from '@trellis/core';

export interface PostureFlags {
  allowOnline?: boolean;
}

/** Checks the offline posture before anything is read; returns what the ceremony record notes. */
export function requireOfflinePosture(flags: PostureFlags, env: NodeJS.ProcessEnv = process.env): { allowOnline: boolean; onlineInterfaces: string[] } {
  const allowOnline = Boolean(flags.allowOnline) || env.TRELLIS_ALLOW_ONLINE === '1';
  const online = onlineInterfaces();
  assertRootPosture({ env, onlineInterfaces: online, allowOnline });
  return { allowOnline, onlineInterfaces: online };
}
