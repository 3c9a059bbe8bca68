import { TrellisError, type Reason } from './errors.js';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 } as const;

/** The longest duration trellis accepts anywhere: a root of 100 years outlives any mesh, and a longer one is a typo. */
const MAX_DURATION_MS = 100 * UNIT_MS.y;

/** Parses a duration such as `72h`, `7d`, `90s`, `10y` (a year is 365 days) into milliseconds, at most 100y. */
export function parseDuration(
  text: string,
  place: { file?: string; field?: string } = {},
  reason: Reason = 'bad-config',
): number {
  const raw = String(text).trim();
  const m = /^(\d{1,12})(s|m|h|d|w|y)$/.exec(raw);
  const shown = JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw);
  if (!m || Number(m[1]) <= 0) {
    throw new TrellisError(reason, `${shown} is not a duration`, {
      ...place,
      hint: 'write a positive whole number and a unit: 90s, 30m, 72h, 7d, 2w, 3y',
    });
  }
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms > MAX_DURATION_MS) {
    throw new TrellisError(reason, `${shown} is longer than 100 years, the most trellis accepts`, {
      ...place,
      hint: 'certificate lifetimes are days (leaves) to years (roots): see docs/input-limits.md',
    });
  }
  return ms;
}

/** Renders milliseconds as the largest exact unit, for files and messages. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of Object.entries(UNIT_MS).reverse()) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 timestamp with an explicit offset (the `--now` flag),
 * strictly: every field in range (2026-02-30 and 24:00 are errors, never
 * rolled over), years 1970 to 9999.
 */
export function parseInstant(text: string, flag = '--now'): Date {
  const shown = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
  const fail = (why: string): never => {
    throw new TrellisError('bad-time', `${flag} ${shown} ${why}`, {
      hint: 'write an RFC 3339 time with its offset, like 2026-11-22T10:00:00Z',
    });
  };
  const m = RFC3339.exec(text);
  if (!m) return fail('is not an RFC 3339 timestamp');
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth)
    fail(
      `names a day that does not exist (${year}-${m[2]} has ${month >= 1 && month <= 12 ? daysInMonth : 'no'} days)`,
    );
  if (hour > 23 || minute > 59 || second > 59) fail('has a time of day out of range (00:00:00 to 23:59:59)');
  if (m[8] && (Number(m[9]) > 23 || Number(m[10]) > 59)) fail('has an offset out of range (-23:59 to +23:59)');
  const d = new Date(text.replace(' ', 'T'));
  if (Number.isNaN(d.getTime())) fail('is not an RFC 3339 timestamp');
  if (d.getUTCFullYear() < 1970) fail('is before 1970: no certificate of a trellis mesh is that old');
  return d;
}

/** Second-precision RFC 3339 in UTC: what every file of the store records. */
export function iso(d: Date): string {
  const s = d.toISOString(); // always ….sssZ: drop the milliseconds
  return `${s.slice(0, -5)}Z`;
}

/**
 * How far ahead of this machine's clock a notBefore, a CRL's thisUpdate or a
 * `--now` may lie and still count as now: runners and workstations drift by
 * seconds to minutes, never by more (host-trust's default clock skew agrees).
 */
export const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * True when something valid from `from` is not yet valid at `now`, beyond the skew allowance: the one rule for leaves,
 * CRLs, intermediates and `--now`.
 */
export function notYetValid(from: Date, now: Date): boolean {
  return from.getTime() > now.getTime() + CLOCK_SKEW_MS;
}

/**
 * `--now` ahead of the real clock signs what no peer accepts yet: only with
 * `--now-ahead` as well (drills, tests). Usage (exit 2), naming both times.
 */
export function assertNowNotAhead(now: Date, real: Date, nowAhead: boolean): void {
  if (nowAhead || !notYetValid(now, real)) return;
  throw new TrellisError(
    'usage',
    `--now ${iso(now)} is ahead of this machine's clock (${iso(real)}) by more than the ` +
      `${formatDuration(CLOCK_SKEW_MS)} clock-skew allowance`,
    {
      field: '--now',
      hint:
        'give --now-ahead as well to act as of a future time (a drill, a test): what is signed is not yet valid ' +
        'at the real clock, and verify, check and renew say so; or fix this clock',
    },
  );
}
