/** What every verify check returns: findings, each with a level and where it was found. */
export type Level = 'error' | 'warning' | 'pending' | 'ok';

export interface Finding {
  level: Level;
  check: string;
  message: string;
  scope?: string;
  file?: string;
}

export type Where = { scope?: string; file?: string };

export function worstLevel(findings: Finding[]): Level {
  for (const l of ['error', 'warning', 'pending'] as const) if (findings.some((f) => f.level === l)) return l;
  return 'ok';
}

export const DAY = 86_400_000;

export function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
