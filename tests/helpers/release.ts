/** The self-contained release (scripts/dist/build.mjs), built by the tests that use it, and throwaway release keys. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO } from './cli.js';

export interface Manifest {
  format: string;
  commit: string;
  date: string;
  artifacts: { file: string; sha256: string; bytes: number; run?: string; needs?: string[] }[];
}

/** Builds the release of the checkout at `repo` into `out`, signed with `key` if given. */
export function buildRelease(
  out: string,
  opts: { key?: string; repo?: string; env?: NodeJS.ProcessEnv } = {},
): Manifest {
  const repo = opts.repo ?? REPO;
  execFileSync(
    'node',
    [path.join(repo, 'scripts/dist/build.mjs'), '--out', out, ...(opts.key ? ['--sign-key', opts.key] : [])],
    {
      cwd: repo,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: opts.env ?? { PATH: process.env.PATH, HOME: process.env.HOME },
    },
  );
  return readManifest(out);
}

export const readManifest = (dir: string): Manifest =>
  JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

/** A throwaway ed25519 release key; returns the private key's path and an allowed-signers line for `principal`. */
export function releaseKey(
  dir: string,
  name: string,
  principal = 'release@example.org',
): { key: string; allowed: string } {
  const key = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', principal, '-f', key]);
  return {
    key,
    allowed: `${principal} namespaces="trellis-release" ${fs.readFileSync(`${key}.pub`, 'utf8').trim()}\n`,
  };
}

/** True when no directory from `dir` up to / holds a node_modules: a bundle run there finds no package. */
export function noNodeModulesAbove(dir: string): boolean {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'node_modules'))) return false;
    if (d === path.dirname(d)) return true;
  }
}
