/** What the two line-width tools share: the width, the repository, and the files biome formats. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WIDTH = 120;
const PATTERNS = [
  'packages/*/src/**/*.ts',
  'packages/*/test/**/*.ts',
  'tests/**/*.ts',
  'scripts/**/*.ts',
  'scripts/**/*.mjs',
].map((p) => `:(glob)${p}`);

/** The files, tracked or new (a file not yet added is checked too), relative to ROOT. */
export function lintedFiles() {
  const listed = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ...PATTERNS],
    { cwd: ROOT, encoding: 'utf8' },
  );
  return listed.split('\0').filter(Boolean);
}
