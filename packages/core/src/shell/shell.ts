/**
 * What both CLIs share at their edge: the top-level catch that maps reasons
 * to exit codes, the clock, the store location, and who is acting.
 */
import fs from 'node:fs';
import os from 'node:os';
import { TrellisError, errorLine, isTrellisError, whatToDo } from '../model/errors.js';
import { findStore, Store } from '../store/store.js';
import { assertNowNotAhead, parseInstant } from '../model/time.js';
import { escapeUnsafe } from '../model/untrusted.js';

/**
 * Every string a CLI prints passes escapeUnsafe: whatever a message, a finding
 * or a prompt interpolates, no input can forge or hide a line of the output.
 * The progress bar's own cursor control (numbers only) goes through rawStderr.
 */
function guardOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) =>
      write(typeof chunk === 'string' ? escapeUnsafe(chunk) : chunk, ...rest)) as typeof stream.write;
  }
}

const unguardedStderrWrite = process.stderr.write.bind(process.stderr);
/** stderr as the terminal takes it, for a live progress bar's cursor control: it prints no input. */
export const rawStderr: NodeJS.WriteStream = new Proxy(process.stderr, {
  get: (target, prop) => (prop === 'write' ? unguardedStderrWrite : Reflect.get(target, prop, target)),
});

/** Runs a CLI's main; every expected failure becomes its contract exit code, without a stack trace. */
export async function runMain(tool: string, main: () => Promise<unknown>): Promise<never> {
  guardOutput();
  const say = (text: string) => {
    try {
      process.stderr.write(text);
    } catch {
      /* stderr gone too: the exit code is all that is left */
    }
  };
  // A failed stdout (closed pipe, full disk) is reported once at the end, not thrown from wherever the write was
  // queued.
  let stdoutFailed: NodeJS.ErrnoException | undefined;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    stdoutFailed ??= e;
  });
  let code: number;
  try {
    if (stdoutWasClosed()) {
      // Refused before anything is written: a machine failure (exit 1), like a full disk.
      throw Object.assign(new Error('standard output is closed'), { code: 'EBADF', path: 'standard output' });
    }
    await main();
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    const io = isTrellisError(e) ? undefined : ioFailure(e);
    if (isTrellisError(e)) {
      // The reason first: what a user searches for (docs/errors.md) and a test asserts; then what to do.
      say(errorLine(tool, e));
      if (process.argv.includes('--json')) {
        const { file, field } = e.place;
        const error = {
          reason: e.reason,
          exitCode: e.exitCode,
          ...(file ? { file } : {}),
          ...(field ? { field } : {}),
          message: e.message.split('\n')[0],
          hint: whatToDo(e),
        };
        process.stdout.write(`${JSON.stringify({ error })}\n`);
      }
      code = e.exitCode;
    } else if (io) {
      say(`${tool}: ${io}\n`);
      code = PATH_ERRORS.includes((e as NodeJS.ErrnoException).code ?? '') ? 2 : 1;
    } else {
      say(
        `${tool}: internal error: ${(e as Error)?.message ?? e}\n  this is a bug in trellis: report it with ` +
          `the output of TRELLIS_DEBUG=1 ${tool} …\n`,
      );
      if (process.env.TRELLIS_DEBUG) say(`${(e as Error)?.stack}\n`);
      code = 1;
    }
  }
  // Let stdout drain before exiting.
  await new Promise((r) => process.stdout.write('', r));
  if (stdoutFailed) {
    say(
      `${tool}: cannot write standard output: ${describeErrno(stdoutFailed)}; what it printed is lost\n  → the ` +
        `store is as this run left it (old or completed): rerun with stdout to a terminal, a file or a pipe that ` +
        `stays open\n`,
    );
    code = code || 1;
  }
  process.exitCode = code;
  process.exit(code);
}

const ERRNO: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EPIPE: 'the reading end of the pipe is closed',
  EBADF: 'not open for writing',
  // A path the user gave (a flag, TMPDIR, a link) that cannot be used: their input, not a bug.
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'is a directory',
  ENAMETOOLONG: 'the path is too long',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files on the system',
};

/** Errors of a path the user named: exit 2 (bad input); the rest of ERRNO is the machine's (exit 1). */
const PATH_ERRORS = ['ENOENT', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG', 'ELOOP'];

function describeErrno(e: NodeJS.ErrnoException): string {
  return e.code && ERRNO[e.code] ? `${ERRNO[e.code]} (${e.code})` : (e.message ?? String(e));
}

/** The disk, not the input, failed (full, over quota, I/O error): exit 1, never "bad usage". */
export function isMachineFailure(e: unknown): boolean {
  return ['ENOSPC', 'EDQUOT', 'EIO'].includes((e as NodeJS.ErrnoException)?.code ?? '');
}

/** A failure of the machine (disk full, permissions, I/O) as one line that says what to do; undefined for a bug. */
export function ioFailure(e: unknown): string | undefined {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err.code !== 'string' || !ERRNO[err.code]) return undefined;
  const where = err.path ? `${err.path}: ` : '';
  const op = err.syscall ? `${err.syscall} failed: ` : '';
  const hint =
    err.code === 'ENOSPC' || err.code === 'EDQUOT'
      ? 'free space on that disk and rerun: an interrupted write is completed or discarded by the next run'
      : err.code === 'EIO'
        ? 'check the disk, then rerun: an interrupted write is completed or discarded by the next run'
        : err.code === 'EBADF'
          ? 'run it with stdout open (a terminal, a file or a pipe): what this command prints, an identity ' +
            'included, would be lost'
          : PATH_ERRORS.includes(err.code)
            ? 'check the path (the flag or variable that named it: --out, --store, TMPDIR …) and rerun'
            : err.code === 'EMFILE' || err.code === 'ENFILE'
              ? 'raise the open-file limit (ulimit -n) and rerun'
              : 'make it writable by this user (or choose another place) and rerun';
  return `${where}${op}${describeErrno(err)}\n  → ${hint}`;
}

/**
 * Node reopens a closed fd 1 on /dev/null read-write before any code runs; a
 * shell's `>/dev/null` opens it write-only. Linux only (elsewhere: not detected).
 */
function stdoutWasClosed(): boolean {
  try {
    if (fs.readlinkSync('/proc/self/fd/1') !== '/dev/null') return false;
    const flags = /^flags:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/fdinfo/1', 'utf8'))?.[1];
    return flags !== undefined && (parseInt(flags, 8) & 0o3) === fs.constants.O_RDWR;
  } catch {
    return false;
  }
}

export function clock(nowFlag: string | undefined): Date {
  return nowFlag ? parseInstant(nowFlag) : new Date();
}

/**
 * Every CLI's middleware: a `--now` ahead of the real clock is refused unless
 * `--now-ahead` says so. `check` asks it in its handler, to answer Nagios UNKNOWN.
 */
export function checkNowFlag(argv: { _?: unknown[]; now?: unknown; nowAhead?: unknown }, inHandler = false): void {
  if (!inHandler && argv._?.[0] === 'check') return;
  if (typeof argv.now === 'string') assertNowNotAhead(parseInstant(argv.now), new Date(), argv.nowAhead === true);
}

/** The yargs option every CLI that takes `--now` declares with it. */
export const NOW_AHEAD_OPTION = {
  type: 'boolean',
  global: true,
  describe:
    `allow --now ahead of this machine's clock by more than the clock-skew allowance (drills, tests): what is ` +
    `signed is not yet valid until then`,
} as const;

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
export const EXIT_CODES_HELP =
  'exit codes: 0 done, 1 failed or problems found, 2 usage or bad input, 3 custody or posture refused, 4 store ' +
  'locked or changed';

/** The known name nearest to a mistyped one (edit distance at most a third of its length, and 2 or less), if any. */
function nearestName(typed: string, known: readonly string[]): string | undefined {
  const limit = Math.min(2, Math.max(1, Math.floor(typed.length / 3)));
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = editDistance(typed, name);
    if (d <= limit && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * yargs renders a command's whole help text each time it starts the command's handler, kept in case the handler
 * fails into it; trellis's `.fail()` never shows help, so that render (about a tenth of each start) is skipped.
 */
export function withoutHelpCache<T>(cli: T): T {
  type Internal = { getInternalMethods?: () => { getUsageInstance: () => { cacheHelpMessage: () => void } } };
  const usage = (cli as Internal).getInternalMethods?.().getUsageInstance();
  if (usage) usage.cacheHelpMessage = () => {};
  return cli;
}

/** A lone `--version` is the `version` command (yargs' own flag would print the bundle's missing package version). */
export function versionAsCommand(args: string[]): string[] {
  return args.length === 1 && args[0] === '--version' ? ['version'] : args;
}

/** yargs `.fail()` for every CLI: its own errors pass through, a parse error is bad usage (exit 2). */
export function failAsUsage(msg: string | undefined, err: Error | undefined, usage?: unknown): never {
  if (err) throw err;
  const unknown = /^Unknown arguments?: (.+)$/.exec(msg ?? '');
  if (unknown) {
    // yargs names an unknown flag twice (pin-file, pinFile): said once, as typed.
    const names = unknown[1]!.split(', ');
    const typed = names.filter(
      (n) => !names.includes(n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)) || !/[A-Z]/.test(n),
    );
    // yargs hands .fail() its usage object: the options the failing command describes are the names a typo is near.
    const described =
      (usage as { getDescriptions?: () => Record<string, unknown> } | undefined)?.getDescriptions?.() ?? {};
    const known = Object.keys(described).filter((k) => !/[A-Z]/.test(k) && k.length > 1);
    const guesses = typed.map((t) => nearestName(t, known)).filter((g): g is string => g !== undefined);
    throw new TrellisError('usage', `Unknown argument${typed.length > 1 ? 's' : ''}: ${typed.join(', ')}`, {
      hint:
        `${guesses.length ? `did you mean ${guesses.map((g) => `--${g}`).join(', ')}? ` : ''}this command's ` +
        `--help lists the flags it takes`,
    });
  }
  throw new TrellisError('usage', msg ?? 'bad usage');
}
