import { describe, expect, it } from 'vitest';
import { appendToLedger, ledgerFingerprints, ledgerProblems } from '../src/ledger.js';

function ledgerOf(n: number): string {
  let text = '';
  for (let i = 0; i < n; i++) {
    text = appendToLedger(text, { op: 'renew', at: `2026-11-2${i}T00:00:00Z`, actor: 't', created: [{ kind: 'leaf', fingerprint: `sha256:${i}` }] }).text;
  }
  return text;
}

describe('hash-chained ledger', () => {
  const text = ledgerOf(3);
  const lines = text.trim().split('\n');
  it('an untouched chain has no problems and lists what was created', () => {
    expect(ledgerProblems(text)).toEqual([]);
    expect([...ledgerFingerprints(text)]).toEqual(['sha256:0', 'sha256:1', 'sha256:2']);
  });
  it.each([
    ['an edited entry', [lines[0], lines[1]!.replace('sha256:1', 'sha256:X'), lines[2]], /entry 2: hash/],
    ['a dropped entry', [lines[0], lines[2]], /entry 2: seq/],
    ['reordered entries', [lines[1], lines[0], lines[2]], /entry 1: seq/],
    ['a line that is not JSON', [lines[0], '{oops', lines[1], lines[2]], /line 2: not JSON/],
  ])('detects %s', (_, ls, problem) => {
    expect(ledgerProblems(`${ls.join('\n')}\n`).join('\n')).toMatch(problem);
  });
  it('is written as one canonical line per operation, so appends never rewrite history', () => {
    const more = appendToLedger(text, { op: 'x', at: '2026-11-30T00:00:00Z', actor: 't' }).text;
    expect(more.startsWith(text)).toBe(true);
    expect(more.trim().split('\n')).toHaveLength(4);
  });
});
