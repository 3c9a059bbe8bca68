import fs from 'node:fs';
import path from 'node:path';
import { assertClockNotBehindLedger, assertRootPosture, clock, findStore, isTrellisError, onlineInterfaces, parseLedger, paths } from '@trellis/core';

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

/**
 * Before any command: refuses a clock (or --now) earlier than the newest root
 * ledger entry. Without a store yet (init) there is nothing to compare with.
 */
export function requireClockNotBehindLedger(flags: { store?: string; now?: string }, env: NodeJS.ProcessEnv = process.env): void {
  let dir: string;
  try {
    dir = findStore(process.cwd(), flags.store ?? (env.TRELLIS_STORE || undefined));
  } catch (e) {
    if (isTrellisError(e)) return; // the command itself reports the missing store
    throw e;
  }
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, paths.rootLedger), 'utf8');
  } catch {
    return; // no root ledger: verify reports that
  }
  assertClockNotBehindLedger(clock(flags.now), parseLedger(text).entries, paths.rootLedger);
}
