import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import {
  TrellisError,
  appendToLedger,
  collisionRefusal,
  describeCollision,
  heldServices,
  meshCollisions,
  releaseCrlGaps,
  ledgerSigner,
  readIdentities,
  describeRelease,
  describeTarget,
  iso,
  keyMatchesCert,
  mergeWrites,
  parseCertificate,
  paths,
  releaseFor,
  jvmReleaseFiles,
  quoteInput,
  requireConfirmedAllowList,
  resolveDeployTargets,
  scopeDef,
  sealRelease,
  serviceDnsName,
  DEPLOY_RECORD_OP,
  onRecord,
  recordFor,
  recordedRelease,
  recordedReleases,
  releaseDigest,
  scopeLedgerTrust,
  type RecordedTarget,
  type DeployTarget,
  type FileWrite,
  type LeafFiles,
  type Mesh,
  type Release,
  type SigningIntermediate,
  nodeCryptoSeam,
  type CryptoSeam,
} from '@trellis/core';
import {
  loadMesh,
  writeOutFile,
  checkOutDir,
  checkOutFile,
  assertOutsideTrackedTree,
  type Store,
  readBounded,
  READ_LIMITS,
} from '@trellis/core/store';
import { actor, clock, withStore } from '@trellis/core/shell';
import { wipeOutDir } from '../out-dir.js';
import { PKCS12_PASSWORD_ENV, pkcs12Password } from '../pkcs12-password.js';
import { ciIdentities, openIntermediate } from '../signer.js';
// The agent's installer, the targets' execa and the handshake check load when a delivery needs them: every other
// command starts without them.

const TARGET_TYPES = ['dir', 'ssh', 'kubernetes', 'sealed'] as const;

interface Args {
  store?: string;
  scope?: string;
  type?: (typeof TARGET_TYPES)[number][];
  from?: string;
  canary?: number;
  sealedOut?: string;
  manifests?: string;
  wipeOut?: boolean;
  recordOnly?: boolean;
  recorded?: boolean;
  pkcs12PasswordFile?: string;
  now?: string;
}

export const deploy: CommandModule<object, Args> = {
  command: 'deploy',
  describe: "Ship each service's release (leaf, key, chain, trust bundle, CRLs) to its deploy targets",
  builder: (y) =>
    y
      .option('scope', { type: 'string', describe: 'only this scope' })
      .option('type', {
        type: 'string',
        array: true,
        choices: TARGET_TYPES,
        describe:
          'only targets of these types: seal in a CI step that holds the CI identity (--type sealed, which ' +
          'runs no command), the rest in one that does not',
      })
      .option('from', {
        type: 'string',
        describe:
          'where renew wrote leaves (default <store>/.trellis/out); services without a new leaf get trust and ' +
          'CRL updates only',
      })
      .option('canary', {
        type: 'number',
        describe:
          'deploy to the first N targets, check a handshake against each (their `check`), stop at the first failure',
      })
      .option('sealed-out', {
        type: 'string',
        describe: 'where sealed releases are written (default <store>/.trellis/sealed)',
      })
      .option('manifests', {
        type: 'string',
        describe: 'where Kubernetes manifests are written (default <store>/.trellis/k8s)',
      })
      .option('wipe-out', {
        type: 'boolean',
        describe:
          'after every target succeeded, delete the leaves (plaintext keys) this deploy shipped from --from; ' +
          'kept when anything failed, so a rerun can retry',
      })
      .option('record-only', {
        type: 'boolean',
        describe:
          "with the CI identity: sign in each scope's ledger what this deploy would ship (each target's " +
          'release digest) and deliver nothing; the keyless step then runs deploy --recorded',
      })
      .option('pkcs12-password-file', {
        type: 'string',
        describe:
          `for deploy entries with formats: [pkcs12]: the store password from FILE (its first line); else from ` +
          `$${PKCS12_PASSWORD_ENV}`,
      })
      .option('recorded', {
        type: 'boolean',
        describe:
          "ship a release only when the scope's ledger recorded it (a signed deploy --record-only entry): for " +
          'the step that holds no CI identity',
      })
      .example('$0 renew && $0 deploy', 'the scheduled CI job')
      .example('$0 deploy --canary 1', 'one target first, checked, then the rest')
      .example('$0 renew && $0 deploy --wipe-out', 'in CI: no plaintext leaf key outlives the job')
      .example('$0 deploy --type sealed', 'the CI step with the CI identity: seals, executes nothing')
      .example(
        '$0 deploy --type dir ssh kubernetes --record-only',
        'the CI step with the CI identity: signs what the next step ships',
      )
      .example(
        '$0 deploy --type dir ssh kubernetes --recorded',
        'the CI step without it: ships only what was signed',
      ) as never,
  handler: (a) => deployStore(a),
};

interface Job {
  scope: string;
  service: string;
  target: DeployTarget;
  /** Where the scope file selected it, for refusals. */
  field: string;
}

interface DeliverContext {
  now: Date;
  storeDir: string;
  sealedOut: string;
  manifestDir: string;
  scratch: string;
  /** The scope's active intermediate, opened with the CI identity before anything ran: it signs sealed releases. */
  signerOf: (scope: string) => SigningIntermediate;
  /** bundles/root/crl.pem: a sealed release carries it, so hosts can refuse a revoked signer. */
  rootCrl: string | undefined;
  /**
   * bundles/<scope>/burned.json, when a standby was activated: sealed with the release so hosts refuse the burned key.
   */
  burnedOf: (scope: string) => string | undefined;
}

interface Outcome {
  job: Job;
  status: 'installed' | 'unchanged' | 'sealed' | 'written' | 'applied' | 'failed' | 'skipped' | 'held';
  detail: string;
}

/** The leaf renew left for this service, if it is the one the issuance record names. */
function leafFrom(mesh: Mesh, from: string, scope: string, service: string): LeafFiles | undefined {
  const dir = path.join(from, scope, service);
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  // A host-held key never reaches CI: its release carries the certificate alone.
  const hostHeld = scopeDef(mesh, scope).services.some((s) => s.name === service && s.key === 'host');
  const files = hostHeld ? ['cert.pem', 'chain.pem'] : ['cert.pem', 'key.pem', 'chain.pem'];
  if (!files.every((f) => fs.existsSync(path.join(dir, f)))) return undefined;
  const cert = read('cert.pem');
  const current = mesh.material.get(scope)?.leaves.get(service);
  // A leaf left over from an older run must never replace the one the record names.
  const parsed = parseCertificate(cert);
  if (!current || parsed.serialNumber !== current.serial) return undefined;
  if (hostHeld) return { cert, chain: read('chain.pem') };
  const key = read('key.pem');
  // The output directory has one durability barrier, not one per file: after a power loss a key may not be its
  // certificate's.
  if (!keyMatchesCert(key, parsed)) {
    throw new TrellisError(
      'output-failed',
      `${path.join(dir, 'key.pem')} is not the key of the certificate beside it (a write cut short?): mint it ` +
        `again with trellis-ci renew --force --scope ${scope}, then deploy`,
    );
  }
  return { cert, key, chain: read('chain.pem') };
}

/** `trellis-ci deploy`; `seam` signs the releases it seals and the ledger entries it records (a test records them). */
export async function deployStore(a: Args, seam: CryptoSeam = nodeCryptoSeam): Promise<void> {
  if (a.canary !== undefined && (!Number.isInteger(a.canary) || a.canary < 1))
    throw new TrellisError('usage', '--canary takes a positive whole number');
  if (a.recordOnly && (a.recorded || a.wipeOut || a.canary !== undefined)) {
    throw new TrellisError(
      'usage',
      `--record-only delivers nothing, so ${a.recorded ? '--recorded' : a.wipeOut ? '--wipe-out' : '--canary'} ` +
        `has nothing to act on`,
      { hint: 'record in the step that holds the CI identity, then deploy --recorded in the next' },
    );
  }
  await withStore(a.store, async (store) => {
    const mesh = loadMesh(store);
    const now = clock(a.now);
    const scopes = a.scope ? [scopeDef(mesh, a.scope)] : mesh.scopes;
    // Pull requests only select: the allow-list must be the custodian's, and every target inside it, before anything
    // runs.
    requireConfirmedAllowList(mesh);
    const selected: Job[] = resolveDeployTargets(mesh, scopes).filter((j) => !a.type || a.type.includes(j.target.type));
    if (!selected.length) {
      process.stdout.write('no service declares a deploy target\n');
      return;
    }
    // A service in a collision (two services in one directory, one Kubernetes object…) gets nothing; the others deploy
    // as usual.
    const heldBy = heldServices(meshCollisions(mesh, onThisRunner));
    const heldOf = (j: Job) => heldBy.get(`${j.scope}/${j.service}`);
    const jobs = selected.filter((j) => !heldOf(j));
    const heldOutcomes: Outcome[] = selected
      .filter((j) => heldOf(j))
      .map((job) => ({
        job,
        status: 'held',
        detail: `not delivered: ${heldOf(job)!.map(describeCollision).join('; ')}`,
      }));
    // Hosts that check CRLs along the chain would refuse every leaf under an anchor whose CRLs the release lacks: ship
    // nothing.
    for (const scope of new Set(jobs.map((j) => j.scope))) {
      const gaps = await releaseCrlGaps(mesh, scope);
      if (gaps.length) {
        throw new TrellisError(
          'verification-failed',
          `the release of ${scope} is not ready for hosts that check CRLs along the chain: ` +
            `${gaps[0]}${gaps.length > 1 ? ` (and ${gaps.length - 1} more)` : ''}; nothing was deployed`,
          {
            file: paths.scopeCrl(scope),
            hint: 'run trellis-ci renew first (it signs the CRLs a ceremony could not), then deploy',
          },
        );
      }
    }
    const canary = a.canary ?? 0;
    const unchecked = jobs.slice(0, canary).filter((j) => !('check' in j.target) || !j.target.check);
    if (unchecked.length)
      throw new TrellisError(
        'usage',
        `canary target ${describeTarget(unchecked[0]!.target)} has no check (an entry of deploy.probe) to run ` +
          `a handshake against`,
        { file: paths.scopeFile(unchecked[0]!.scope) },
      );
    // The CI identity is opened here, before any reload, ssh or kubectl runs, and only when a sealed target needs it;
    // every child gets an environment without it (childEnv).
    // With the identity, every scope's intermediate is opened now: it signs sealed releases and the deploy's ledger
    // entries.
    // A step without it (deploy --type dir ssh kubernetes) writes nothing in the ledger: with --recorded it ships only
    // what the step with it recorded.
    const from = path.resolve(a.from ?? path.join(store.dir, '.trellis', 'out'));
    // The default may not exist (no leaf was minted); a directory named on purpose must, or a typo would ship no leaf
    // at exit 0.
    if (a.from !== undefined && !fs.statSync(from, { throwIfNoEntry: false })?.isDirectory()) {
      throw new TrellisError('usage', `--from ${quoteInput(a.from)} is not a directory`, {
        field: '--from',
        hint: 'name the directory renew --out wrote the leaves to (default <store>/.trellis/out)',
      });
    }
    // formats: [pkcs12] re-encodes what the target gets anyway; the password is the deploy side's, asked for before
    // anything runs.
    const jvmJob = jobs.find((j) => 'formats' in j.target && j.target.formats?.includes('pkcs12'));
    const password = jvmJob
      ? pkcs12Password(
          a.pkcs12PasswordFile,
          '--pkcs12-password-file',
          `${paths.scopeFile(jvmJob.scope)} ${jvmJob.field}.formats: [pkcs12]`,
        )
      : undefined;
    // The promise is what is kept: jobs that ask at once for one release compose it once.
    const releases = new Map<string, Promise<Release>>();
    const compose = async (j: Job, formats: string[]): Promise<Release> => {
      const leaf = leafFrom(mesh, from, j.scope, j.service);
      const base = releaseFor(mesh, j.scope, leaf);
      return formats.includes('pkcs12')
        ? { ...base, ...(await jvmReleaseFiles(mesh, j.scope, j.service, leaf, password!)) }
        : base;
    };
    const releaseOf = (j: Job): Promise<Release> => {
      const formats = ('formats' in j.target && j.target.formats) || [];
      const key = `${j.scope}/${j.service}/${formats.join(',')}`;
      if (!releases.has(key)) releases.set(key, compose(j, formats));
      return releases.get(key)!;
    };
    if (a.recordOnly) return recordOnly(store, mesh, jobs, releaseOf, now, seam, a.scope);
    const signers = new Map<string, SigningIntermediate | TrellisError>();
    const sealedScopes = [...new Set(jobs.filter((j) => j.target.type === 'sealed').map((j) => j.scope))];
    const held = readIdentities('ci', process.env, (p) => readBounded(p, READ_LIMITS.small, { followLink: true }));
    if (sealedScopes.length || held) {
      const ids = await ciIdentities(mesh, a.scope ? [a.scope] : undefined);
      for (const s of new Set(selected.map((j) => j.scope)))
        signers.set(
          s,
          await openIntermediate(mesh, s, ids, 'active', seam).catch((e: unknown) => {
            if (e instanceof TrellisError) return e;
            throw e;
          }),
        );
    }
    const signerOf = (scope: string) => {
      const s = signers.get(scope)!;
      if (s instanceof TrellisError) throw s;
      return s;
    };
    const sealedOut = path.resolve(a.sealedOut ?? path.join(store.dir, '.trellis', 'sealed'));
    const manifestDir = path.resolve(a.manifests ?? path.join(store.dir, '.trellis', 'k8s'));
    // Secrets carry tls.key: the manifests go where git does not commit.
    if (jobs.some((j) => j.target.type === 'kubernetes')) {
      assertOutsideTrackedTree(manifestDir, store.dir, '--manifests');
      checkOutDir(manifestDir, manifestsOut(store.dir, manifestDir), true);
    }
    if (jobs.some((j) => j.target.type === 'sealed')) checkOutDir(sealedOut, sealedOutOf(store.dir, sealedOut), true);
    // Every path a job writes, checked before anything runs: a link below the allowed directory would take the release,
    // key included, outside the allow-list.
    for (const j of jobs) {
      if (j.target.type === 'dir') dirTargetChecks(j, j.target);
      if (j.target.type === 'sealed')
        checkOutFile(sealedFile(sealedOut, j, j.target.host), sealedOutOf(store.dir, sealedOut));
      if (j.target.type === 'kubernetes')
        checkOutFile(manifestFile(manifestDir, j, j.target), manifestsOut(store.dir, manifestDir));
    }
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-deploy-'));
    // --recorded: what the step with the identity signed, read from entries the scope ledgers count.
    const recordOf = new Map<string, Map<string, RecordedTarget>>();
    const notOnRecord = (job: Job, release: Release): string | undefined => {
      if (!a.recorded) return undefined;
      if (!recordOf.has(job.scope))
        recordOf.set(job.scope, recordedReleases(scopeLedgerTrust(mesh, job.scope).counted));
      const rec = recordedRelease(recordOf.get(job.scope)!, job.service, describeTarget(job.target));
      if (onRecord(rec, release)) return undefined;
      return (
        `not on the record: the release is ${releaseDigest(release)}, ${paths.ledger(job.scope)} recorded ` +
        `${rec?.release ?? 'none for this target'}; nothing shipped (run deploy --record-only in the step that ` +
        `holds the CI identity, then this again)`
      );
    };

    const outcomes: Outcome[] = [...heldOutcomes];
    let stopped = false;
    for (const [i, job] of jobs.entries()) {
      if (stopped) {
        outcomes.push({ job, status: 'skipped', detail: 'rollout stopped by a failed canary' });
        continue;
      }
      try {
        const release = await releaseOf(job);
        const unrecorded = notOnRecord(job, release);
        if (unrecorded) throw new TrellisError('verification-failed', unrecorded);
        const done = await deliver(job, release, {
          now,
          storeDir: store.dir,
          sealedOut,
          manifestDir,
          scratch,
          signerOf,
          rootCrl: mesh.rootCrlPem,
          burnedOf: (s) => mesh.material.get(s)?.burned,
        });
        if (i < canary && 'check' in job.target && job.target.check) {
          // Check as a client of the service: with the leaf just shipped, or for a trust-only release to a dir target,
          // the installed one.
          const material =
            !release['key.pem'] && job.target.type === 'dir' ? installedRelease(job.target.path) : release;
          const { handshakeCheck } = await import('../handshake-check.js');
          const c = await handshakeCheck(
            job.target.check,
            serviceDnsName(job.scope, job.service, mesh.config.trustDomain),
            material,
            job.target.checkSpiffe,
          );
          if (!c.ok) throw new TrellisError('peer-failed', `canary check of ${job.target.check} failed: ${c.error}`);
          done.detail += `; canary handshake ok`;
        }
        outcomes.push(done);
      } catch (e) {
        if (!(e instanceof TrellisError)) throw e;
        outcomes.push({ job, status: 'failed', detail: e.message.split('\n')[0]! });
        if (i < canary) stopped = true;
      }
    }
    fs.rmSync(scratch, { recursive: true, force: true });

    // The deploy is recorded in each scope's ledger: what went where, and how it ended.
    const runner = os.hostname(); // a dir target is a directory on this machine: the evidence's hosts column names it
    const writes: FileWrite[] = [];
    for (const s of new Set(selected.map((j) => j.scope))) {
      const key = signers.get(s);
      // Unsigned, so unrecorded: a ledger holds only what its keys vouch for.
      if (!key || key instanceof TrellisError) continue;
      const mine = outcomes.filter((o) => o.job.scope === s);
      writes.push({
        path: paths.ledger(s),
        content: appendToLedger(
          mesh.material.get(s)!.ledger,
          {
            op: 'deploy',
            at: iso(now),
            actor: actor(),
            details: {
              targets: mine.map((o) => ({
                service: o.job.service,
                target: describeTarget(o.job.target),
                ...(o.job.target.type === 'dir' ? { host: runner } : {}),
                status: o.status,
                detail: o.detail,
              })),
            },
          },
          paths.ledger(s),
          ledgerSigner(key),
        ).text,
      });
    }
    if (writes.length) store.commit(mergeWrites(writes));
    else if (a.recorded)
      process.stdout.write(
        'deploy on the record: each release shipped is the one its scope ledger recorded (deploy ' +
          "--record-only); each target's outcome is in this output\n",
      );
    else
      process.stdout.write(
        'deploy not recorded in the ledgers: no CI identity in this step to sign the entries (sign what it ' +
          'ships first: deploy --record-only in the step that holds it, then deploy --recorded here)\n',
      );
    for (const o of outcomes)
      process.stdout.write(
        `${o.status.padEnd(9)} ${`${o.job.scope}/${o.job.service}`.padEnd(24)} ` +
          `${describeTarget(o.job.target)}  ${o.detail}\n`,
      );
    const failed = outcomes.filter((o) => o.status === 'failed').length;
    const notDone = failed + heldOutcomes.length;
    const failedNote = failed ? `, ${failed} failed` : '';
    const heldNote = heldOutcomes.length ? `, ${heldOutcomes.length} held` : '';
    const stoppedNote = stopped ? '; rollout stopped at the canary' : '';
    process.stdout.write(
      `${outcomes.length - notDone} of ${outcomes.length} target(s) done${failedNote}${heldNote}${stoppedNote}\n`,
    );
    if (failed || stopped) process.exitCode = 1;
    if (a.wipeOut) {
      if (failed || stopped)
        process.stdout.write(`kept ${from}: a target failed, and a rerun of deploy needs the leaves\n`);
      else {
        const n = wipeOutDir(
          from,
          jobs.map((j) => `${j.scope}/${j.service}`),
        );
        process.stdout.write(`wiped ${n} delivered leaf ${n === 1 ? 'directory' : 'directories'} from ${from}\n`);
      }
    }
    const collisions = [...new Set(selected.flatMap((j) => heldOf(j) ?? []))];
    const refusal = collisionRefusal(collisions, 'deploy held');
    if (refusal) throw refusal;
  });
}

/**
 * deploy --record-only: signs, in each scope's ledger, the release digest each
 * selected target is about to get, and delivers nothing. A target whose
 * newest recorded digest is already this one is not recorded again, so a run
 * with nothing new adds no entry.
 */
async function recordOnly(
  store: Store,
  mesh: Mesh,
  jobs: Job[],
  releaseOf: (j: Job) => Promise<Release>,
  now: Date,
  seam: CryptoSeam,
  scope?: string,
): Promise<void> {
  const ids = await ciIdentities(mesh, scope ? [scope] : undefined);
  const writes: FileWrite[] = [];
  for (const s of new Set(jobs.map((j) => j.scope))) {
    const have = recordedReleases(scopeLedgerTrust(mesh, s).counted);
    const mine = await Promise.all(
      jobs
        .filter((j) => j.scope === s)
        .map(async (j) => ({
          ...recordFor(j.service, describeTarget(j.target), await releaseOf(j)),
          ...(j.target.type === 'dir' ? { host: os.hostname() } : {}),
        })),
    );
    const fresh = mine.filter((t) => recordedRelease(have, t.service, t.target)?.release !== t.release);
    for (const t of mine)
      process.stdout.write(
        `${fresh.includes(t) ? 'recorded ' : 'on record'} ${`${s}/${t.service}`.padEnd(24)} ${t.target}  ` +
          `${t.release}\n`,
      );
    if (!fresh.length) continue;
    const key = await openIntermediate(mesh, s, ids, 'active', seam);
    writes.push({
      path: paths.ledger(s),
      content: appendToLedger(
        mesh.material.get(s)!.ledger,
        { op: DEPLOY_RECORD_OP, at: iso(now), actor: actor(), details: { targets: fresh } },
        paths.ledger(s),
        ledgerSigner(key),
      ).text,
    });
  }
  if (writes.length) store.commit(mergeWrites(writes));
  process.stdout.write(
    writes.length
      ? `recorded what is about to be deployed in ${writes.length} scope ledger(s); deploy --recorded ships ` +
          `exactly that\n`
      : 'every release is already on the record\n',
  );
}

/**
 * A dir target's path as this runner resolves it, symbolic links followed as far as it exists: two spellings of one
 * directory are one.
 */
function onThisRunner(p: string): string {
  const rest: string[] = [];
  for (let head = p; ; head = path.dirname(head)) {
    try {
      return path.join(fs.realpathSync(head), ...rest);
    } catch {
      if (head === path.dirname(head)) return p;
      rest.unshift(path.basename(head));
    }
  }
}

const sealedFile = (dir: string, j: Job, host: string) => path.join(dir, j.scope, j.service, `${host}.age`);
// One directory level per name part: a 247-character object name still fits a file name (255 bytes).
const manifestFile = (dir: string, j: Job, t: { namespace: string; name: string }) =>
  path.join(dir, j.scope, j.service, t.namespace, `${t.name}.yaml`);
// Sealed releases are encrypted (0644); manifests carry tls.key in the clear (0600, outside the tracked tree). No link
// below the named directory.
const sealedOutOf = (store: string, dir: string) => ({ flag: '--sealed-out', store, anchor: dir });
const manifestsOut = (store: string, dir: string) => ({ flag: '--manifests', secret: true, store, anchor: dir });

/** A dir target and the release directory the installer writes under it: no link below the allowed directory. */
function dirTargetChecks(j: Job, t: Extract<DeployTarget, { type: 'dir' }>): void {
  const o = { flag: `${j.field}.path`, file: paths.scopeFile(j.scope), anchor: t.allowedRoot, allowList: true };
  checkOutDir(t.path, o);
  checkOutDir(path.join(t.path, 'releases'), o);
}

/** The release a dir target holds now. */
function installedRelease(dir: string): Release {
  const read = (f: string) => fs.readFileSync(path.join(dir, 'current', f), 'utf8');
  return {
    'key.pem': read('key.pem'),
    'chain.pem': read('chain.pem'),
    'cert.pem': read('cert.pem'),
    'trust.openssl.pem': read('trust.openssl.pem'),
  };
}

async function deliver(job: Job, release: Release, ctx: DeliverContext): Promise<Outcome> {
  const t = job.target;
  switch (t.type) {
    case 'dir': {
      const { installLocally } = await import('@trellis/agent');
      const r = await installLocally(t.path, release, t.reloadCommand, t.allowedRoot, {
        file: paths.scopeFile(job.scope),
        field: `${job.field}.path`,
      });
      return { job, status: r.status, detail: `${describeRelease(release)}: ${r.detail}` };
    }
    case 'ssh': {
      const { installOverSsh } = await import('../targets/ssh.js');
      const r = await installOverSsh(t, release, ctx.scratch);
      return { job, status: r.status, detail: `${describeRelease(release)}: ${r.detail}` };
    }
    case 'sealed': {
      const file = sealedFile(ctx.sealedOut, job, t.host);
      if (ctx.rootCrl === undefined)
        throw new TrellisError(
          'corrupt-store',
          'there is no root CRL to seal with the release, and hosts refuse a release without one',
          { file: paths.rootCrl, hint: 'the custodian runs trellis-root crl, then deploy again' },
        );
      const signer = ctx.signerOf(job.scope);
      writeOutFile(
        file,
        await sealRelease(
          {
            version: 1,
            scope: job.scope,
            service: job.service,
            host: t.host,
            created: ctx.now.toISOString(),
            rootCrl: ctx.rootCrl,
            ...(ctx.burnedOf(job.scope) !== undefined ? { burned: ctx.burnedOf(job.scope) } : {}),
            files: release,
          },
          t.recipient,
          signer,
        ),
        sealedOutOf(ctx.storeDir, ctx.sealedOut),
      );
      return { job, status: 'sealed', detail: `${describeRelease(release)}: ${file}` };
    }
    case 'kubernetes': {
      const { applyManifests, manifests } = await import('../targets/kubernetes.js');
      const file = manifestFile(ctx.manifestDir, job, t);
      writeOutFile(file, manifests(t, job.scope, job.service, release), manifestsOut(ctx.storeDir, ctx.manifestDir));
      if (!t.context) return { job, status: 'written', detail: `${describeRelease(release)}: ${file}` };
      return { job, status: 'applied', detail: `${describeRelease(release)}: ${await applyManifests(t, file)}` };
    }
  }
}
