/**
 * Builds what the tests run (the CLIs, tsc -b is incremental, and the Go
 * verifiers) and stamps the run's one clock (helpers/clock.ts) for every worker.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): void {
  process.env.TRELLIS_TEST_NOW ??= new Date().toISOString();
  const repo = path.resolve(import.meta.dirname, '../..');
  execFileSync('pnpm', ['run', '--silent', 'build'], { cwd: repo, stdio: 'inherit' });
  execFileSync('bash', ['scripts/build-goverify.sh'], { cwd: repo, stdio: 'inherit' });
}
