import { TrellisError, type Reason } from './errors.js';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 } as const;

/** Parses a duration such as `72h`, `7d`, `90s`, `10y` (a year is 365 days) into milliseconds. */
export function parseDuration(text: string, place: { file?: string; field?: string } = {}, reason: Reason = 'bad-config'): number {
  const m = /^(\d+)(s|m|h|d|w|y)$/.exec(String(text).trim());
  if (!m || Number(m[1]) <= 0) {
    throw new TrellisError(reason, `"${text}" is not a duration`, {
      ...place,
      hint: 'write a positive whole number and a unit: 90s, 30m, 72h, 7d, 2w, 3y',
    });
  }
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** Renders milliseconds as the largest exact unit, for files and messages. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of Object.entries(UNIT_MS).reverse()) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}

/** Parses an RFC 3339 timestamp with an explicit offset (the `--now` flag). */
export function parseInstant(text: string, flag = '--now'): Date {
  const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
  const d = new Date(text);
  if (!rfc3339.test(text) || Number.isNaN(d.getTime())) {
    throw new TrellisError('bad-time', `${flag} "${text}" is not an RFC 3339 timestamp`, {
      hint: 'write it like 2026-11-22T10:00:00Z',
    });
  }
  return d;
}

/** Second-precision RFC 3339 in UTC: what every file of the store records. */
export function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
