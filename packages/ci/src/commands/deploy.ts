import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import {
  TrellisError, actor, appendToLedger, ledgerSigner, clock, describeRelease, describeTarget, iso, loadMesh, mergeWrites, parseCertificate, paths, releaseFor,
  scopeDef, sealRelease, serviceDnsName, withStore, writeFileAtomic,
  type DeployTarget, type FileWrite, type LeafFiles, type Mesh, type Release, type SigningIntermediate,
} from '@trellis/core';
import { installLocally } from '@trellis/agent';
import { handshakeCheck } from '../check.js';
import { ciIdentities, openIntermediate } from '../signer.js';
import { installOverSsh } from '../targets/ssh.js';
import { applyManifests, manifests } from '../targets/kubernetes.js';

interface Args { store?: string; scope?: string; from?: string; canary?: number; sealedOut?: string; manifests?: string; now?: string }

export const deploy: CommandModule<object, Args> = {
  command: 'deploy',
  describe: "Ship each service's release (leaf, key, chain, trust bundle, CRLs) to its deploy targets",
  builder: (y) => y
    .option('scope', { type: 'string', describe: 'only this scope' })
    .option('from', { type: 'string', describe: "where renew wrote leaves (default <store>/.trellis/out); services without a new leaf get trust and CRL updates only" })
    .option('canary', { type: 'number', describe: 'deploy to the first N targets, check a handshake against each (their `check`), stop at the first failure' })
    .option('sealed-out', { type: 'string', describe: 'where sealed releases are written (default <store>/.trellis/sealed)' })
    .option('manifests', { type: 'string', describe: 'where Kubernetes manifests are written (default <store>/.trellis/k8s)' })
    .example('$0 renew && $0 deploy', 'the scheduled CI job')
    .example('$0 deploy --canary 1', 'one target first, checked, then the rest') as never,
  handler: (a) => runDeploy(a),
};

interface Job {
  scope: string;
  service: string;
  target: DeployTarget;
}

interface DeliverContext {
  now: Date;
  sealedOut: string;
  manifestDir: string;
  scratch: string;
  /** The scope's active intermediate, opened with the CI identity: it signs sealed releases. */
  signerOf: (scope: string) => Promise<SigningIntermediate>;
}

interface Outcome {
  job: Job;
  status: 'installed' | 'unchanged' | 'sealed' | 'written' | 'applied' | 'failed' | 'skipped';
  detail: string;
}

/** The leaf renew left for this service, if it is the one the issuance record names. */
function leafFrom(mesh: Mesh, from: string, scope: string, service: string): LeafFiles | undefined {
  const dir = path.join(from, scope, service);
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  if (!['cert.pem', 'key.pem', 'chain.pem'].every((f) => fs.existsSync(path.join(dir, f)))) return undefined;
  const cert = read('cert.pem');
  const current = mesh.material.get(scope)?.leaves.get(service);
  // A leaf left over from an older run must never replace the one the record names.
  if (!current || parseCertificate(cert).serialNumber !== current.serial) return undefined;
  return { cert, key: read('key.pem'), chain: read('chain.pem') };
}

async function runDeploy(a: Args): Promise<void> {
  if (a.canary !== undefined && (!Number.isInteger(a.canary) || a.canary < 1)) throw new TrellisError('usage', '--canary takes a positive whole number');
  await withStore(a.store, async (store) => {
    const mesh = loadMesh(store);
    const now = clock(a.now);
    const scopes = a.scope ? [scopeDef(mesh, a.scope)] : mesh.scopes;
    const jobs: Job[] = scopes.flatMap((s) => s.services.flatMap((svc) => svc.deploy.map((target) => ({ scope: s.name, service: svc.name, target }))));
    if (!jobs.length) {
      process.stdout.write('no service declares a deploy target\n');
      return;
    }
    const canary = a.canary ?? 0;
    const unchecked = jobs.slice(0, canary).filter((j) => !('check' in j.target) || !j.target.check);
    if (unchecked.length) throw new TrellisError('usage', `canary target ${describeTarget(unchecked[0]!.target)} has no check (host:port) to run a handshake against`, { file: paths.scopeFile(unchecked[0]!.scope) });
    const from = path.resolve(a.from ?? path.join(store.dir, '.trellis', 'out'));
    const sealedOut = path.resolve(a.sealedOut ?? path.join(store.dir, '.trellis', 'sealed'));
    const manifestDir = path.resolve(a.manifests ?? path.join(store.dir, '.trellis', 'k8s'));
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-deploy-'));
    const releases = new Map<string, Release>();
    const releaseOf = (j: Job) => {
      const key = `${j.scope}/${j.service}`;
      if (!releases.has(key)) releases.set(key, releaseFor(mesh, j.scope, leafFrom(mesh, from, j.scope, j.service)));
      return releases.get(key)!;
    };

    let ids: Promise<string[]> | undefined;
    const signers = new Map<string, Promise<SigningIntermediate>>();
    const signerOf = (scope: string) => {
      ids ??= ciIdentities(mesh);
      if (!signers.has(scope)) signers.set(scope, ids.then((i) => openIntermediate(mesh, scope, i)));
      return signers.get(scope)!;
    };
    const outcomes: Outcome[] = [];
    let stopped = false;
    for (const [i, job] of jobs.entries()) {
      if (stopped) {
        outcomes.push({ job, status: 'skipped', detail: 'rollout stopped by a failed canary' });
        continue;
      }
      try {
        const release = releaseOf(job);
        const done = await deliver(job, release, { now, sealedOut, manifestDir, scratch, signerOf });
        if (i < canary && 'check' in job.target && job.target.check) {
          // Check as a client of the service: with the leaf just shipped, or for a trust-only release to a dir target, the installed one.
          const material = !release['key.pem'] && job.target.type === 'dir' ? installedRelease(job.target.path) : release;
          const c = await handshakeCheck(job.target.check, serviceDnsName(job.scope, job.service, mesh.config.trustDomain), material);
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
    const writes: FileWrite[] = [];
    for (const s of new Set(jobs.map((j) => j.scope))) {
      const mine = outcomes.filter((o) => o.job.scope === s);
      writes.push({
        path: paths.ledger(s),
        content: appendToLedger(mesh.material.get(s)!.ledger, {
          op: 'deploy', at: iso(now), actor: actor(),
          details: { targets: mine.map((o) => ({ service: o.job.service, target: describeTarget(o.job.target), status: o.status, detail: o.detail })) },
        }, paths.ledger(s), ledgerSigner(await signerOf(s))).text,
      });
    }
    store.commit(mergeWrites(writes));
    for (const o of outcomes) process.stdout.write(`${o.status.padEnd(9)} ${`${o.job.scope}/${o.job.service}`.padEnd(24)} ${describeTarget(o.job.target)}  ${o.detail}\n`);
    const failed = outcomes.filter((o) => o.status === 'failed').length;
    process.stdout.write(`${outcomes.length - failed} of ${outcomes.length} target(s) done${failed ? `, ${failed} failed` : ''}${stopped ? '; rollout stopped at the canary' : ''}\n`);
    if (failed || stopped) process.exitCode = 1;
  });
}

/** The release a dir target holds now. */
function installedRelease(dir: string): Release {
  const read = (f: string) => fs.readFileSync(path.join(dir, 'current', f), 'utf8');
  return { 'key.pem': read('key.pem'), 'chain.pem': read('chain.pem'), 'cert.pem': read('cert.pem'), 'trust.openssl.pem': read('trust.openssl.pem') };
}

async function deliver(job: Job, release: Release, ctx: DeliverContext): Promise<Outcome> {
  const t = job.target;
  switch (t.type) {
    case 'dir': {
      const r = await installLocally(t.path, release, t.reload);
      return { job, status: r.status, detail: `${describeRelease(release)}: ${r.detail}` };
    }
    case 'ssh': {
      const r = await installOverSsh(t, release, ctx.scratch);
      return { job, status: r.status, detail: `${describeRelease(release)}: ${r.detail}` };
    }
    case 'sealed': {
      const file = path.join(ctx.sealedOut, job.scope, job.service, `${t.host}.age`);
      const signer = await ctx.signerOf(job.scope);
      writeFileAtomic(file, await sealRelease({ version: 1, scope: job.scope, service: job.service, host: t.host, created: ctx.now.toISOString(), files: release }, t.recipient, signer));
      return { job, status: 'sealed', detail: `${describeRelease(release)}: ${file}` };
    }
    case 'kubernetes': {
      const file = path.join(ctx.manifestDir, job.scope, `${job.service}-${t.name}.yaml`);
      writeFileAtomic(file, manifests(t, job.scope, job.service, release), 0o600);
      if (!t.context) return { job, status: 'written', detail: `${describeRelease(release)}: ${file}` };
      return { job, status: 'applied', detail: `${describeRelease(release)}: ${await applyManifests(t, file)}` };
    }
  }
}
