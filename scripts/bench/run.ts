/**
 * `pnpm bench`: issue 9's benchmark in one run, printed as one table.
 *
 * For each size and layout it builds a synthetic mesh with the real CLIs
 * (mesh.ts), then times whole `trellis-ci` processes on it: renew with every
 * leaf new, renew with nothing due, verify, status, plan, deploy to `dir`
 * targets, and renew with a third due (a third of the services have a 72 h
 * ttl, so 49 h later exactly those have passed their renewal point). Around
 * them it measures, on the same leaf profile, an openssl CLI loop,
 * @peculiar/x509 used naively and the node:crypto ceiling on one and on every
 * core; the ratios to those are the result. See BENCHMARKS.md.
 *
 *   pnpm bench [--sizes 1k,10k,50k] [--layouts mesh,single] [--quick] [--json FILE]
 *              [--deploy-targets N|all] [--cli release|tsc] [--keep]
 *
 * The CLIs timed are, by default, the single-file release (scripts/dist/build.mjs,
 * built into the scratch directory at the start: what the GitHub Action and the
 * releases run); the tsc build's time is a reference column on the rows that
 * change nothing. Renew runs with TRELLIS_TIMINGS=1, so its minting phase has
 * a rate of its own beside the whole process's.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { makeIssuer, opensslLoop } from './baselines.js';
import { at, buildMesh, releaseBins, REPO, TSC_BINS, type BenchMesh, type Bins } from './mesh.js';
import { measure, stopRunning, type Measured } from './measure.js';
import {
  judge,
  renderTable,
  sizeLabel,
  type BaselineRow,
  type CommandRow,
  type Layout,
  type MintPhase,
} from './table.js';

const HOUR = 3_600_000;
const USAGE = `usage: pnpm bench [--sizes 1k,10k,50k] [--layouts mesh,single] [--quick] [--json FILE] \
[--deploy-targets N|all] [--cli release|tsc] [--keep]
  --sizes           services per mesh (default 1k,10k,50k)
  --layouts         mesh: global + 20 regions; single: one region holds every service (default both)
  --quick           a smoke run: 1k, mesh layout, small samples
  --json FILE       keep the raw numbers
  --deploy-targets  how many services get a dir target (default 210, spread over the scopes; all: every one)
  --cli             which build runs: release (default; the single-file bundles of pnpm dist, built into the scratch \
directory) or tsc (packages/*/dist)
  --keep            keep the scratch meshes (their paths are printed)`;

export interface Options {
  sizes: number[];
  layouts: Layout[];
  json?: string;
  deployTargets: number | 'all';
  keep: boolean;
  /** Which build of the CLIs is timed. */
  cli: 'release' | 'tsc';
  /** Baseline sample sizes: openssl leaves, x509 leaves, ceiling milliseconds. */
  samples: { openssl: number; x509: number; ceilingMs: number };
}

/** Bad flags: exit 2, as for every trellis command. */
export class UsageError extends Error {}

function parseSize(s: string): number {
  const m = /^(\d+)(k?)$/i.exec(s.trim());
  if (!m || Number(m[1]) === 0) throw new UsageError(`--sizes: ${s} is not a size like 1k or 10000`);
  return Number(m[1]) * (m[2] ? 1000 : 1);
}

export function parseArgs(argv: string[]): Options {
  const o: Options = {
    sizes: [1000, 10_000, 50_000],
    layouts: ['mesh', 'single'],
    deployTargets: 210,
    keep: false,
    cli: 'release',
    samples: { openssl: 200, x509: 300, ceilingMs: 1500 },
  };
  let quick = false;
  let sizes: number[] | undefined;
  let layouts: Layout[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--') continue;
    else if (a === '--quick') quick = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--json') o.json = path.resolve(value());
    else if (a === '--cli') {
      const v = value();
      if (v !== 'release' && v !== 'tsc') throw new UsageError(`--cli: ${v} is neither release nor tsc`);
      o.cli = v;
    } else if (a === '--sizes') sizes = value().split(',').map(parseSize);
    else if (a === '--layouts') {
      layouts = value()
        .split(',')
        .map((l) => {
          if (l !== 'mesh' && l !== 'single') throw new UsageError(`--layouts: ${l} is neither mesh nor single`);
          return l;
        });
    } else if (a === '--deploy-targets') {
      const v = value();
      o.deployTargets = v === 'all' ? 'all' : parseSize(v);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new UsageError(`unknown argument ${a}\n${USAGE}`);
  }
  if (quick) {
    o.sizes = [1000];
    o.layouts = ['mesh'];
    o.deployTargets = 10;
    o.samples = { openssl: 20, x509: 40, ceilingMs: 300 };
  }
  if (sizes) o.sizes = sizes;
  if (layouts) o.layouts = layouts;
  return o;
}

const say = (line: string) => process.stderr.write(`bench: ${line}\n`);

function must(what: string, r: Measured): Measured {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  return r;
}

/**
 * How many leaves renew would mint at `now`, from `plan --json` (unmeasured): the count renew's rate is computed from.
 */
async function planned(m: BenchMesh, now: Date): Promise<number> {
  const r = must('plan --json', await m.ci(['plan', '--json', '--now', at(now), '--now-ahead']));
  return (JSON.parse(r.stdout) as { mint: unknown[] }).mint.length;
}

/** Renew's TRELLIS_TIMINGS line on stderr (packages/ci/src/timings.ts). */
function timingsLine(stderr: string): {
  ms: Record<string, number>;
  mint?: { leaves: number; threads: number; wallMs: number; signMs: number[] };
} {
  const line = stderr.split('\n').find((l) => l.startsWith('{"trellis":"timings"'));
  if (!line) throw new Error(`renew printed no TRELLIS_TIMINGS line: ${stderr.slice(-500)}`);
  return JSON.parse(line) as ReturnType<typeof timingsLine>;
}

/** Renew's minting phase from its TRELLIS_TIMINGS line; none when it minted in-process (below the pool's threshold). */
export function mintPhase(stderr: string): MintPhase | undefined {
  const m = timingsLine(stderr).mint;
  return (
    m && { leaves: m.leaves, threads: m.threads, seconds: Math.max(...m.signMs) / 1000, wallSeconds: m.wallMs / 1000 }
  );
}

/** The first cert.pem renew left in its output directory (for the profile check), if its layout still has one. */
function someLeaf(dir: string): string | undefined {
  const todo = [dir];
  while (todo.length) {
    const d = todo.shift()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    const cert = entries.find((e) => e.isFile() && e.name === 'cert.pem');
    if (cert) return fs.readFileSync(path.join(d, cert.name), 'utf8');
    todo.push(...entries.filter((e) => e.isDirectory()).map((e) => path.join(d, e.name)));
  }
  return undefined;
}

interface MeshRun {
  layout: Layout;
  services: number;
  dir: string;
  setup: Record<string, { seconds: number; rssMb: number }>;
  rows: CommandRow[];
  leaf?: string;
}

/** Builds one mesh and times every command on it, in the order a fleet lives them. */
async function runMesh(layout: Layout, services: number, o: Options, scratch: string, bins: Bins): Promise<MeshRun> {
  const dir = path.join(scratch, `${layout}-${sizeLabel(services)}`);
  // In the past, so that deploy's installer (which checks releases against the real clock) sees valid leaves and CRLs,
  // and the 49 h step is not in the future.
  const t0 = new Date(Math.floor((Date.now() - 50 * HOUR) / 1000) * 1000);
  const step = (ms: number) => new Date(t0.getTime() + ms);
  const every = o.deployTargets === 'all' ? 1 : Math.max(1, Math.ceil(services / o.deployTargets));
  say(`${layout} ${sizeLabel(services)}: building the mesh in ${dir}`);
  const m = await buildMesh(dir, { services, layout, now: t0, deploy: { every }, bins });
  const rows: CommandRow[] = [];
  const row = (
    command: CommandRow['command'],
    r: Measured,
    count?: number,
    extra: Pick<CommandRow, 'tscSeconds' | 'mint' | 'phasesMs'> = {},
  ) => {
    rows.push({
      layout,
      services,
      command,
      seconds: r.seconds,
      rssMb: r.rssMb,
      ...(count !== undefined ? { count } : {}),
      ...extra,
    });
    const mint = extra.mint ? `; mint phase ${extra.mint.seconds.toFixed(2)} s` : '';
    const tsc = extra.tscSeconds ? `; tsc build ${extra.tscSeconds.toFixed(2)} s` : '';
    say(
      `${layout} ${sizeLabel(services)}: ${command} ${r.seconds.toFixed(2)} s, ${r.rssMb.toFixed(0)} ` +
        `MB${count !== undefined ? `, ${count}` : ''}${mint}${tsc}`,
    );
  };
  const ci = async (what: string, args: string[], now: Date, c: Parameters<BenchMesh['ci']>[1] = {}) =>
    must(`${layout} ${sizeLabel(services)} ${what}`, await m.ci([...args, '--now', at(now), '--now-ahead'], c));
  const renew = async (command: CommandRow['command'], now: Date, count: number) => {
    const r = await ci('renew', ['renew'], now, { extra: { TRELLIS_TIMINGS: '1' } });
    const mint = mintPhase(r.stderr);
    row(command, r, count, { ...(mint ? { mint } : {}), phasesMs: timingsLine(r.stderr).ms });
  };
  // A row that changes nothing, timed again with the tsc build as a reference (the release build is what users run).
  const read = async (command: CommandRow['command'], args: string[], now: Date) => {
    const r = await ci(command, args, now);
    const tsc = o.cli === 'release' ? await ci(`${command} (tsc build)`, args, now, { bins: TSC_BINS }) : undefined;
    row(command, r, command === 'renew-none' ? 0 : undefined, tsc ? { tscSeconds: tsc.seconds } : {});
  };

  const cold = step(60_000);
  const fresh = await planned(m, cold);
  if (fresh !== services) throw new Error(`plan expects ${fresh} new leaves, the mesh has ${services} services`);
  await renew('renew-cold', cold, fresh);
  const leaf = someLeaf(path.join(m.store, '.trellis', 'out'));

  const later = step(120_000);
  const none = await planned(m, later);
  if (none !== 0) throw new Error(`plan expects ${none} leaves due two minutes after the first renew`);
  await read('renew-none', ['renew'], later);
  await read('verify', ['verify'], later);
  await read('status', ['status'], later);
  await read('plan', ['plan'], later);
  row('deploy', await ci('deploy', ['deploy', '--type', 'dir'], later), m.deployTargets);

  const third = step(49 * HOUR);
  const due = await planned(m, third);
  if (due !== m.shortTtl)
    throw new Error(`plan expects ${due} leaves due at +49 h, the mesh has ${m.shortTtl} services with ttl 72h`);
  await renew('renew-third', third, due);

  const setup = Object.fromEntries(
    Object.entries(m.setup).map(([k, v]) => [k, { seconds: v.seconds, rssMb: v.rssMb }]),
  );
  if (!o.keep) fs.rmSync(dir, { recursive: true, force: true });
  return { layout, services, dir, setup, rows, ...(leaf ? { leaf } : {}) };
}

/** The line above the table saying what `s` timed. */
export const CLI_LABEL = {
  release:
    'cli: the single-file release (node trellis-ci.mjs, built by scripts/dist/build.mjs at the start: what the ' +
    'GitHub Action and releases run); "s, tsc build": node packages/ci/dist/main.js on the same store',
  tsc: 'cli: the tsc build (node packages/ci/dist/main.js)',
} as const;

const NODE_TS = [process.execPath, '--import', 'tsx'] as const;

/** One round of the four baselines; the runner takes the best of two rounds (before and after the meshes). */
async function runBaselines(
  o: Options,
  dir: string,
  tbsBytes: number,
  threads: number,
): Promise<{ rows: BaselineRow[]; samples: Record<string, string> }> {
  const issuer = { cert: path.join(dir, 'issuer.pem'), key: path.join(dir, 'issuer.key') };
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  const scratch = fs.mkdtempSync(path.join(dir, 'round-'));
  const rows: BaselineRow[] = [];
  const samples: Record<string, string> = {};

  const ossl = must(
    'openssl loop',
    await measure('bash', ['-c', opensslLoop(o.samples.openssl, issuer, scratch)], { env }),
  );
  samples.openssl = fs.readFileSync(path.join(scratch, 'cert-0.pem'), 'utf8');
  rows.push({
    baseline: 'openssl',
    label: 'openssl req -x509 -CA, a process per leaf',
    count: o.samples.openssl,
    seconds: ossl.seconds,
    rssMb: ossl.rssMb,
  });

  const node = async (what: string, args: string[]) => {
    const r = must(
      what,
      await measure(NODE_TS[0], [...NODE_TS.slice(1), path.join(REPO, 'scripts/bench/baselines.ts'), ...args], {
        env,
        cwd: REPO,
      }),
    );
    return { r, out: JSON.parse(r.stdout) as { n: number; seconds: number; threads?: number; sample?: string } };
  };
  const x = await node('x509 baseline', ['x509', String(o.samples.x509), dir]);
  samples.x509 = x.out.sample!;
  rows.push({
    baseline: 'x509',
    label: '@peculiar/x509 naive, in-process',
    count: x.out.n,
    seconds: x.out.seconds,
    rssMb: x.r.rssMb,
  });
  for (const t of [1, threads]) {
    const c = await node('ceiling', ['ceiling', String(o.samples.ceilingMs), String(t), String(tbsBytes), dir]);
    rows.push({
      baseline: t === 1 ? 'ceiling-1' : 'ceiling-all',
      label: `node:crypto keygen + sign, ${t === 1 ? '1 thread' : 'every core'}`,
      count: c.out.n,
      seconds: c.out.seconds,
      rssMb: c.r.rssMb,
      threads: t,
    });
  }
  fs.rmSync(scratch, { recursive: true, force: true });
  return { rows, samples };
}

/** The DER length of a certificate's TBSCertificate (the ceiling signs a buffer of that size). */
function tbsLength(pem: string): number {
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const header = (at: number): { len: number; head: number } => {
    const b = der[at + 1]!;
    if (b < 0x80) return { len: b, head: 2 };
    const n = b & 0x7f;
    return { len: der.subarray(at + 2, at + 2 + n).reduce((a, v) => a * 256 + v, 0), head: 2 + n };
  };
  const outer = header(0);
  const inner = header(outer.head);
  return inner.head + inner.len;
}

/**
 * What "the same leaf profile" means here: key and signature algorithm, extensions with their criticality, lifetime in
 * whole days.
 */
async function profileOf(pem: string): Promise<string> {
  const req = createRequire(path.join(REPO, 'packages/core/package.json'));
  await import(req.resolve('reflect-metadata'));
  const x509 = (await import(req.resolve('@peculiar/x509'))) as typeof import('@peculiar/x509');
  const c = new x509.X509Certificate(pem);
  const exts = c.extensions.map((e: { type: string; critical: boolean }) => `${e.type}${e.critical ? '!' : ''}`).sort();
  const days = Math.round((c.notAfter.getTime() - c.notBefore.getTime()) / 86_400_000);
  return `${JSON.stringify(c.publicKey.algorithm)} ${JSON.stringify(c.signatureAlgorithm)} ${exts.join(',')} ${days}d`;
}

function machine(): Record<string, string | number> {
  const cpu = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  return {
    nproc: os.availableParallelism(),
    cpu,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    load: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
  };
}

async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-'));
  // An interrupted run leaves no process and no mesh behind (big ones are gigabytes of small files).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      stopRunning();
      if (!o.keep) fs.rmSync(scratch, { recursive: true, force: true });
      process.exit(130);
    });
  }
  const threads = os.availableParallelism();
  const started = new Date();
  const mach = machine();
  say(`scratch ${scratch}; ${mach.nproc} cores, ${mach.cpu}, node ${mach.node}, load ${mach.load}`);
  // The release build users run, from this checkout's sources (scripts/dist/build.mjs, as pnpm dist makes it).
  let bins = TSC_BINS;
  if (o.cli === 'release') {
    const releaseDir = path.join(scratch, 'release');
    say(`building the release into ${releaseDir}`);
    const { buildRelease } = (await import(path.join(REPO, 'scripts/dist/build.mjs'))) as {
      buildRelease: (out: string) => Promise<unknown>;
    };
    await buildRelease(releaseDir);
    bins = releaseBins(releaseDir);
  }
  const issuerDir = path.join(scratch, 'baseline');
  makeIssuer(issuerDir);
  // A TBS the size of a trellis leaf's (measured on the first mesh's leaf for the second round; 500 bytes until then).
  let tbs = 500;
  say('baselines, round 1');
  const first = await runBaselines(o, issuerDir, tbs, threads);
  const meshes: MeshRun[] = [];
  for (const services of o.sizes)
    for (const layout of o.layouts) meshes.push(await runMesh(layout, services, o, scratch, bins));
  const leaf = meshes.find((m) => m.leaf)?.leaf;
  if (leaf) tbs = tbsLength(leaf);
  say('baselines, round 2');
  const second = await runBaselines(o, issuerDir, tbs, threads);

  // The comparison is fair only if every path minted the same kind of leaf.
  let profile = 'no trellis leaf found in the output directory: the profile was not compared';
  if (leaf) {
    const want = await profileOf(leaf);
    for (const [who, pem] of Object.entries(first.samples)) {
      const got = await profileOf(pem);
      if (got !== want) throw new Error(`the ${who} baseline's leaf differs from trellis's: ${got} vs ${want}`);
    }
    profile = `same leaf profile checked: ${want}`;
  }

  const baselines = [...first.rows, ...second.rows];
  const order = ['openssl', 'x509', 'ceiling-1', 'ceiling-all'] as const;
  // The faster round of each: other load on the machine only ever slows a baseline down, and a faster baseline makes
  // trellis's ratios the harder ones.
  const best = order.map((b) =>
    baselines.filter((x) => x.baseline === b).reduce((p, x) => (x.count / x.seconds > p.count / p.seconds ? x : p)),
  );
  const rows = judge(
    meshes.flatMap((m) => m.rows),
    best,
    { sampledDeploy: o.deployTargets !== 'all' },
  );
  const table = renderTable(best, rows, threads);
  process.stdout.write(
    `trellis bench, ${started.toISOString()}: ${mach.nproc} cores (${mach.cpu}), ${mach.memoryGiB} GiB, node ` +
      `${mach.node}, load at start ${mach.load}\n`,
  );
  process.stdout.write(`${CLI_LABEL[o.cli]}\n${table}\n`);
  process.stdout.write(`baselines: the faster of two rounds (before and after the meshes). ${profile}\n`);
  if (o.json) {
    fs.writeFileSync(
      o.json,
      `${JSON.stringify(
        {
          started: started.toISOString(),
          machine: mach,
          options: o,
          tbsBytes: tbs,
          baselines,
          rows,
          setup: meshes.map((m) => ({ layout: m.layout, services: m.services, ...m.setup })),
          profile,
        },
        null,
        2,
      )}\n`,
    );
  }
  if (o.keep) say(`kept ${scratch}`);
  else fs.rmSync(scratch, { recursive: true, force: true });
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(e instanceof UsageError ? 2 : 1);
    },
  );
}
