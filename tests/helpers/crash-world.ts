/**
 * Worlds for the crash sweep: a directory holding a store, the dir target and
 * the agent's directory it deploys to, and the identities, copied whole for
 * each trial. Commands run with the test-only fault seam (TRELLIS_FAULT).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { CI_BIN, ROOT_BIN, baseEnv, noteCliRun, nodeArgs, type Env, AGENT_BIN } from './cli.js';

export interface World {
  dir: string;
  store: string;
}

export interface Outcome {
  code: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

export type Tool = 'root' | 'ci' | 'agent';

export function worldAt(dir: string): World {
  return { dir, store: path.join(dir, 'store') };
}

/** A copy of `w`; paths inside its scope files that name the old world are moved to the new one. */
export function copyWorld(w: World): World {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-crash-'));
  fs.cpSync(w.dir, dir, { recursive: true, verbatimSymlinks: true });
  const scopes = path.join(dir, 'store', 'scopes');
  if (fs.existsSync(scopes)) {
    for (const f of fs.readdirSync(scopes)) {
      const file = path.join(scopes, f);
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').split(w.dir).join(dir));
    }
  }
  return worldAt(dir);
}

/** The environment each tool runs with in world `w` (its identity files live in the world). */
function toolEnv(tool: Tool, w: World, extra: Env = {}): Env {
  const ids: Record<Tool, Env> = {
    root: { TRELLIS_ALLOW_ONLINE: '1', TRELLIS_ROOT_IDENTITY_FILE: path.join(w.dir, 'root.identity') },
    ci: { CI: 'true', TRELLIS_CI_IDENTITY_FILE: path.join(w.dir, 'ci.identity') },
    agent: { TRELLIS_AGENT_IDENTITY_FILE: path.join(w.dir, 'host.identity') },
  };
  return baseEnv({ ...ids[tool], ...extra });
}

const BIN: Record<Tool, string> = { root: ROOT_BIN, ci: CI_BIN, agent: AGENT_BIN };

export async function runTool(
  tool: Tool,
  args: string[],
  w: World,
  extra: Env = {},
  opts: { killAfterMs?: number } = {},
): Promise<Outcome> {
  const child = execa('node', nodeArgs(BIN[tool], args), {
    env: toolEnv(tool, w, extra) as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
    cwd: w.dir,
    stdin: 'ignore',
  });
  if (opts.killAfterMs !== undefined) setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
  const r = await child;
  noteCliRun(BIN[tool], r);
  return { code: r.exitCode, signal: r.signal ?? undefined, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Every file under `dir` (minus `skip` names) with its content; symlinks as "-> target". */
export function snapshot(dir: string, skip: string[] = ['.trellis']): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = path.join(rel, e.name);
      if (skip.includes(e.name)) continue;
      if (e.isSymbolicLink()) out[r] = `-> ${fs.readlinkSync(path.join(dir, r))}`;
      else if (e.isDirectory()) walk(r);
      else out[r] = fs.readFileSync(path.join(dir, r), 'utf8');
    }
  };
  walk('');
  return out;
}

/** Paths whose content differs between two snapshots (added, removed or changed). */
export function changedPaths(before: Record<string, string>, after: Record<string, string>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((p) => before[p] !== after[p]).sort();
}

/** Runs `jobs` with at most `limit` at a time. */
export async function bounded<T>(limit: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await jobs[i]!();
      }
    }),
  );
  return results;
}

/** The fault seam's count of write points for one clean run. */
export async function countPoints(
  tool: Tool,
  args: string[],
  w: World,
): Promise<{ outcome: Outcome; fsync: number; rename: number }> {
  const file = path.join(w.dir, 'fault-count.json');
  const outcome = await runTool(tool, args, w, { TRELLIS_FAULT: 'count', TRELLIS_FAULT_COUNT_FILE: file });
  const c = JSON.parse(fs.readFileSync(file, 'utf8')) as { fsync: number; rename: number };
  fs.rmSync(file);
  return { outcome, ...c };
}

/** `k` points of 1..total, always the first and the last, the rest evenly spaced; every point when k >= total. */
export function samplePoints(total: number, k: number): number[] {
  if (k >= total) return Array.from({ length: total }, (_, i) => i + 1);
  return [...new Set(Array.from({ length: k }, (_, i) => 1 + Math.round((i * (total - 1)) / (k - 1))))];
}

/** What an aborted process's output must never hold: a stack trace. */
export const STACK_TRACE = /^\s+at .+\(.*:\d+:\d+\)$|node:internal|Unhandled 'error'/m;
