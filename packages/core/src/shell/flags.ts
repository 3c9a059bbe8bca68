/** Flag checks both CLIs run after parsing, before any command. */
import { TrellisError } from '../model/errors.js';

/**
 * yargs turns a flag given twice into a list; a command expecting one value
 * would then crash. Refused as usage, naming the flag, unless it is one of
 * `lists` (kebab-case, as on the command line).
 */
export function refuseRepeatedFlags(argv: Record<string, unknown>, lists: readonly string[] = []): void {
  const allowed = new Set(lists.flatMap((f) => [f, f.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())]));
  const repeated = Object.keys(argv).find((k) => k !== '_' && !allowed.has(k) && Array.isArray(argv[k]));
  if (repeated) {
    const flag = repeated.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    throw new TrellisError('usage', `--${flag} is given more than once`, {
      field: `--${flag}`,
      hint: `give --${flag} once`,
    });
  }
}
