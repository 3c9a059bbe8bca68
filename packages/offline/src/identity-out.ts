/**
 * Handing a generated offline identity to its custodians: whole, or as shares, on stdout, before anything opens with
 * it.
 */
import fs from 'node:fs';
import { TrellisError, looseStdoutRefusal, octalMode, splitIdentity } from '@trellis/core';

/**
 * A secret printed into a redirected file takes the shell's umask (`> root.identity` under 022 is world-readable): a
 * regular file others may read is made 0600 before a byte is written, and said so on stderr.
 */
function tightenStdoutFile(what: string): void {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(1);
  } catch {
    return; // no stdout to judge: the write below says what went wrong
  }
  if (!st.isFile() || (st.mode & 0o077) === 0) return;
  try {
    fs.fchmodSync(1, 0o600);
  } catch (e) {
    throw looseStdoutRefusal(what, st.mode, (e as NodeJS.ErrnoException).code ?? 'chmod failed');
  }
  process.stderr.write(
    `stdout is a file others could read (mode ${octalMode(st.mode)}): made it 0600 ` + `before writing ${what}\n`,
  );
}

/**
 * Writes `text` to stdout synchronously and confirms every byte went out;
 * refuses (exit 1) otherwise, before anything is committed, so a lost identity
 * never leaves a key nobody can open.
 */
export function writeAllToStdout(text: string, say: { what: string; outcome: string; hint: string }): void {
  tightenStdoutFile(say.what);
  const buf = Buffer.from(text);
  let done = 0;
  let waits = 0;
  while (done < buf.length) {
    try {
      done += fs.writeSync(1, buf, done);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A non-blocking pipe that is full: wait for the reader, up to 30 s.
      if (code === 'EAGAIN' && waits++ < 3000) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        continue;
      }
      // stdout is broken: later writes to it (the CLI's final flush) must not turn this refusal into a crash.
      process.stdout.on('error', () => {});
      throw new TrellisError(
        'output-failed',
        `cannot write ${say.what} to stdout (${code ?? 'write failed'}); ${say.outcome}`,
        { hint: say.hint },
      );
    }
  }
}

/** Prints N shares of `identity` on stdout (never the identity itself), each its own block for its own custodian. */
export async function printShares(
  identity: string,
  mesh: string,
  k: number,
  n: number,
  say: { outcome: string; hint: string },
): Promise<void> {
  const blocks = await splitIdentity(identity, mesh, k, n);
  process.stderr.write(
    `${n} shares of the offline root identity follow on stdout, ONCE: give each to its own custodian (paper or ` +
      `separate media); any ${k} open the root key, fewer reveal nothing\n`,
  );
  writeAllToStdout(blocks.join('\n'), { what: 'the shares of the offline root identity', ...say });
}
