/** `renew --metrics FILE`: the run's time, result and count, written after every run, success or failure. */
import { TrellisError, lastRenewSuccess, renewMetrics } from '@trellis/core';
import { READ_LIMITS, checkOutFile, readBounded } from '@trellis/core/store';
import { clock, ioFailure, openStore, writeMetricsFile } from '@trellis/core/shell';

/**
 * Runs `renew` and records it. A failure is recorded and then rethrown, so
 * renew's own exit code and message stand; the last success is carried over.
 * A FILE the output-path policy refuses (a link, a device, a directory) is
 * refused before renew mints anything.
 */
export async function withRenewMetrics(
  file: string | undefined,
  nowFlag: string | undefined,
  run: () => Promise<{ count: number } | undefined>,
  storeFlag?: string,
): Promise<void> {
  if (!file) {
    await run();
    return;
  }
  let store: string | undefined;
  try {
    store = openStore(storeFlag).dir;
  } catch {
    store = undefined; // no store: renew itself says so, and the failed run is recorded
  }
  checkOutFile(file, { flag: '--metrics', store });
  let now: Date;
  try {
    now = clock(nowFlag);
  } catch {
    now = new Date(); // a bad --now fails the run below; the record still says when it was tried
  }
  const record = (success: boolean, minted: number) => {
    let previous: string | undefined;
    try {
      previous = readBounded(file, READ_LIMITS.small);
    } catch {
      previous = undefined; // the first run
    }
    writeMetricsFile(file, renewMetrics({ now, success, minted, lastSuccess: lastRenewSuccess(previous) }), store);
  };
  let result: { count: number } | undefined;
  try {
    result = await run();
  } catch (e) {
    try {
      record(false, 0);
    } catch (w) {
      process.stderr.write(`trellis-ci: could not record the failed run in ${file}: ${(w as Error).message}\n`);
    }
    throw e;
  }
  try {
    record(true, result?.count ?? 0);
  } catch (e) {
    // The store is committed: say so, so nobody reruns renew to "fix" a metrics directory.
    const why = (ioFailure(e) ?? (e as Error).message).split('\n')[0];
    throw new TrellisError(
      'output-failed',
      `renew completed (${result?.count ?? 0} leaves minted and committed) but its metrics file ${file} was ` +
        `not written: ${why}`,
      {
        hint: 'make the directory writable by this user (the previous file is left as it was)',
      },
    );
  }
}
