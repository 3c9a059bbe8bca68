/**
 * The host state file beside the releases: the newest release installed and
 * the newest root CRL seen per pinned root (see @trellis/core host-trust).
 * Written atomically, so a crash leaves the old state or the new one, and
 * through a temp file created exclusively under an unpredictable name, so a
 * planted file or symlink cannot redirect the write.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TrellisError, parseHostState, serializeHostState, type HostState } from '@trellis/core';
import { readBounded, READ_LIMITS } from '@trellis/core/store';

const HOST_STATE_FILE = '.trellis-host-state.json';
/** Written by agents before host state existed: the newest release's `created` only. */
const LEGACY_STAMP = '.sealed-created';

export function hostStatePath(dir: string): string {
  return path.join(dir, HOST_STATE_FILE);
}

function readIfPresent(file: string): string | undefined {
  try {
    return readBounded(file, READ_LIMITS.small);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TrellisError('bad-host-state', `cannot read it: ${(e as Error).message}`, {
      file,
      hint: 'run trellis-agent as the user that owns --dir',
    });
  }
}

export function readHostState(dir: string): HostState {
  const file = hostStatePath(dir);
  const text = readIfPresent(file);
  if (text !== undefined) return parseHostState(text, file);
  const legacy = readIfPresent(path.join(dir, LEGACY_STAMP))?.trim();
  // The legacy stamp migrates through the same parser, so it is validated like the state itself.
  return parseHostState(
    legacy === undefined ? undefined : JSON.stringify({ version: 1, newestRelease: legacy, rootCrls: {} }),
    path.join(dir, LEGACY_STAMP),
  );
}

export function writeHostState(dir: string, state: HostState): void {
  const file = hostStatePath(dir);
  const tmp = path.join(dir, `.trellis-host-state.${randomBytes(16).toString('hex')}.tmp`);
  // 'wx' is O_CREAT|O_EXCL: it fails on any existing path, a symlink included.
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    try {
      fs.writeFileSync(fd, serializeHostState(state));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  const d = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(d);
  } finally {
    fs.closeSync(d);
  }
  fs.rmSync(path.join(dir, LEGACY_STAMP), { force: true });
}
