#!/usr/bin/env node
/**
 * Where the suite's CLI runs go, from a TRELLIS_SPAWN_LOG file (tests/helpers/cli.ts): per test file, how many times
 * it started a CLI and the wall seconds those runs took, most first.
 *
 *   TRELLIS_SPAWN_LOG=/tmp/spawns.jsonl pnpm exec vitest run && node scripts/spawn-table.mjs /tmp/spawns.jsonl
 */
import fs from 'node:fs';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node scripts/spawn-table.mjs SPAWN_LOG\n');
  process.exit(2);
}
// Piped into head: a closed stdout ends the table, not with a stack trace.
process.stdout.on('error', (e) => {
  if (e.code !== 'EPIPE') throw e;
  process.exit(0);
});
const byFile = new Map();
for (const line of fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
  const { file: f, ms } = JSON.parse(line);
  const row = byFile.get(f) ?? { runs: 0, ms: 0 };
  row.runs++;
  row.ms += ms;
  byFile.set(f, row);
}
const rows = [...byFile].sort((a, b) => b[1].ms - a[1].ms);
const total = rows.reduce((t, [, r]) => ({ runs: t.runs + r.runs, ms: t.ms + r.ms }), { runs: 0, ms: 0 });
process.stdout.write(`${total.runs} CLI runs, ${(total.ms / 1000).toFixed(0)} s of wall in them\n`);
for (const [f, r] of rows)
  process.stdout.write(`${String(r.runs).padStart(5)} runs ${(r.ms / 1000).toFixed(1).padStart(7)} s  ${f}\n`);
