import fs from 'node:fs';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import {
  TrellisError,
  advancePhases,
  awaitingRetire,
  collisionRefusal,
  describeCollision,
  assertShardWrites,
  nodeCryptoSeam,
  planRenew,
  planHostKeys,
  renewScopes,
  renewTouched,
  scopeCrlStaleness,
  scopeDef,
  custodyRefusal,
  staleBundleFiles,
  hostKeyRequests,
  type FileWrite,
  type HostKeyRequest,
  type Mesh,
  type PhaseStep,
  type RenewPlan,
  type RenewResult,
  type ScopeKeys,
  type CryptoSeam,
} from '@trellis/core';
import { loadMesh, type Store } from '@trellis/core/store';
import { actor, clock, withStore } from '@trellis/core/shell';
import { openScopeKeys, outputFailure, scopeOutput, scopesInOutput, writeLeafOutput } from '../issue.js';
import { mintPool, type MintPool } from '../mint-pool.js';
import { outputBarrier } from '../out-write.js';
import { NO_PROGRESS, PROGRESS_MIN_LEAVES, progressFor, progressMode, type Progress } from '../progress.js';
import { prepareOutDir } from '../out-dir.js';
import { ciIdentities } from '../signer.js';
import { withRenewMetrics } from '../renew-metrics.js';
import { timingsFor, type Timings } from '../timings.js';

interface Args {
  store?: string;
  scope?: string;
  shard?: boolean;
  force?: boolean;
  dryRun?: boolean;
  out?: string;
  now?: string;
  metrics?: string;
  quiet?: boolean;
  progress?: boolean;
}

export const renew: CommandModule<object, Args> = {
  command: 'renew',
  describe:
    'Advance rotation phases whose gates are met; mint the leaves that are due, new, or from a retired ' +
    'intermediate; refresh leaf CRLs and bundles',
  builder: (y) =>
    y
      .option('scope', { type: 'string', describe: 'only this scope' })
      .option('shard', {
        type: 'boolean',
        describe:
          "with --scope: write only the scope's own files (not its trust bundles); trellis-ci compose writes " +
          'those after the shards merge',
      })
      .option('force', { type: 'boolean', describe: 'mint every leaf whether due or not' })
      .option('dry-run', { type: 'boolean', describe: 'print the plan and stop' })
      .option('out', { type: 'string', describe: 'where leaves are written (default <store>/.trellis/out)' })
      .option('metrics', {
        type: 'string',
        describe:
          'after the run, success or failure, write its time, result and leaves minted to FILE (node-exporter ' +
          'textfile, atomically)',
      })
      .option('progress', {
        type: 'boolean',
        describe:
          `show progress on stderr even below ${PROGRESS_MIN_LEAVES} leaves (a bar on a terminal, a line every 5 ` +
          `s otherwise)`,
      })
      .option('quiet', { type: 'boolean', describe: 'no progress on stderr' })
      .example('$0 renew', 'the scheduled CI job')
      .example('$0 renew --scope us-east-1 --force', 're-mint one scope')
      .example('$0 renew --scope us-east-1 --shard', 'one job of a CI matrix over scopes (docs/sharding.md)') as never,
  // A dry run is not a run to record.
  handler: (a) => withRenewMetrics(a.dryRun ? undefined : a.metrics, a.now, () => runRenew(a), a.store),
};

function renderPlan(plan: RenewPlan): string {
  const lines = plan.mint.map((i) => `mint ${i.scope}/${i.service} (${i.reason})`);
  for (const s of plan.pending) lines.push(`skip ${s}: pending its offline intermediate ceremony`);
  for (const h of plan.held)
    lines.push(`hold ${h.scope}/${h.service}: ${h.collisions.map(describeCollision).join('; ')}`);
  for (const h of plan.custody) lines.push(`hold ${h.scope}/${h.service}: ${h.why}`);
  if (!plan.mint.length) lines.push('no leaf is due');
  return `${lines.join('\n')}\n`;
}

async function runRenew(a: Args): Promise<RenewResult | undefined> {
  if (a.quiet && a.progress)
    throw new TrellisError('usage', '--quiet and --progress contradict each other', { hint: 'give one of them' });
  const mode = progressMode({ quiet: a.quiet, isTTY: Boolean(process.stderr.isTTY) });
  let progress: Progress = NO_PROGRESS;
  const timings = timingsFor('renew');
  return withStore(a.store, async (store) => {
    const out = path.resolve(a.out ?? path.join(store.dir, '.trellis', 'out'));
    if (a.shard && !a.scope)
      throw new TrellisError('usage', '--shard needs --scope: a shard is one scope', {
        hint: 'trellis-ci renew --scope S --shard (docs/sharding.md)',
      });
    // Workers sign and write leaves on every core; the bar follows what they have done.
    const pool = mintPool((n) => progress.tick(n), { outDir: out, timings });
    try {
      return await renewStore(
        store,
        {
          now: clock(a.now),
          scope: a.scope,
          shard: a.shard,
          force: a.force,
          dryRun: a.dryRun,
          out,
          defaultOutOf: a.out ? undefined : store.dir,
          pool,
          progress: (total) => (progress = progressFor(mode, total, Boolean(a.progress))),
          timings,
        },
        (mesh) => ciIdentities(mesh, a.scope ? [a.scope] : undefined),
        (line) =>
          process.stdout.write(`${line}
`),
      );
    } finally {
      progress.stop();
      await pool.close();
    }
  }).then((r) => {
    if (timings) process.stderr.write(timings.line());
    return r;
  });
}

const WORKER_MIN_LEAVES = 256;

/**
 * Brings the scope files of the output's existing scope directories to their release; no leaf is written, so no key is
 * needed.
 */
function refreshOutput(
  o: RenewOptions,
  storeDir: string,
  mesh: Mesh,
  scopes: string[],
  say: (line: string) => void,
): void {
  if (!fs.existsSync(o.out)) return;
  const present = scopesInOutput(o.out, scopes);
  if (!present.length) return;
  const note = prepareOutDir(o.out, { store: o.defaultOutOf, storeDir });
  if (note) say(note.trimEnd());
  try {
    const written = present.flatMap((s) => scopeOutput(mesh, s, o.out));
    outputBarrier(o.out, written);
  } catch (e) {
    throw outputFailure(e, o.out);
  }
}

export interface RenewOptions {
  now: Date;
  scope?: string;
  force?: boolean;
  dryRun?: boolean;
  out: string;
  /** One job of a matrix over scopes: only the scope's own files; trust bundles are left to compose. */
  shard?: boolean;
  /** The store whose default output directory `out` is (its link-free path is checked); unset for an explicit --out. */
  defaultOutOf?: string;
  /** Who signs (and writes) large batches of leaves: trellis-ci's worker threads; in-process when unset. */
  pool?: Pick<MintPool, 'sign' | 'writesLeafFiles'> & Partial<Pick<MintPool, 'warm'>>;
  /** The progress of signing `total` leaves; told nothing when unset. */
  progress?: (total: number) => Progress;
  /** TRELLIS_TIMINGS: each phase marked as it ends (timings.ts). */
  timings?: Timings;
  /** Every signature's and key's; nodeCryptoSeam unless a test counts (the pool, when used, signs its leaf batches). */
  seam?: CryptoSeam;
}

/**
 * The whole of renew on a locked store: phases, plan, keys, mint, output, commit. The model-based test calls it
 * in-process.
 * A collision (uniqueness.ts) holds its services and fails the run (exit 2) only after every other service was renewed.
 */
export async function renewStore(
  store: Store,
  o: RenewOptions,
  identities: (mesh: Mesh) => Promise<string[]>,
  say: (line: string) => void,
): Promise<RenewResult | undefined> {
  let planned: RenewPlan | undefined;
  const result = await renewPlanned(store, o, identities, say, (plan) => (planned = plan));
  const refusal = collisionRefusal(planned?.collisions ?? [], o.dryRun ? 'renew would hold' : 'renew held');
  if (refusal) throw refusal;
  const held = custodyRefusal(planned?.custody ?? [], o.dryRun ? 'renew would hold' : 'renew held');
  if (held) throw held;
  return result;
}

/**
 * What a renew will do, computed once for renew and for plan (so plan is exactly renew --dry-run):
 * the phase steps whose gates are met, then, on the store as they leave it, the leaves to mint,
 * the CRLs to re-sign and the bundles to rewrite.
 */
export interface RenewOutlook {
  scopes: string[];
  phases: { writes: FileWrite[]; steps: PhaseStep[] };
  mesh: Mesh;
  plan: RenewPlan;
  staleCrls: Map<string, string>;
  staleBundles: FileWrite[];
  /** The checked request of every `key: host` service of the run's scopes. */
  hostKeys: Map<string, HostKeyRequest>;
}

export async function renewOutlook(
  store: Store,
  o: Pick<RenewOptions, 'now' | 'scope' | 'force' | 'shard' | 'timings'>,
): Promise<RenewOutlook> {
  const { now } = o;
  const before = loadMesh(store);
  const scopes = o.scope ? [scopeDef(before, o.scope).name] : before.scopes.map((s) => s.name);
  const phases = advancePhases(before, scopes, now, actor());
  // Everything after this is planned on the store as the phase steps leave it.
  const mesh = phases.writes.length ? loadMesh(store.withPending(phases.writes)) : before;
  o.timings?.mark('load');
  // Before any key is opened: a bad request refuses the run with the store untouched.
  const hostKeys = await hostKeyRequests(mesh, scopes);
  const plan = planHostKeys(mesh, planRenew(mesh, now, { scope: o.scope, force: o.force }), hostKeys);
  const staleCrls = new Map<string, string>();
  // A scope a pull request deleted stays in global's bundles until its retire ceremony, so its CRLs must stay current
  // too (a whole-mesh run keeps them).
  const crlScopes = [
    ...scopes.filter((x) => mesh.material.get(x)!.intermediate),
    ...(o.scope ? [] : awaitingRetire(mesh)),
  ];
  for (const s of crlScopes) {
    const why = await scopeCrlStaleness(mesh, s, now);
    if (why) staleCrls.set(s, why);
  }
  // Only this run's scopes: a CI job sharded by scope touches its own files.
  const staleBundles = o.shard ? [] : staleBundleFiles(mesh, scopes, (p) => store.read(p));
  return { scopes, phases, mesh, plan, staleCrls, staleBundles, hostKeys };
}

/** The outlook as renew and plan print it. */
export function renderOutlook(x: Pick<RenewOutlook, 'phases' | 'plan' | 'staleCrls'>): string {
  return [
    ...x.phases.steps.map((p) => `phase ${p.scope}: ${p.step}`),
    renderPlan(x.plan).trimEnd(),
    ...[...x.staleCrls].map(([s, why]) => `crl ${s}: re-sign (${why})`),
  ].join('\n');
}

async function renewPlanned(
  store: Store,
  o: RenewOptions,
  identities: (mesh: Mesh) => Promise<string[]>,
  say: (line: string) => void,
  planned: (plan: RenewPlan) => void,
): Promise<RenewResult | undefined> {
  const { now, timings: t } = o;
  const outlook = await renewOutlook(store, o);
  const { scopes, phases, mesh, plan, staleCrls, staleBundles } = outlook;
  planned(plan);
  const tell = () => say(renderOutlook(outlook));
  t?.mark('plan');
  const touched = renewTouched({ plan, phases, staleCrls, staleBundles });
  if (o.dryRun || !touched.length) {
    tell();
    // A ceremony (a rotation's publish) changed the release with nothing left for renew to sign: the output follows it.
    if (!o.dryRun) refreshOutput(o, store.dir, mesh, scopes, say);
    return undefined;
  }

  if (plan.mint.length >= WORKER_MIN_LEAVES) o.pool?.warm?.(); // the threads load while the keys are opened
  // Every write signs a scope-ledger entry with the scope's intermediate: the CI identity is needed whenever anything
  // is written.
  const ids = await identities(mesh);
  // Only now: "mint …" printed by a run that then lacks its identity would read as done.
  tell();
  // It holds plaintext leaf keys: 0700, ours, not a link.
  const note =
    plan.mint.length || (fs.existsSync(o.out) && scopesInOutput(o.out, scopes).length)
      ? prepareOutDir(o.out, { store: o.defaultOutOf, storeDir: store.dir })
      : undefined;
  if (note) say(note.trimEnd());
  const seam = o.seam ?? nodeCryptoSeam;
  const keys = new Map<string, ScopeKeys>();
  for (const s of touched) keys.set(s, await openScopeKeys(mesh, s, ids, seam));
  t?.mark('keys');
  const progress = o.progress?.(plan.mint.length) ?? NO_PROGRESS;
  progress.start(plan.mint.length);
  // Below a few hundred leaves, starting threads costs more than it saves.
  const pool = plan.mint.length >= WORKER_MIN_LEAVES ? o.pool : undefined;
  const result = await renewScopes({
    mesh,
    plan,
    phases,
    staleCrls,
    staleBundles,
    keys,
    now,
    actor: actor(),
    // The pool is the seam's leaf signer on worker threads; every other signature stays on this one.
    seam: pool ? { ...seam, signLeafBatch: pool.sign } : seam,
    hostKeys: outlook.hostKeys,
  }).catch((e) => {
    // A worker that could not write a leaf file fails as the main thread's write would have.
    throw typeof (e as NodeJS.ErrnoException).path === 'string' && (e as NodeJS.ErrnoException).path!.startsWith(o.out)
      ? outputFailure(e, o.out)
      : e;
  });
  if (!pool) progress.tick(result.count);
  // Before any output: a shard that would write another scope's file writes nothing.
  if (o.shard) assertShardWrites(scopes[0]!, result.writes);
  t?.mark('procedures');
  // The output holds each scope's release as this run leaves the store (a stale trust.pem there once lacked a published
  // intermediate).
  const after = loadMesh(store.withPending(result.writes));
  const written = result.minted.flatMap((m) =>
    writeLeafOutput(mesh, after, m.scope, m.leaves, o.out, { leafFiles: !pool?.writesLeafFiles }),
  );
  const minted = new Set(result.minted.filter((m) => m.leaves.length).map((m) => m.scope));
  try {
    for (const s of scopesInOutput(
      o.out,
      scopes.filter((x) => !minted.has(x)),
    ))
      written.push(...scopeOutput(after, s, o.out));
  } catch (e) {
    throw outputFailure(e, o.out);
  }
  // One durability barrier for every leaf written, before the store records any of them.
  outputBarrier(o.out, written);
  t?.mark('write');
  store.commit(result.writes);
  t?.mark('ledger');
  const count = result.count;
  const crls = staleCrls.size ? `; re-signed ${staleCrls.size} scope CRL file(s)` : '';
  const bundles = staleBundles.length ? `; refreshed ${staleBundles.length} bundle file(s)` : '';
  say(`minted ${count} ${count === 1 ? 'leaf' : 'leaves'}${count ? ` into ${o.out}` : ''}${crls}${bundles}`);
  return result;
}
