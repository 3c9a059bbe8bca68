/**
 * Lookups keyed by input, as a check CI runs: every `table[key]` with a
 * string key on a plain record is either one already judged safe
 * (scripts/lint/lookups.baseline) or it fails here, naming the site: make it
 * a Map, a null-prototype record (data.ts) or an own() lookup, or, once judged,
 * add it to the baseline.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/cli.js';
// @ts-expect-error: a plain .mjs script without types
import { lookupSites, scan } from '../scripts/lint/lookups.mjs';

describe('lookups keyed by input (scripts/lint/lookups.mjs)', () => {
  it('every string-keyed lookup on a plain record is one already judged safe', () => {
    const judged = new Set(
      fs
        .readFileSync(path.join(REPO, 'scripts/lint/lookups.baseline'), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#')),
    );
    const sites: string[] = lookupSites();
    expect(sites.length, 'the scanner finds the known sites').toBeGreaterThan(20);
    expect(
      sites.filter((s) => !judged.has(s)),
      'new lookups keyed by a string on a plain record',
    ).toEqual([]);
  }, 120_000);

  it('finds the unsafe form and passes the safe ones: a {} keyed by a string is caught; a Map, a literal key and an array are not', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-lint-'));
    const file = path.join(dir, 'x.ts');
    fs.writeFileSync(
      file,
      [
        'const table: Record<string, string> = { a: "x" };',
        'const byName = new Map<string, string>();',
        'const list: string[] = [];',
        'export function look(k: string, i: number) { return [table[k], byName.get(k), table["a"], list[i]]; }',
      ].join('\n'),
    );
    expect(scan([file], { strict: true, noEmit: true }, dir).map((s: string) => s.split('\t')[1])).toEqual([
      'table[k]',
    ]);
  });
});
