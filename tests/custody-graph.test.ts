/**
 * The custody split is visible in the dependency graph: nothing reachable from
 * trellis-ci's entry point is root-signing code. The test walks the real
 * import graph of the built CLI, following workspace packages.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/cli.js';

/** Every module file of the repo reachable from `entry` through relative and @trellis/* imports. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const src = fs.readFileSync(file, 'utf8');
    for (const [, spec] of src.matchAll(
      /(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g,
    )) {
      if (!spec) continue;
      if (spec.startsWith('.')) queue.push(path.resolve(path.dirname(file), spec));
      else if (spec.startsWith('@trellis/')) {
        // A package (`@trellis/core`) or one of its entry points (`@trellis/core/store`), by its package.json.
        const [scope, name, ...sub] = spec.split('/');
        const pkgDir = fs.realpathSync(path.join(REPO, 'packages/ci/node_modules', `${scope}/${name}`));
        const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
        queue.push(path.join(pkgDir, sub.length ? pkg.exports[`./${sub.join('/')}`].default : pkg.main));
      }
    }
  }
  return seen;
}

describe('custody split in the dependency graph', () => {
  const ciEntry = path.join(REPO, 'packages/ci/dist/main.js');
  const graph = reachable(ciEntry);
  const rel = [...graph].map((f) => path.relative(REPO, f));

  it('the walk sees the whole CLI, core included (a walk that found nothing would prove nothing)', () => {
    expect(rel).toContain('packages/ci/dist/commands/renew.js');
    expect(rel).toContain('packages/core/dist/x509/leaf.js');
  });
  it('@trellis/ci declares no dependency on @trellis/offline', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'packages/ci/package.json'), 'utf8'));
    expect(Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })).not.toContain('@trellis/offline');
  });
  it('no module of @trellis/offline is reachable from trellis-ci', () => {
    expect(rel.filter((f) => f.startsWith('packages/offline/'))).toEqual([]);
  });
  it('no reachable module mints a root or an intermediate or opens the root key', () => {
    const offenders = [...graph].filter((f) =>
      /\b(mintRoot|mintIntermediate|openRootKey)\b/.test(fs.readFileSync(f, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });
  it("the only profile minted anywhere in trellis-ci's graph is the leaf profile", () => {
    const caMinting = [...graph].filter((f) =>
      /extensionsFor\(\s*(\{\s*\.\.\.)?PROFILES\.(root|intermediate)/.test(fs.readFileSync(f, 'utf8')),
    );
    expect(caMinting).toEqual([]);
    const offline = fs.readFileSync(path.join(REPO, 'packages/offline/dist/ceremony.js'), 'utf8');
    expect(offline).toMatch(/extensionsFor\(PROFILES\.intermediate/); // the pattern does find CA minting where it lives
  });
  it("every module trellis-ci reaches is its own, @trellis/core's or the host installer's (@trellis/agent)", () => {
    expect(
      rel.filter(
        (f) => !['packages/ci/dist/', 'packages/core/dist/', 'packages/agent/dist/'].some((p) => f.startsWith(p)),
      ),
    ).toEqual([]);
  });
  it('the root-signing functions do exist, in @trellis/offline (so the check above can fail)', () => {
    const ceremony = fs.readFileSync(path.join(REPO, 'packages/offline/dist/ceremony.js'), 'utf8');
    expect(ceremony).toMatch(/export async function mintIntermediate/);
    expect(ceremony).toMatch(/export async function openRootKey/);
  });
});
