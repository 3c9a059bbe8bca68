/** git as CI runners use it: clones of one origin, a commit per job, branches merged afterwards. */
import { execa } from 'execa';
import type { Run } from './cli.js';

const IDENTITY = {
  GIT_AUTHOR_NAME: 'trellis ci',
  GIT_AUTHOR_EMAIL: 'ci@example.invalid',
  GIT_COMMITTER_NAME: 'trellis ci',
  GIT_COMMITTER_EMAIL: 'ci@example.invalid',
};

export async function git(cwd: string, args: string[]): Promise<Run> {
  const r = await execa('git', ['-c', 'init.defaultBranch=main', '-c', 'advice.detachedHead=false', ...args], {
    cwd,
    reject: false,
    stdin: 'ignore',
    env: IDENTITY,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** git that must succeed. */
export async function mustGit(cwd: string, args: string[]): Promise<string> {
  const r = await git(cwd, args);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} in ${cwd}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Makes `dir` a repository with everything in it committed, and a bare origin beside it that clones start from. */
export async function publishAsOrigin(dir: string, origin: string): Promise<void> {
  await mustGit(dir, ['init', '-q']);
  await mustGit(dir, ['add', '-A']);
  await mustGit(dir, ['commit', '-qm', 'store']);
  await mustGit(dir, ['clone', '-q', '--bare', dir, origin]);
}
