/**
 * Where plaintext keys may be written: the refusals of an output path that
 * would send them elsewhere (a link, a directory another user owns, the
 * store's tracked tree, a path that leaves an allow-listed directory). The
 * store and the shells look at the filesystem (store/out-path.ts,
 * trellis-ci's out-dir.ts) and hand what they found here.
 */
import path from 'node:path';
import { TrellisError, type Reason } from '../model/errors.js';

/** What a look at renew's output directory found that would let leaf keys leave it. */
export type OutDirHazard =
  | { kind: 'is-link' }
  | { kind: 'leaves-store'; real: string }
  | { kind: 'foreign-owner'; uid: number; me: number }
  | { kind: 'link-inside'; at: string };

/** The refusal (exit 3) of renew's output directory `dir`, named by `flag`. */
export function outDirRefusal(dir: string, flag: string, h: OutDirHazard): TrellisError {
  const lead = `cannot write leaves under ${dir}`;
  switch (h.kind) {
    case 'is-link':
      return new TrellisError(
        'custody-out-dir',
        `${lead}: it is a symbolic link, and leaf keys would be written wherever it points`,
        { hint: `remove the link, or point ${flag} at a real directory` },
      );
    case 'leaves-store':
      return new TrellisError(
        'custody-out-dir',
        `${lead}: it resolves to ${h.real} through a symbolic link inside the store, and leaf keys would leave it`,
        { hint: 'remove the link (.trellis is a work area, never committed)' },
      );
    case 'foreign-owner':
      return new TrellisError(
        'custody-out-dir',
        `${lead}: it belongs to uid ${h.uid}, not to this user (uid ${h.me}), and its owner could read the leaf keys`,
        { hint: `point ${flag} at a directory of your own` },
      );
    case 'link-inside':
      return new TrellisError(
        'custody-out-dir',
        `${lead}: ${path.relative(dir, h.at)} in it is a symbolic link, and leaf keys would be written ` +
          `wherever it points`,
        { hint: `remove it (the output directory holds only what renew wrote), or point ${flag} at a new directory` },
      );
  }
}

/** A secret's path inside the store's tracked tree (`rel` from the store), where `git add` would commit it. */
export function trackedTreeRefusal(dir: string, flag: string, rel: string): TrellisError {
  return new TrellisError(
    'custody-out-dir',
    `${flag} ${dir} lies in the store's tracked tree (${rel || '.'}), where git would commit the plaintext keys ` +
      `written there`,
    { field: flag, hint: `point ${flag} outside the store, or under its .trellis/ (git-ignored)` },
  );
}

/** A file's permission bits as `ls` and chmod say them: `0644`. */
export const octalMode = (mode: number): string => (mode & 0o777).toString(8).padStart(4, '0');

/**
 * A secret bound for stdout redirected into a file others may read (`> root.identity` under umask 022) that could not
 * be made 0600 (exit 3): written, it would be readable by them.
 */
export function looseStdoutRefusal(what: string, mode: number, why: string): TrellisError {
  return new TrellisError(
    'custody-out-dir',
    `stdout is a file others may read (mode ${octalMode(mode)}) and could not be ` +
      `made 0600 (${why}): ${what} was not written`,
    { hint: 'redirect stdout to a new file in a directory of your own (or run umask 077 first), then rerun' },
  );
}

/** What an output path carries, for the refusal of a link on the way to it. */
export interface OutPathKind {
  flag: string;
  secret?: boolean;
  allowList?: boolean;
  file?: string;
}

/**
 * A link at `at` on the way to `p` (below `anchor`): a custody refusal when keys would follow it (a secret, or a
 * release under an allow-listed directory), bad usage otherwise.
 */
export function linkRefusal(o: OutPathKind, p: string, at: string, anchor: string | undefined): TrellisError {
  const reason: Reason = o.allowList ? 'custody-not-allowed' : o.secret ? 'custody-out-dir' : 'usage';
  const inside = anchor ? ` inside ${anchor}` : '';
  const where =
    at === p
      ? `it is a symbolic link${inside}`
      : `${anchor ? path.relative(anchor, at) : at} on the way to it is a symbolic link${inside}`;
  const goes = o.allowList
    ? 'and the release (its key included) would land wherever it points, outside the allow-list'
    : o.secret
      ? 'and the plaintext key would be written wherever it points'
      : 'and trellis would write wherever it points';
  return new TrellisError(reason, `cannot write ${p}: ${where}, ${goes}`, {
    file: o.file,
    field: o.flag,
    hint: o.allowList
      ? 'replace the link with a real directory, or have the custodian allow the real path (trellis-root confirm)'
      : `remove the link, or point ${o.flag} at a real path`,
  });
}
