/** What each offline command does around a procedure: the posture, the root identity, the ceremony context. */
import fs from 'node:fs';
import path from 'node:path';
import {
  TrellisError,
  combineShares,
  isTrellisError,
  nodeCryptoSeam,
  parseMeshConfig,
  parseShare,
  requireIdentities,
  requireConfirmedPolicy,
  type Mesh,
  recipientsToRecord,
} from '@trellis/core';
import { STORE_FILE, findStore, readBounded, READ_LIMITS } from '@trellis/core/store';
import { actor } from '@trellis/core/shell';
import type { Ceremony } from './root-procedures.js';
import { sharesFromStdin } from './typed-shares.js';
import { tokenAwareSeam, tokenRootsOnly } from './token.js';
import type { Posture } from './records.js';

/** The offline identity recombined from shares, held in this process's memory only (never written, never printed). */
let fromShares: string | undefined;

/**
 * The root identity: recombined from shares when they were given, else TRELLIS_ROOT_IDENTITY(_FILE);
 * not asked for when every root key of the store is on a token (only its PIN is).
 */
export const rootIdentities = (): string[] =>
  fromShares
    ? [fromShares]
    : tokenRootsOnly()
      ? []
      : requireIdentities('root', process.env, (p) => readBounded(p, READ_LIMITS.small, { followLink: true }));

/** The offline identity recombined from shares, when they were given (verify proves custody with it). */
export const rootIdentityFromShares = (): string[] | undefined => (fromShares ? [fromShares] : undefined);

/** Share files from --shares-from or TRELLIS_ROOT_IDENTITY_SHARES (comma-separated); none given: nothing to do. */
function shareSources(flag: string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  if (flag?.length) return flag;
  return (env.TRELLIS_ROOT_IDENTITY_SHARES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Before any command, when shares are given: reads each, checks it belongs to
 * this store's offline identity and recombines K of them in memory; fewer than
 * K is refused (exit 3) before anything is opened.
 */
export async function loadRootShares(
  flags: { store?: string; sharesFrom?: string[]; sharesStdin?: boolean },
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const sources = shareSources(flags.sharesFrom, env);
  if (!sources.length && !flags.sharesStdin) return;
  if ((env.TRELLIS_ROOT_IDENTITY ?? '') !== '' || (env.TRELLIS_ROOT_IDENTITY_FILE ?? '') !== '') {
    throw new TrellisError('usage', 'both identity shares and TRELLIS_ROOT_IDENTITY(_FILE) are given', {
      hint: 'give one source of the offline identity',
    });
  }
  const files = sources.map((source) => {
    let text: string;
    try {
      text = fs.readFileSync(source, 'utf8');
    } catch (e) {
      throw new TrellisError(
        'bad-identity',
        `cannot read the identity share: ${(e as NodeJS.ErrnoException).code ?? 'read failed'}`,
        { file: source, hint: "name each custodian's share file" },
      );
    }
    return { share: parseShare(text, source), source };
  });
  // --shares-stdin: the custodians type (or pipe) their shares on stdin, after the files.
  const shares = flags.sharesStdin ? [...files, ...(await sharesFromStdin(files))] : files;
  fromShares = await combineShares(shares, storeOfflineRecipients(flags.store, env));
}

/** The offline recipients trellis.yaml names, to refuse a share of another mesh; undefined before init. */
function storeOfflineRecipients(store: string | undefined, env: NodeJS.ProcessEnv): string[] | undefined {
  try {
    const dir = findStore(process.cwd(), store ?? (env.TRELLIS_STORE || undefined));
    return parseMeshConfig(fs.readFileSync(path.join(dir, STORE_FILE), 'utf8'), STORE_FILE).recipients.offline;
  } catch (e) {
    // The command reports the store itself.
    if (isTrellisError(e) || (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The context of one ceremony; refuses unconfirmed recipient and signing-policy changes before any key is opened. */
export function ceremony(mesh: Mesh, now: Date, posture: Posture, confirmRecipients: boolean | undefined): Ceremony {
  requireConfirmedPolicy(mesh);
  return {
    mesh,
    now,
    posture,
    actor: actor(),
    recipients: recipientsToRecord(mesh, Boolean(confirmRecipients)),
    seam: tokenAwareSeam(nodeCryptoSeam),
  };
}

export const say = (lines: string[]): void => {
  process.stdout.write(lines.map((l) => `${l}\n`).join(''));
};
