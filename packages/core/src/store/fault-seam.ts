/**
 * The fault seam. TEST-ONLY, inert unless TRELLIS_FAULT is set (docs/crash-safety.md).
 * Every durable write passes through a numbered point (each fsync, each
 * rename); the crash sweep fails one of them to prove the store ends old or new.
 * The release (`pnpm dist`, action/) is built with fault-seam.release.ts in
 * this file's place, so no shipped CLI reads TRELLIS_FAULT.
 *
 *   TRELLIS_FAULT=count   TRELLIS_FAULT_COUNT_FILE=F   on exit, writes {"fsync":n,"rename":m} to F
 *   TRELLIS_FAULT=KIND:N[:ACTION]   KIND fsync | rename | point (either, counted together);
 *                                   ACTION kill (SIGKILL on the spot, the default) | enospc | eio (throw)
 */
import fs from 'node:fs';

export type WritePointKind = 'fsync' | 'rename';

interface Fault {
  kind: WritePointKind | 'point' | 'count';
  at: number;
  action: 'KILL' | 'ENOSPC' | 'EIO';
}

const passed: Record<WritePointKind, number> = { fsync: 0, rename: 0 };
let fault: Fault | null | undefined;

function armedFault(): Fault | null {
  if (fault !== undefined) return fault;
  const spec = process.env.TRELLIS_FAULT;
  if (!spec) return (fault = null);
  if (spec === 'count') {
    const file = process.env.TRELLIS_FAULT_COUNT_FILE;
    if (file) process.on('exit', () => fs.writeFileSync(file, JSON.stringify(passed)));
    return (fault = { kind: 'count', at: 0, action: 'KILL' });
  }
  const m = /^(fsync|rename|point):([1-9][0-9]*)(?::(kill|enospc|eio))?$/.exec(spec);
  if (!m)
    throw new Error(
      `TRELLIS_FAULT=${spec}: expected count or KIND:N[:ACTION] (KIND fsync|rename|point, ACTION kill|enospc|eio)`,
    );
  return (fault = {
    kind: m[1] as Fault['kind'],
    at: Number(m[2]),
    action: (m[3] ?? 'kill').toUpperCase() as Fault['action'],
  });
}

/** Passes one numbered write point: where an armed fault kills the process or fails the operation. */
export function writePoint(kind: WritePointKind): void {
  const f = armedFault();
  if (!f) return;
  passed[kind]++;
  if (f.kind === 'count' || (f.kind !== 'point' && f.kind !== kind)) return;
  const n = f.kind === 'point' ? passed.fsync + passed.rename : passed[kind];
  if (n !== f.at) return;
  if (f.action === 'KILL') process.kill(process.pid, 'SIGKILL');
  const what = f.action === 'ENOSPC' ? 'no space left on device' : 'i/o error';
  throw Object.assign(new Error(`${f.action}: ${what} (injected at ${kind} ${n})`), { code: f.action, syscall: kind });
}

/**
 * The seam's variables for a child process that has its own write points (the
 * installer): the fault, and the points passed so far, so numbering continues.
 */
export function faultEnv(): Record<string, string> {
  const f = armedFault();
  if (!f) return {};
  return {
    TRELLIS_FAULT: process.env.TRELLIS_FAULT!,
    TRELLIS_FAULT_FSYNCS: String(passed.fsync),
    TRELLIS_FAULT_RENAMES: String(passed.rename),
  };
}

/** Takes back the count a child reported (`trellis-fault: fsync N rename M` on its stderr). */
export function adoptFaultCount(childStderr: string): void {
  const m = /^trellis-fault: fsync ([0-9]+) rename ([0-9]+)$/m.exec(childStderr);
  if (!armedFault() || !m) return;
  passed.fsync = Number(m[1]);
  passed.rename = Number(m[2]);
}
