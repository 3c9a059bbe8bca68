/**
 * Handing a generated offline identity to its custodians: whole, or as shares, on stdout, before anything opens with
 * it.
 */
import fs from 'node:fs';
import { TrellisError, splitIdentity } from '@trellis/core';

/**
 * Writes `text` to stdout synchronously and confirms every byte went out;
 * refuses (exit 1) otherwise, before anything is committed, so a lost identity
 * never leaves a key nobody can open.
 */
export function writeAllToStdout(text: string, say: { what: string; outcome: string; hint: string }): void {
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
