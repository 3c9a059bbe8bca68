/**
 * Builds what the tests run (the packages, tsc -b is incremental; the CLIs bundled as the release ships them; the Go
 * verifiers) and stamps the run's one clock (helpers/clock.ts) for every worker.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * libfaketime names its shared memory by pid and leaves it behind when its
 * process is killed; a later process given that pid fails ("sem_open: File
 * exists"). Clears the ones whose process is gone.
 */
function clearStaleFaketime(): void {
  let names: string[];
  try {
    names = fs.readdirSync('/dev/shm');
  } catch {
    return;
  }
  for (const n of names) {
    const pid = /^(?:faketime_shm_|sem\.faketime_sem_)(\d+)$/.exec(n)?.[1];
    if (pid === undefined) continue;
    try {
      process.kill(Number(pid), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join('/dev/shm', n), { force: true });
    }
  }
}

export default async function setup(): Promise<void> {
  process.env.TRELLIS_TEST_NOW ??= new Date().toISOString();
  clearStaleFaketime();
  const repo = path.resolve(import.meta.dirname, '../..');
  execFileSync('pnpm', ['run', '--silent', 'build'], { cwd: repo, stdio: 'inherit' });
  const { buildTestCli } = await import(path.join(repo, 'scripts/dist/build.mjs'));
  await buildTestCli(path.join(repo, 'build/test-cli'));
  execFileSync('bash', ['scripts/build-goverify.sh'], { cwd: repo, stdio: 'inherit' });
}
