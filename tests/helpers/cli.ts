/** Runs the real CLIs as a user would: separate processes, a clean environment, exit codes. */
import { execa, type Result } from 'execa';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');
/** The CLIs as the release lays them out, bundled from the sources with the test-only fault seam (global-setup.ts). */
export const CLI_DIR = path.join(REPO, 'build/test-cli');
export const ROOT_BIN = path.join(CLI_DIR, 'trellis-root.mjs');
export const CI_BIN = path.join(CLI_DIR, 'trellis-ci.mjs');
export const AGENT_BIN = path.join(CLI_DIR, 'trellis-agent.mjs');
export const DRILL_BIN = path.join(CLI_DIR, 'trellis-drill.mjs');
const GOVERIFY = path.join(REPO, 'scripts/goverify/goverify');

export type Env = Record<string, string | undefined>;

/** PATH and HOME only: no CI, no identities, unless a test adds them. */
export function baseEnv(extra: Env = {}): Env {
  return { PATH: process.env.PATH, HOME: process.env.HOME, TRELLIS_ACTOR: 'test', ...extra };
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(bin: string, args: string[], env: Env, cwd: string, input?: string): Promise<Run> {
  const r: Result = await execa('node', [bin, ...args], {
    env: env as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
    cwd,
    input,
    stdin: input === undefined ? 'ignore' : 'pipe',
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** trellis-root on the "air-gapped workstation": this sandbox has a network interface, so the test opts in. */
export function trellisRoot(args: string[], opts: { env?: Env; cwd?: string; input?: string } = {}): Promise<Run> {
  return run(ROOT_BIN, args, baseEnv({ TRELLIS_ALLOW_ONLINE: '1', ...opts.env }), opts.cwd ?? REPO, opts.input);
}

export function trellisCi(args: string[], opts: { env?: Env; cwd?: string } = {}): Promise<Run> {
  return run(CI_BIN, args, baseEnv({ CI: 'true', ...opts.env }), opts.cwd ?? REPO);
}

/**
 * Go's crypto/x509 (scripts/goverify). Go reads the clock without libc, so
 * libfaketime cannot reach it: every call is given this process's time as -at
 * unless the test names its own instant.
 */
export function goverify(args: string[]): Promise<Run> {
  return tool(GOVERIFY, args.includes('-at') ? args : [...args, '-at', new Date().toISOString()]);
}

export async function tool(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): Promise<Run> {
  const r = await execa(cmd, args, {
    reject: false,
    cwd: opts.cwd,
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : 'pipe',
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
