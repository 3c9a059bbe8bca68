/**
 * trellis-root init prints the only copy of a generated offline identity. If
 * stdout cannot take it, nothing may be created: a store whose root key opens
 * with an identity nobody has is a mesh nobody can rotate or recover.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT_BIN, baseEnv } from './helpers/cli.js';

/** Runs init with stdout on `stdout` (a file descriptor), collecting stderr. */
function initWithStdout(
  stdout: number | 'pipe-closed',
  args: string[],
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('node', [ROOT_BIN, 'init', ...args], {
      env: baseEnv({ TRELLIS_ALLOW_ONLINE: '1' }) as NodeJS.ProcessEnv,
      stdio: ['ignore', stdout === 'pipe-closed' ? 'pipe' : stdout, 'pipe'],
    });
    if (stdout === 'pipe-closed') child.stdout!.destroy(); // the reader is gone before init writes anything
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** init's flags for a new store under `base`, the CI identity written beside it. */
const initArgs = (base: string) => [
  '--store',
  path.join(base, 'store'),
  '--mesh',
  'prod',
  '--trust-domain',
  'mesh.example',
  '--ci-identity-out',
  path.join(base, 'ci.identity'),
];

describe('init whose stdout cannot be written creates nothing', () => {
  it.each([
    ['stdout on a full device', () => fs.openSync('/dev/full', 'w'), /ENOSPC/],
    ['stdout a pipe whose reader has gone', () => 'pipe-closed' as const, /EPIPE/],
  ])('%s: exit 1, a clear message, no store, no CI identity file', async (_, open, errno) => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-init-out-'));
    const r = await initWithStdout(open(), initArgs(base));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/cannot write the offline root identity to stdout/);
    expect(r.stderr).toMatch(errno);
    expect(r.stderr).toMatch(/nothing was created\n\s+→ rerun with stdout going to a terminal or a file/);
    expect(r.stderr).not.toMatch(/\n\s+at \S|internal error|AGE-SECRET-KEY-1[0-9A-Z]{6}/);
    expect(fs.readdirSync(base)).toEqual([]);
  });
});

describe('init whose stdout is a file others may read', () => {
  /** init with stdout redirected into a file that had `mode`, as `> root.identity` under a umask would make it. */
  async function initIntoFileOfMode(mode: number): Promise<{ code: number | null; stderr: string; out: string }> {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-init-mode-'));
    const out = path.join(base, 'root.identity');
    fs.writeFileSync(out, '');
    fs.chmodSync(out, mode);
    const fd = fs.openSync(out, 'w');
    const r = await initWithStdout(fd, initArgs(base));
    fs.closeSync(fd);
    return { ...r, out };
  }

  it.each([
    ['0644 (umask 022)', 0o644],
    ['0666', 0o666],
    ['0640', 0o640],
  ])('%s: made 0600 before the identity is written, and said so', async (_, mode) => {
    const r = await initIntoFileOfMode(mode);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.statSync(r.out).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(r.out, 'utf8')).toMatch(/^AGE-SECRET-KEY-1/m);
    expect(r.stderr).toContain(
      `stdout is a file others could read (mode ${mode.toString(8).padStart(4, '0')}): made it 0600 before writing ` +
        'the offline root identity',
    );
  });

  it('a file only its owner reads is left as it is, and nothing is said', async () => {
    const r = await initIntoFileOfMode(0o600);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.statSync(r.out).mode & 0o777).toBe(0o600);
    expect(r.stderr).not.toContain('others could read');
  });
});
