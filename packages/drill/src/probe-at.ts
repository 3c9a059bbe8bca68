/**
 * Handshakes judged at a simulated instant: the probe runs in a child process
 * under libfaketime, so both TLS stacks read the drill's clock, as hosts would then.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { TrellisError } from '@trellis/core';
import type { Outcome, Party } from './mtls.js';

export interface ProbeResult extends Outcome {
  client: string;
  server: string;
}

/**
 * The built probe: beside the bundle in a release (drill-probe.mjs), else the workspace's dist, whether this module
 * runs from src or dist.
 */
const PROBE =
  import.meta.url.endsWith('.mjs') && fs.existsSync(path.join(import.meta.dirname, 'drill-probe.mjs'))
    ? path.join(import.meta.dirname, 'drill-probe.mjs')
    : path.resolve(import.meta.dirname, '../dist/probe.js');

/** Runs `pairs` in a process whose clock reads `when`; refuses a probe whose clock did not take. */
export async function probeAt(
  when: Date,
  pairs: { client: Party; server: Party }[],
  scratch: string,
): Promise<ProbeResult[]> {
  const file = path.join(scratch, `pairs-${when.getTime()}-${process.hrtime.bigint()}.json`);
  fs.writeFileSync(file, JSON.stringify(pairs), { mode: 0o600 });
  const stamp = when
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '');
  const r = await execa('faketime', ['-f', `@${stamp}`, process.execPath, PROBE, file], {
    reject: false,
    env: { TZ: 'UTC' },
  });
  fs.rmSync(file, { force: true });
  if (r.exitCode !== 0) {
    throw new TrellisError(
      'peer-failed',
      `the handshake probe failed (${r.exitCode}): ${String(r.stderr).split('\n')[0]}`,
      { hint: 'the drill needs libfaketime (apt-get install faketime)' },
    );
  }
  const out = JSON.parse(String(r.stdout)) as { now: string; results: ProbeResult[] };
  if (Math.abs(new Date(out.now).getTime() - when.getTime()) > 60_000) {
    throw new TrellisError(
      'peer-failed',
      `faketime did not take: the probe's clock read ${out.now}, the drill's ${when.toISOString()}`,
    );
  }
  return out.results;
}
