/** Runs the real CLIs as a user would: separate processes, a clean environment, exit codes. */
import { execa, type Result } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { REASONS } from '@trellis/core';

export const REPO = path.resolve(import.meta.dirname, '../..');
/** The CLIs as the release lays them out, bundled from the sources with the test-only fault seam (global-setup.ts). */
export const CLI_DIR = path.join(REPO, 'build/test-cli');
export const ROOT_BIN = path.join(CLI_DIR, 'trellis-root.mjs');
export const CI_BIN = path.join(CLI_DIR, 'trellis-ci.mjs');
export const AGENT_BIN = path.join(CLI_DIR, 'trellis-agent.mjs');
export const DRILL_BIN = path.join(CLI_DIR, 'trellis-drill.mjs');
const GOVERIFY = path.join(REPO, 'scripts/goverify/goverify');

/**
 * How the helpers start a test CLI: scripts/dist/start-cached.cjs runs it as `node BIN ARGS` does, but from V8's code
 * cache, a third less of each start (docs/decisions.md). tests/start-cached.test.ts holds it to `node BIN`'s output.
 */
const START_CACHED = path.join(REPO, 'scripts/dist/start-cached.cjs');
/** `node`'s arguments that run the test CLI `bin` with `args`. */
export function nodeArgs(bin: string, args: readonly string[]): string[] {
  return [START_CACHED, bin, ...args];
}

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

/** TRELLIS_SPAWN_LOG=FILE: a line per CLI run (test file, CLI, wall ms) for `node scripts/spawn-table.mjs FILE`. */
const SPAWN_LOG = process.env.TRELLIS_SPAWN_LOG;

/** Notes one CLI run in the spawn log, if one is kept; every helper that starts a CLI calls it. */
export function noteCliRun(bin: string, r: { durationMs: number }): void {
  if (!SPAWN_LOG) return;
  const file = path.relative(REPO, expect.getState().testPath ?? '(outside a test)');
  fs.appendFileSync(SPAWN_LOG, `${JSON.stringify({ file, cli: path.basename(bin), ms: Math.round(r.durationMs) })}\n`);
}

async function run(bin: string, args: string[], env: Env, cwd: string, input?: string): Promise<Run> {
  const r: Result = await execa('node', nodeArgs(bin, args), {
    env: env as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
    cwd,
    input,
    stdin: input === undefined ? 'ignore' : 'pipe',
  });
  noteCliRun(bin, r);
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

export type Reason = keyof typeof REASONS;

/** The reason on a CLI's error line (`tool: reason: …`, docs/errors.md); undefined when no line names one. */
export function reasonOf(r: Run): string | undefined {
  for (const m of r.stderr.matchAll(/^trellis-[a-z]+: ([a-z]+(?:-[a-z]+)*): /gm))
    if (Object.hasOwn(REASONS, m[1]!)) return m[1];
  return undefined;
}

/**
 * A refusal as the contract states it: the error line names `reason`, and the exit code is the one the table gives
 * it. With `--json`, the error object on stdout must say the same. Prose stays with the test, where it is the point.
 */
export function expectRefused(r: Run, reason: Reason): void {
  const all = `${r.stdout}\n${r.stderr}`;
  expect(reasonOf(r), all).toBe(reason);
  expect(r.code, all).toBe(REASONS[reason].exit);
  const json = /^\{"error":.*\}$/m.exec(r.stdout)?.[0];
  if (json) expect(JSON.parse(json).error, all).toMatchObject({ reason, exitCode: REASONS[reason].exit });
}
