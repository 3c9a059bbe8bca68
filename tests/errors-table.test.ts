/**
 * docs/errors.md is the code's table of every reason (REASONS: its exit code and
 * what to do), row for row, and every CLI's error line
 * carries the reason (with --json, an error object on stdout too).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REASONS, TrellisError } from '@trellis/core';
import { errorLine } from '../packages/core/src/model/errors.js';
import { REPO, expectRefused, reasonOf, trellisCi, trellisRoot } from './helpers/cli.js';

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
    expectRefused(ci, 'no-store');
    expect(JSON.parse(ci.stdout)).toMatchObject({ error: { reason: 'no-store', exitCode: 2 } });
    const root = await trellisRoot(['status'], { env: { CI: 'true' } });
    expectRefused(root, 'custody-ci-posture');
  });
});

describe('the table is the message template (docs/decisions.md)', () => {
  it("prints the throw site's hint when it gave one, and otherwise the table's todo: one line of what to do", () => {
    const bare = new TrellisError('store-changed', 'bundles/root/state.yaml changed while renew ran');
    expect(errorLine('trellis-ci', bare)).toBe(
      `trellis-ci: store-changed: bundles/root/state.yaml changed while renew ran\n  → ` +
        `${REASONS['store-changed'].todo}\n`,
    );
    const hinted = new TrellisError('store-changed', 'x', { file: 'f', hint: 'rerun the renew' });
    expect(errorLine('trellis-ci', hinted)).toBe('trellis-ci: store-changed: f: x\n  → rerun the renew\n');
  });

  it("a refusal whose site gave no hint prints the table's todo, on the error line and in --json", async () => {
    // yargs' own parse errors carry no hint of their own (failAsUsage).
    const r = await trellisCi(['revoke', '--json']);
    expectRefused(r, 'usage');
    expect(r.stderr).toMatch(/^trellis-ci: usage: .+\n  → .+$/);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(`  → ${REASONS.usage.todo}`);
    expect(JSON.parse(r.stdout).error.hint).toBe(REASONS.usage.todo);
  });

  it('reasonOf reads the reason from the error line and nothing else', () => {
    const run = (stderr: string) => ({ code: 2, stdout: '', stderr });
    expect(reasonOf(run('trellis-ci: bad-scope: scopes/a.yaml: x\n'))).toBe('bad-scope');
    expect(reasonOf(run('warning: y\ntrellis-root: custody-online: z\n'))).toBe('custody-online');
    expect(reasonOf(run('trellis-ci: standard output: not open for writing\n'))).toBeUndefined();
    expect(reasonOf(run('trellis-ci: no-such-reason: x\n'))).toBeUndefined();
  });

  it('expectRefused fails on a wrong reason, a wrong exit code, a missing error line, or a --json object that disagrees', () => {
    const run = (code: number, stderr: string, stdout = '') => ({ code, stdout, stderr });
    expect(() => expectRefused(run(2, 'trellis-ci: bad-scope: scopes/a.yaml: x'), 'bad-scope')).not.toThrow();
    expect(() => expectRefused(run(2, 'trellis-ci: bad-scope: scopes/a.yaml: x'), 'bad-config')).toThrow();
    expect(() => expectRefused(run(1, 'trellis-ci: bad-scope: scopes/a.yaml: x'), 'bad-scope')).toThrow();
    expect(() => expectRefused(run(2, 'scopes/a.yaml: bad-scope'), 'bad-scope')).toThrow();
    const json = '{"error":{"reason":"bad-config","exitCode":2}}';
    expect(() => expectRefused(run(2, 'trellis-ci: bad-scope: x', json), 'bad-scope')).toThrow();
  });
});
