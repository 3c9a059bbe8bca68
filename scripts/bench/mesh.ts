/**
 * A synthetic mesh of any size, built with the real CLIs the way an operator
 * builds one: `trellis-root init`, scope files as a pull request would add
 * them, `trellis-root intermediate --pending` with the root identity, and
 * (for deploy) a `dir` allow-list in trellis.yaml confirmed with
 * `trellis-root confirm`. For the benchmark, and for tests or scripts that
 * need a big store.
 *
 *   const m = await buildMesh('/tmp/x', { services: 10_000, now: new Date() });
 *   await m.ci(['renew', '--now', at(m.now), '--now-ahead']);
 */
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { measure, type Measured } from './measure.js';

export const REPO = path.resolve(import.meta.dirname, '../..');
const ROOT_BIN = path.join(REPO, 'packages/offline/dist/main.js');
const CI_BIN = path.join(REPO, 'packages/ci/dist/main.js');

/**
 * Which build of the CLIs runs: the tsc build in the workspace (`pnpm run build`), or a single-file release (`pnpm
 * dist`, what the action and releases run).
 */
export interface Bins {
  root: string;
  ci: string;
}
export const TSC_BINS: Bins = { root: ROOT_BIN, ci: CI_BIN };
/** The CLIs of a release built into `dir` by scripts/dist/build.mjs. */
export const releaseBins = (dir: string): Bins => ({
  root: path.join(dir, 'trellis-root.mjs'),
  ci: path.join(dir, 'trellis-ci.mjs'),
});

/**
 * `mesh`: global + `regions` regions sharing the services evenly; `single`: the same scopes, one region holding every
 * service (the rest empty).
 */
export type Layout = 'mesh' | 'single';

export interface MeshOptions {
  services: number;
  layout?: Layout;
  /** Regions beside global (default 20). */
  regions?: number;
  /** When the offline steps run (their --now); leaves are minted at or after it. */
  now: Date;
  /**
   * A `dir` deploy target for every service (or every `every`-th one), its allow-list in trellis.yaml confirmed
   * (default true).
   */
  deploy?: boolean | { every: number };
  /**
   * Every `shortTtlEvery`-th service has `ttl: 72h` (the rest the 7d default), so stepping --now 49 h makes exactly
   * those due (default 3; 0: none).
   */
  shortTtlEvery?: number;
  /** Also run the first renew at `now` (default false: the benchmark times that one itself). */
  leaves?: boolean;
  /** The CLIs to run (default the tsc build). */
  bins?: Bins;
}

export interface BenchMesh {
  /** The directory holding the store, the identities and the deploy targets. */
  base: string;
  store: string;
  rootIdentityFile: string;
  ciIdentityFile: string;
  /** Where the `dir` targets deploy to: targets/<scope>/<service>. */
  targets: string;
  now: Date;
  layout: Layout;
  /** Scope name → its service names. */
  scopes: Record<string, string[]>;
  services: number;
  /** Services with the short ttl: what a renew 49 h after the first must mint. */
  shortTtl: number;
  /** Services with a dir target. */
  deployTargets: number;
  /** Each setup step, measured (seconds, peak RSS). */
  setup: Record<string, Measured>;
  root(args: string[]): Promise<Measured>;
  /** trellis-ci with the mesh's CI environment, `extra` added to it; `bins` overrides the mesh's own. */
  ci(args: string[], o?: { extra?: Record<string, string>; bins?: Bins }): Promise<Measured>;
}

/** RFC 3339 to the second, as --now takes it. */
export const at = (t: Date): string => t.toISOString().replace(/\.\d+Z$/, 'Z');

const SHORT_TTL = '72h';

function regionName(i: number): string {
  return `region-${String(i + 1).padStart(2, '0')}`;
}

/** Which services go to which scope: evenly (the first scopes take the remainder) or all in one region. */
export function distribute(services: number, layout: Layout, regions: number): Record<string, string[]> {
  const names = ['global', ...Array.from({ length: regions }, (_, i) => regionName(i))];
  const width = Math.max(5, String(services).length);
  const svc = (i: number) => `svc-${String(i).padStart(width, '0')}`;
  const out: Record<string, string[]> = Object.fromEntries(names.map((n) => [n, [] as string[]]));
  if (layout === 'single') {
    out[names[1] ?? 'global'] = Array.from({ length: services }, (_, i) => svc(i));
    return out;
  }
  for (let i = 0; i < services; i++) out[names[i % names.length]!]!.push(svc(i));
  return out;
}

function env(extra: Record<string, string>): Record<string, string | undefined> {
  return { PATH: process.env.PATH, HOME: process.env.HOME, TRELLIS_ACTOR: 'bench', ...extra };
}

export async function buildMesh(base: string, o: MeshOptions): Promise<BenchMesh> {
  const layout = o.layout ?? 'mesh';
  const bins = o.bins ?? TSC_BINS;
  const every = o.shortTtlEvery ?? 3;
  const withDeploy = o.deploy !== false;
  const deployEvery = typeof o.deploy === 'object' ? Math.max(1, o.deploy.every) : 1;
  fs.mkdirSync(base, { recursive: true });
  const store = path.join(base, 'store');
  const rootIdentityFile = path.join(base, 'root.identity');
  const ciIdentityFile = path.join(base, 'ci.identity');
  const targets = path.join(base, 'targets');
  const rootEnv = env({ TRELLIS_ALLOW_ONLINE: '1', TRELLIS_ROOT_IDENTITY_FILE: rootIdentityFile });
  const ciEnv = env({ CI: 'true', TRELLIS_CI_IDENTITY_FILE: ciIdentityFile });
  const setup: Record<string, Measured> = {};
  const must = (step: string, r: Measured): Measured => {
    if (r.code !== 0) throw new Error(`mesh ${step} failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
    setup[step] = r;
    return r;
  };
  const now = ['--now', at(o.now), '--now-ahead'];

  // init without the root identity in its environment: it generates one and prints it once.
  const init = must(
    'init',
    await measure(
      'node',
      [
        bins.root,
        'init',
        '--store',
        store,
        '--mesh',
        'bench',
        '--trust-domain',
        'mesh.example',
        '--ci-identity-out',
        ciIdentityFile,
        ...now,
      ],
      { env: env({ TRELLIS_ALLOW_ONLINE: '1' }), cwd: base },
    ),
  );
  fs.writeFileSync(rootIdentityFile, init.stdout, { mode: 0o600 });

  const scopes = distribute(o.services, layout, o.regions ?? 20);
  let shortTtl = 0;
  let deployTargets = 0;
  let index = 0;
  for (const [scope, names] of Object.entries(scopes)) {
    const services: Record<string, Record<string, unknown>> = {};
    for (const name of names) {
      const s: Record<string, unknown> = {};
      if (every > 0 && index % every === every - 1) {
        s.ttl = SHORT_TTL;
        shortTtl++;
      }
      if (withDeploy && index % deployEvery === 0) {
        s.deploy = [{ type: 'dir', path: path.join(targets, scope, name) }];
        deployTargets++;
      }
      services[name] = s;
      index++;
    }
    fs.writeFileSync(
      path.join(store, 'scopes', `${scope}.yaml`),
      stringify({ kind: scope === 'global' ? 'global' : 'region', services }),
    );
  }

  const root = (args: string[]) => measure('node', [bins.root, '--store', store, ...args], { env: rootEnv, cwd: base });
  const ci = (args: string[], c: { extra?: Record<string, string>; bins?: Bins } = {}) =>
    measure('node', [(c.bins ?? bins).ci, '--store', store, ...args], { env: { ...ciEnv, ...c.extra }, cwd: base });
  must('intermediate --pending', await root(['intermediate', '--pending', ...now]));
  if (withDeploy) {
    fs.mkdirSync(targets, { recursive: true });
    const file = path.join(store, 'trellis.yaml');
    fs.writeFileSync(
      file,
      `${fs.readFileSync(file, 'utf8').trimEnd()}\n${stringify({ deploy: { dir: { paths: [targets] } } })}`,
    );
    must('confirm', await root(['confirm', ...now]));
  }
  if (o.leaves) must('renew', await ci(['renew', ...now]));
  return {
    base,
    store,
    rootIdentityFile,
    ciIdentityFile,
    targets,
    now: o.now,
    layout,
    scopes,
    services: o.services,
    shortTtl,
    deployTargets,
    setup,
    root,
    ci,
  };
}
