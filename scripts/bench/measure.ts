/**
 * Runs one whole process and measures what an operator's CI would pay for it:
 * wall-clock seconds from spawn to exit (node start-up and module loading
 * included) and peak resident memory of the whole process tree.
 *
 * Peak RSS comes from two sources and the larger wins: GNU time's %M (the
 * kernel's exact high-water mark, but of the largest single process only) and
 * a poller summing VmRSS over the tree every 20 ms (catches forked helpers,
 * which %M would not add up; it can miss a spike shorter than its period).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const GNU_TIME = '/usr/bin/time';

export interface Measured {
  code: number;
  seconds: number;
  /** Peak resident memory of the process tree, in MiB. */
  rssMb: number;
  stdout: string;
  stderr: string;
}

function readChildren(pid: number): number[] {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of the descendants of `pid` (GNU time itself excluded: it is ours, not the command's). */
function treeRssKb(pid: number): number {
  let sum = 0;
  const todo = readChildren(pid);
  while (todo.length) {
    const p = todo.pop()!;
    sum += rssKb(p);
    todo.push(...readChildren(p));
  }
  return sum;
}

/** Process groups of the commands running now, so an interrupted bench can end them (and only them). */
const running = new Set<number>();

/** Ends every command `measure` started that is still running: each is its own process group. */
export function stopRunning(): void {
  for (const pgid of running) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** Runs `cmd args` under GNU time with `env` only (nothing inherited), in `cwd`. */
export function measure(
  cmd: string,
  args: string[],
  opts: { env: Record<string, string | undefined>; cwd?: string },
): Promise<Measured> {
  if (!fs.existsSync(GNU_TIME))
    throw new Error(`${GNU_TIME} is missing: apt-get install time (scripts/bootstrap.sh does)`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-measure-'));
  const timeFile = path.join(tmp, 'time');
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(GNU_TIME, ['-f', '%M', '-o', timeFile, cmd, ...args], {
      env: opts.env as NodeJS.ProcessEnv,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    running.add(child.pid!);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let polled = 0;
    const poll = setInterval(() => {
      polled = Math.max(polled, treeRssKb(child.pid!));
    }, 20);
    child.on('error', (e) => {
      clearInterval(poll);
      running.delete(child.pid!);
      reject(e);
    });
    child.on('close', (code) => {
      running.delete(child.pid!);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      clearInterval(poll);
      let timeKb = 0;
      try {
        // GNU time writes "Command exited with non-zero status N" before the value when the command fails.
        const lines = fs.readFileSync(timeFile, 'utf8').trim().split('\n');
        timeKb = Number(lines[lines.length - 1]) || 0;
      } catch {
        /* the command never started: no value */
      }
      fs.rmSync(tmp, { recursive: true, force: true });
      resolve({
        code: code ?? -1,
        seconds,
        rssMb: Math.max(timeKb, polled) / 1024,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      });
    });
  });
}
