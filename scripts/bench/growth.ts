/**
 * Store growth over renew cycles (issue 9, deliverable 3): a synthetic mesh
 * (global + N regions) renewed CYCLES times with `--now` stepping past every
 * leaf's renewal point, so each cycle re-mints every leaf. Prints the bytes
 * each renew added to the ledgers (total and the largest scope), and the
 * wall time of whole `verify` and nothing-due `renew` processes after the
 * first cycle and after the last, with their ratio (the target is ≤ 1.5×).
 *
 *   pnpm bench:growth [--services 10000] [--regions 20] [--cycles 30] [--from DIR] [--keep DIR] [--cli release|tsc]
 *
 * --from DIR reuses a mesh made by an earlier run (DIR/store, DIR/ci.id), which
 * saves the init and ceremony; it is copied, never changed. --cli: which CLIs
 * run, the single-file release built into the scratch directory at the start
 * (default, what users run; see BENCHMARKS.md) or the tsc build (run `pnpm build`).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '../..');
let ROOT_BIN = path.join(REPO, 'packages/offline/dist/main.js');
let CI_BIN = path.join(REPO, 'packages/ci/dist/main.js');
const DAY = 86_400_000;
// Past the renewal point of a 7-day leaf (⅓ of its life left, ~4.7 days), inside its life.
const STEP = 5 * DAY;

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const services = Number(arg('services', '10000'));
const regions = Number(arg('regions', '20'));
const cycles = Number(arg('cycles', '30'));
const perScope = Math.floor(services / (regions + 1));

const env = (extra: Record<string, string>) => ({
  PATH: process.env.PATH ?? '',
  HOME: os.tmpdir(),
  TRELLIS_ALLOW_ONLINE: '1',
  ...extra,
});
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

function run(bin: string, args: string[], extra: Record<string, string>): { ms: number; out: string } {
  const t = process.hrtime.bigint();
  const out = execFileSync(process.execPath, [bin, ...args], {
    env: env(extra),
    maxBuffer: 1 << 30,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, out };
}

function scopeFile(kind: string): string {
  const lines = [`kind: ${kind}`, 'services:'];
  for (let i = 1; i <= perScope; i++) lines.push(`  svc-${String(i).padStart(5, '0')}: {}`);
  return `${lines.join('\n')}\n`;
}

/** A fresh mesh: init, the scope files, the ceremony. Returns its directory (store/, ci.id). */
function makeMesh(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const init = run(
    ROOT_BIN,
    [
      'init',
      '--store',
      path.join(dir, 'store'),
      '--mesh',
      'bench',
      '--trust-domain',
      'mesh.example',
      '--ci-identity-out',
      path.join(dir, 'ci.id'),
    ],
    {},
  );
  fs.writeFileSync(path.join(dir, 'root.id'), init.out, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'store/scopes/global.yaml'), scopeFile('global'));
  for (let r = 1; r <= regions; r++)
    fs.writeFileSync(path.join(dir, `store/scopes/region-${String(r).padStart(2, '0')}.yaml`), scopeFile('region'));
  run(ROOT_BIN, ['intermediate', '--store', path.join(dir, 'store'), '--pending'], {
    TRELLIS_ROOT_IDENTITY_FILE: path.join(dir, 'root.id'),
  });
}

const ledgers = (store: string) =>
  fs
    .readdirSync(path.join(store, 'bundles'))
    .filter((s) => s !== 'root' && fs.existsSync(path.join(store, 'bundles', s, 'ledger.jsonl')));
const sizes = (store: string) =>
  new Map(ledgers(store).map((s) => [s, fs.statSync(path.join(store, 'bundles', s, 'ledger.jsonl')).size]));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** verify and a nothing-due renew on a copy of the store at `now`, median of three whole processes each. */
function readCosts(store: string, ci: Record<string, string>, now: number): { verify: number; renew: number } {
  const verify: number[] = [];
  const renew: number[] = [];
  for (let i = 0; i < 3; i++) {
    verify.push(run(CI_BIN, ['verify', '--store', store, '--now', iso(now), '--now-ahead'], {}).ms);
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-growth-copy-'));
    fs.cpSync(store, copy, { recursive: true });
    const r = run(
      CI_BIN,
      ['renew', '--store', copy, '--out', path.join(copy, '.out'), '--now', iso(now), '--now-ahead'],
      ci,
    );
    if (!/no leaf is due/.test(r.out)) throw new Error(`the nothing-due renew minted something:\n${r.out}`);
    renew.push(r.ms);
    fs.rmSync(copy, { recursive: true, force: true });
  }
  return { verify: median(verify), renew: median(renew) };
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-growth-'));
const cli = arg('cli', 'release');
if (cli !== 'release' && cli !== 'tsc') throw new Error(`--cli: ${cli} is neither release nor tsc`);
if (cli === 'release') {
  // Beside the mesh, not in it: --keep copies the work directory.
  const release = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-growth-release-'));
  const { buildRelease } = (await import(path.join(REPO, 'scripts/dist/build.mjs'))) as {
    buildRelease: (out: string) => Promise<unknown>;
  };
  await buildRelease(release);
  ROOT_BIN = path.join(release, 'trellis-root.mjs');
  CI_BIN = path.join(release, 'trellis-ci.mjs');
  process.on('exit', () => fs.rmSync(release, { recursive: true, force: true }));
}
const from = arg('from');
if (from) fs.cpSync(from, work, { recursive: true });
else makeMesh(work);
const store = path.join(work, 'store');
const ci = { TRELLIS_CI_IDENTITY_FILE: path.join(work, 'ci.id') };
const out = path.join(work, 'out');

// The cycles start after the newest ledger entry, so --now never steps back.
const newest = Math.max(
  ...[...ledgers(store), 'root'].flatMap((s) =>
    fs
      .readFileSync(path.join(store, 'bundles', s, 'ledger.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => Date.parse(JSON.parse(l).at)),
  ),
);
let now = newest + 60_000;
const rows: { cycle: number; minted: number; ms: number; total: number; largest: number }[] = [];
let first: { verify: number; renew: number } | undefined;
let last: { verify: number; renew: number } | undefined;
process.stderr.write(
  `growth: ${(regions + 1) * perScope} services (${regions + 1} scopes × ${perScope}), ${cycles} cycles, in ${work}\n`,
);
for (let c = 1; c <= cycles; c++) {
  const before = sizes(store);
  fs.rmSync(out, { recursive: true, force: true });
  const r = run(CI_BIN, ['renew', '--store', store, '--out', out, '--now', iso(now), '--now-ahead'], ci);
  const minted = Number(/minted (\d+)/.exec(r.out)?.[1] ?? 0);
  const after = sizes(store);
  const deltas = [...after].map(([s, n]) => n - (before.get(s) ?? 0));
  rows.push({ cycle: c, minted, ms: r.ms, total: deltas.reduce((a, b) => a + b, 0), largest: Math.max(...deltas) });
  process.stderr.write(
    `cycle ${c}: minted ${minted} in ${(r.ms / 1000).toFixed(1)} s, ledgers +${rows.at(-1)!.total} B (largest ` +
      `scope +${rows.at(-1)!.largest} B)\n`,
  );
  if (c === 1) first = readCosts(store, ci, now + 60_000);
  if (c === cycles) last = readCosts(store, ci, now + 60_000);
  now += STEP;
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
console.log(`| cycle | leaves minted | renew | ledgers added | largest scope ledger added |`);
console.log(`|---:|---:|---:|---:|---:|`);
for (const r of rows) console.log(`| ${r.cycle} | ${r.minted} | ${s(r.ms)} | ${kb(r.total)} | ${kb(r.largest)} |`);
console.log('');
console.log(`| after | verify | renew, nothing due |`);
console.log(`|---|---:|---:|`);
console.log(`| cycle 1 | ${s(first!.verify)} | ${s(first!.renew)} |`);
console.log(`| cycle ${cycles} | ${s(last!.verify)} | ${s(last!.renew)} |`);
console.log(`| ratio | ${(last!.verify / first!.verify).toFixed(2)}× | ${(last!.renew / first!.renew).toFixed(2)}× |`);
console.log(
  `\nledger bytes per renew: max ${kb(Math.max(...rows.map((r) => r.largest)))} in one scope (target ≤ 20 KB); ` +
    `store ${kb(Number(execFileSync('du', ['-sb', store], { encoding: 'utf8' }).split('\t')[0]))}`,
);
const keep = arg('keep');
if (keep) fs.cpSync(work, keep, { recursive: true });
fs.rmSync(work, { recursive: true, force: true });
