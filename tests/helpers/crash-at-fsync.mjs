// Preloaded with `node --import`: kills the process (SIGKILL, no cleanup) at
// the Nth fsync, to simulate a power cut at every step of a store write.
// With N = 0 it only counts, and prints the count on exit.
import fs from 'node:fs';

const limit = Number(process.env.TRELLIS_TEST_CRASH_AT_FSYNC);
let count = 0;
const fsync = fs.fsyncSync;
fs.fsyncSync = function (...args) {
  const r = fsync.apply(this, args);
  if (++count === limit) process.kill(process.pid, 'SIGKILL');
  return r;
};
if (limit === 0) process.on('exit', () => process.stderr.write(`fsyncs: ${count}\n`));
