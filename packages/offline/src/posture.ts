import fs from 'node:fs';
import path from 'node:path';
import {
  assertClockNotBehindLedger,
  assertRootPosture,
  fingerprint,
  isTrellisError,
  parseCertificates,
  paths,
  rootClockBound,
  rootLedgerTrustOf,
  type Certificate,
} from '@trellis/core';
import { findStore } from '@trellis/core/store';
import { clock, onlineInterfaces } from '@trellis/core/shell';

export interface PostureFlags {
  allowOnline?: boolean;
}

/** Checks the offline posture before anything is read; returns what the ceremony record notes. */
export function requireOfflinePosture(
  flags: PostureFlags,
  env: NodeJS.ProcessEnv = process.env,
): { allowOnline: boolean; onlineInterfaces: string[] } {
  const allowOnline = Boolean(flags.allowOnline) || env.TRELLIS_ALLOW_ONLINE === '1';
  const online = onlineInterfaces();
  assertRootPosture({ env, onlineInterfaces: online, allowOnline });
  return { allowOnline, onlineInterfaces: online };
}

/**
 * Before any command: refuses a clock (or --now) earlier than the newest root
 * ledger entry that a root this store holds signed (rootClockBound): a forged
 * or CI-signed line bounds nothing, verify reports it. Without a store yet
 * (init) there is nothing to compare with.
 */
export function requireClockNotBehindLedger(
  flags: { store?: string; now?: string },
  env: NodeJS.ProcessEnv = process.env,
): void {
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
  const held = heldRoots(dir);
  const bound = rootClockBound(rootLedgerTrustOf(text, held), held);
  assertClockNotBehindLedger(clock(flags.now), bound ? [bound] : [], paths.rootLedger);
}

/**
 * The roots the store holds (root.pem, roots.pem, the previous root), by fingerprint; an unreadable file holds none
 * (verify reports it).
 */
function heldRoots(dir: string): Map<string, Certificate> {
  const out = new Map<string, Certificate>();
  for (const rel of [paths.rootCert, paths.roots, paths.rootPrevious]) {
    try {
      for (const c of parseCertificates(fs.readFileSync(path.join(dir, rel), 'utf8'))) out.set(fingerprint(c), c);
    } catch {
      /* missing or unreadable */
    }
  }
  return out;
}
