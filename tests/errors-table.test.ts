/**
 * docs/errors.md is the code's table of every reason (REASONS: its exit code and
 * what to do), row for row, and every CLI's error line
 * carries the reason (with --json, an error object on stdout too).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REASONS } from '@trellis/core';
import { REPO, trellisCi, trellisRoot } from './helpers/cli.js';

const rows = [
  ...fs.readFileSync(path.join(REPO, 'docs/errors.md'), 'utf8').matchAll(/^\| `([a-z-]+)` \| (\d) \| (.+) \|$/gm),
].map((m) => ({ reason: m[1]!, exit: Number(m[2]), todo: m[3]! }));

describe('docs/errors.md', () => {
  it("is the code's table of reasons, row for row: every reason once, its exit code and what to do", () => {
    expect(rows.map((r) => r.reason)).toEqual(Object.keys(REASONS));
    for (const r of rows)
      expect({ exit: r.exit, todo: r.todo }, r.reason).toEqual(REASONS[r.reason as keyof typeof REASONS]);
  });

  it('every CLI prints the reason on its error line; --json adds the error object on stdout', async () => {
    const ci = await trellisCi(['plan', '--json', '--store', '/nonexistent/store'], { env: { CI: 'true' } });
    expect(ci.code).toBe(2);
    expect(ci.stderr).toMatch(/^trellis-ci: no-store: /);
    expect(JSON.parse(ci.stdout)).toMatchObject({ error: { reason: 'no-store', exitCode: 2 } });
    const root = await trellisRoot(['status'], { env: { CI: 'true' } });
    expect(root.code).toBe(3);
    expect(root.stderr).toMatch(/^trellis-root: custody-[a-z-]+: /);
  });
});
