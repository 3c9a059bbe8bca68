/**
 * The run's one clock. Every test date derives from RUN_NOW: the real clock when
 * the run began (libfaketime's under scripts/test-ahead.sh), to the whole minute.
 * A fixed date would be a fuse: the peers that judge at the real clock (the
 * installer's OpenSSL, nginx, haproxy, Node's TLS, the agent) would see it age.
 *
 * The global setup stamps TRELLIS_TEST_NOW once, so every worker and every
 * process a test spawns agrees on it; a file run alone falls back to its own start.
 */
import fs from 'node:fs';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

function runStart(): number {
  const stamped = process.env.TRELLIS_TEST_NOW;
  const t = stamped ? Date.parse(stamped) : Number.NaN;
  return Number.isFinite(t) ? t : Date.now();
}

/** When the run began, to the whole minute. */
export const RUN_NOW: Date = new Date(Math.floor(runStart() / MINUTE) * MINUTE);

/** The whole hour the run began in: for tests whose arithmetic reads best on the hour. */
export const RUN_HOUR: Date = new Date(Math.floor(RUN_NOW.getTime() / HOUR) * HOUR);

/** `base` moved by `ms` (negative: earlier). */
export const plus = (base: Date | string, ms: number): Date => new Date(new Date(base).getTime() + ms);

/** RFC 3339 as the CLIs' --now takes it and their output prints it: whole seconds, Z. */
export const stamp = (d: Date | string): string => new Date(d).toISOString().replace(/\.\d+Z$/, 'Z');

/** `stamp(plus(base, ms))`: the usual way a test names an instant. */
export const at = (base: Date | string, ms = 0): string => stamp(plus(base, ms));

/** The compact form names and file names carry (`20261206T1713Z`): whole minutes. */
export const compact = (d: Date | string): string =>
  stamp(d)
    .replace(/[-:]/g, '')
    .replace(/\d\dZ$/, 'Z');

/** libfaketime where Debian puts it (the `faketime` package), for a process whose clock a test sets. */
const LIBFAKETIME = [
  `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/faketime/libfaketime.so.1`,
  '/usr/lib/faketime/libfaketime.so.1',
];

/**
 * The environment that sets a child's clock to `when` (libfaketime, preloaded
 * by variable: the `faketime` wrapper refuses to run where libfaketime is
 * already loaded, as under scripts/test-ahead.sh).
 */
export function fakedClockEnv(when: Date): Record<string, string> {
  const lib = LIBFAKETIME.find((f) => fs.existsSync(f));
  if (!lib) throw new Error('libfaketime not found: apt-get install faketime');
  return { LD_PRELOAD: lib, FAKETIME: `@${stamp(when).replace('T', ' ').replace('Z', '')}` };
}
