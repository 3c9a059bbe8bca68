/**
 * The lint tools (scripts/lint.sh) can fail: each is run with the repo's own
 * configuration on a small tree planted with the violation it exists to catch.
 * A check that could not fail would guard nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/cli.js';

const bin = (name: string) => path.join(REPO, 'node_modules/.bin', name);

/** A temporary tree holding `files` (path → content), with the named repo files copied in. */
function tree(files: Record<string, string>, copied: string[] = []): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-lint-tools-'));
  for (const f of copied) fs.copyFileSync(path.join(REPO, f), path.join(dir, f));
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

describe('the lint tools refuse what they exist to refuse', () => {
  it('dependency-cruiser: a cycle, core importing a package, and trellis-ci reaching trellis-root', async () => {
    const dir = tree(
      {
        'packages/core/src/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
        'packages/core/src/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
        'packages/core/src/index.ts':
          "import { a } from './a.js';\nimport { root } from '@trellis/offline';\nexport const index = [a, root];\n",
        'packages/offline/src/main.ts': 'export const root = 1;\n',
        'packages/ci/src/main.ts':
          "import { root } from '@trellis/offline';\nimport { index } from '@trellis/core';\nconsole.log(root, " +
          'index);\n',
      },
      ['.dependency-cruiser.cjs', 'tsconfig.depcruise.json', 'tsconfig.base.json'],
    );
    const r = await execa(bin('depcruise'), ['--config', '.dependency-cruiser.cjs', 'packages'], {
      cwd: dir,
      reject: false,
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/error no-cycle: packages\/core\/src\/(a|b)\.ts/);
    expect(r.stdout).toContain(
      'error core-imports-no-package: packages/core/src/index.ts → packages/offline/src/main.ts',
    );
    expect(r.stdout).toContain('error ci-cannot-reach-root: packages/ci/src/main.ts → packages/offline/src/main.ts');
  }, 60_000);

  it('knip: an unused file, an unused export (also one re-exported by index.ts) and an unused dependency', async () => {
    const dir = tree({
      'package.json': JSON.stringify({
        name: 'planted',
        private: true,
        type: 'module',
        dependencies: { 'left-pad': '1.3.0' },
      }),
      'knip.json': JSON.stringify({ includeEntryExports: true, entry: ['src/main.ts'], project: ['src/**/*.ts'] }),
      'src/main.ts': "import { used } from './index.js';\nconsole.log(used);\n",
      'src/index.ts': "export { used, unused } from './lib.js';\n",
      'src/lib.ts': 'export const used = 1;\nexport const unused = 2;\n',
      'src/dead.ts': 'export const dead = 1;\n',
    });
    const r = await execa(bin('knip'), [], { cwd: dir, reject: false });
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/Unused files[\s\S]*src\/dead\.ts/);
    expect(r.stdout).toMatch(/Unused dependencies[\s\S]*left-pad/);
    expect(r.stdout).toMatch(/unused +src\/index\.ts/);
    expect(r.stdout).not.toMatch(/\bused +src\/index\.ts/);
  }, 60_000);

  it('biome: an unformatted file and a lint error fail `biome ci`; the formatted file passes', async () => {
    const dir = tree({ 'tests/planted.ts': 'export const x = {a:1}\n' }, ['biome.jsonc']);
    const ci = (file: string) =>
      execa(bin('biome'), ['ci', '--vcs-enabled=false', '--colors=off', file], { cwd: dir, reject: false });
    const unformatted = await ci('tests/planted.ts');
    expect(unformatted.exitCode).not.toBe(0);
    expect(unformatted.stdout + unformatted.stderr).toMatch(/format/i);
    fs.writeFileSync(path.join(dir, 'tests/lint.ts'), 'export const escape = (v: string): string => v;\n');
    const lint = await ci('tests/lint.ts');
    expect(lint.exitCode).not.toBe(0);
    expect(lint.stdout + lint.stderr).toContain('noShadowRestrictedNames');
    fs.writeFileSync(path.join(dir, 'tests/planted.ts'), 'export const x = { a: 1 };\n');
    expect((await ci('tests/planted.ts')).exitCode).toBe(0);
  }, 60_000);
});
