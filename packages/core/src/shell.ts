/**
 * What both CLIs share at their edge: the top-level catch that maps reasons
 * to exit codes, the clock, the store location, and who is acting.
 */
import os from 'node:os';
import { TrellisError, isTrellisError } from './errors.js';
import { findStore, Store } from './store.js';
import { parseInstant } from './time.js';

/** Runs a CLI's main; every expected failure becomes its contract exit code, without a stack trace. */
export async function runMain(tool: string, main: () => Promise<unknown>): Promise<never> {
  let code: number;
  try {
    await main();
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    if (isTrellisError(e)) {
      process.stderr.write(`${tool}: ${e.message}\n`);
      code = e.exitCode;
    } else {
      process.stderr.write(`${tool}: internal error: ${(e as Error)?.message ?? e}\n  this is a bug in trellis: report it with the output of TRELLIS_DEBUG=1 ${tool} …\n`);
      if (process.env.TRELLIS_DEBUG) process.stderr.write(`${(e as Error)?.stack}\n`);
      code = 1;
    }
  }
  process.exitCode = code;
  // Let stdout drain before exiting.
  await new Promise((r) => process.stdout.write('', r));
  process.exit(code);
}

export function clock(nowFlag: string | undefined): Date {
  return nowFlag ? parseInstant(nowFlag) : new Date();
}

export function openStore(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Store {
  return new Store(findStore(process.cwd(), flag ?? (env.TRELLIS_STORE || undefined)));
}

/**
 * Runs `fn` on the store under its lock. Readers take it too: it is what
 * completes a write that a crash interrupted, before anything is read.
 */
export function withStore<T>(flag: string | undefined, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = openStore(flag);
  return store.withLock(() => fn(store));
}

/** Who ran a step, for ledgers and evidence: the CI actor or the local user, and the host. */
export function actor(env: NodeJS.ProcessEnv = process.env): string {
  const who = env.TRELLIS_ACTOR || env.GITHUB_ACTOR || env.GITLAB_USER_LOGIN || env.USER || os.userInfo().username;
  const job = env.GITHUB_RUN_ID ? ` run ${env.GITHUB_RUN_ID}` : '';
  return `${who}@${os.hostname()}${job}`;
}

/** Network interfaces other than loopback that are up with an address. */
export function onlineInterfaces(): string[] {
  return Object.entries(os.networkInterfaces())
    .filter(([, addrs]) => (addrs ?? []).some((a) => !a.internal))
    .map(([name]) => name)
    .sort();
}

/** The contract's exit codes, for every CLI's help. */
export const EXIT_CODES_HELP = 'exit codes: 0 done, 1 failed or problems found, 2 usage or bad input, 3 custody or posture refused, 4 store locked or changed';

/** yargs `.fail()` for every CLI: its own errors pass through, a parse error is bad usage (exit 2). */
export function failAsUsage(msg: string | undefined, err: Error | undefined): never {
  throw err ?? new TrellisError('usage', msg ?? 'bad usage');
}
