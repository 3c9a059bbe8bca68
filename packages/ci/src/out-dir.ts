/**
 * Renew's output directory holds plaintext leaf keys: only its owner may
 * enter it, and it must be the directory named, not a link to elsewhere.
 * deploy --wipe-out removes what it delivered.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TrellisError, octalMode, outDirRefusal } from '@trellis/core';
import { assertOutsideTrackedTree, makeOutDir } from '@trellis/core/store';
import { SCOPE_OUT_FILES } from './issue.js';

/**
 * Creates `dir` 0700, or tightens an existing one of ours to 0700 (a looser
 * directory left by an older trellis must not stop CI). Refuses a symlink,
 * a non-directory, another user's directory and, for the default inside
 * `store`, a path that leaves the store through a link. Returns a note when
 * it tightened one.
 */
export function prepareOutDir(
  dir: string,
  opts: { flag?: string; store?: string; storeDir?: string } = {},
): string | undefined {
  const flag = opts.flag ?? '--out';
  if (opts.storeDir) assertOutsideTrackedTree(dir, opts.storeDir, flag);
  try {
    makeOutDir(path.dirname(dir), { flag, secret: true }); // parents 0700 whatever the umask
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new TrellisError('usage', `cannot write leaves under ${dir}: ${(e as Error).message}`, {
        hint: `point ${flag} at a writable directory`,
      });
  }
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink()) throw outDirRefusal(dir, flag, { kind: 'is-link' });
  if (!st.isDirectory())
    throw new TrellisError('usage', `cannot write leaves under ${dir}: it is not a directory`, {
      hint: `point ${flag} at a directory`,
    });
  // The default lies inside the store, where a committed symlink (say .trellis -> a served directory) would reroute
  // keys.
  if (opts.store && fs.realpathSync(dir) !== path.join(fs.realpathSync(opts.store), path.relative(opts.store, dir)))
    throw outDirRefusal(dir, flag, { kind: 'leaves-store', real: fs.realpathSync(dir) });
  if (process.getuid && st.uid !== process.getuid())
    throw outDirRefusal(dir, flag, { kind: 'foreign-owner', uid: st.uid, me: process.getuid() });
  refuseLinksInside(dir, flag);
  const loose = st.mode & 0o077;
  fs.chmodSync(dir, 0o700); // also where mkdir's mode met a umask
  return loose ? `tightened ${dir} from ${octalMode(st.mode)} to 0700: it holds plaintext leaf keys\n` : undefined;
}

/**
 * Refuses a symbolic link among the scope directories, the scope files and
 * the service directories renew writes into: O_NOFOLLOW guards only a path's
 * last component, so a planted `out/S -> ../../bundles/S` would put plaintext
 * keys where git commits them. Leaf files themselves are replaced by rename,
 * which never follows a link.
 */
function refuseLinksInside(dir: string, flag: string): void {
  const refuse = (at: string): never => {
    throw outDirRefusal(dir, flag, { kind: 'link-inside', at });
  };
  for (const scope of fs.readdirSync(dir, { withFileTypes: true })) {
    const at = path.join(dir, scope.name);
    if (scope.isSymbolicLink()) refuse(at);
    if (!scope.isDirectory()) continue;
    for (const entry of fs.readdirSync(at, { withFileTypes: true }))
      if (entry.isSymbolicLink()) refuse(path.join(at, entry.name));
  }
}

/**
 * Removes the leaf directories of `services` (SCOPE/SERVICE) under `dir`: never `dir` itself, nor anything else in it.
 */
export function wipeOutDir(dir: string, services: string[]): number {
  let wiped = 0;
  for (const s of new Set(services)) {
    const target = path.join(dir, s);
    if (!fs.existsSync(target)) continue;
    fs.rmSync(target, { recursive: true, force: true });
    wiped++;
  }
  for (const scope of new Set(services.map((s) => s.split('/')[0]!))) {
    // A scope directory without a leaf left goes too, with its trust and CRL files; one still holding another service's
    // leaf stays.
    const scopeDir = path.join(dir, scope);
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(scopeDir, { withFileTypes: true });
    } catch {
      continue; // already gone
    }
    if (entries.some((e) => e.isDirectory())) continue;
    for (const f of SCOPE_OUT_FILES) fs.rmSync(path.join(scopeDir, f), { force: true });
    try {
      fs.rmdirSync(scopeDir);
    } catch {
      /* something else lives there: not ours to remove */
    }
  }
  return wiped;
}
