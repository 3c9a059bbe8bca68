/**
 * `trellis-ci probe`: the fleet's proof for a fleet-gated rotation (docs/fleet-gates.md), in two steps so that no
 * process holds an intermediate key while it connects out. `certify` (with the CI identity, no network) writes
 * short-lived probe keys, one per live intermediate; `handshake` (with no identity, on the region's runner) connects
 * to each confirmed endpoint of a scope with each probe key its scope must trust, and records the signed outcome in
 * the store, where renew's gate decision reads it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import {
  PROBE_RUNS_KEPT,
  TrellisError,
  assertProbePosture,
  certificatePem,
  confirmedEndpoints,
  fingerprint,
  importSigningKey,
  issuingIntermediate,
  iso,
  liveIntermediates,
  mintLeaf,
  nodeCryptoSeam,
  parseCertificates,
  probeRunPath,
  probeService,
  probeSpiffeId,
  probeEvidence,
  fleetStatus,
  describeWaiting,
  subjectAltNames,
  requireConfirmedAllowList,
  scopeDef,
  trustedScopes,
  serializeProbeRun,
  type Mesh,
  type ProbeOutcome,
} from '@trellis/core';
import { loadMesh, readBounded, READ_LIMITS } from '@trellis/core/store';
import { clock, withStore } from '@trellis/core/shell';
import { openIntermediate, ciIdentities } from '../signer.js';
import { prepareOutDir } from '../out-dir.js';
import { replaceFile, outputBarrier } from '../out-write.js';
import { probeEndpoint, type ProbeClient } from '../probe-handshake.js';

interface Args {
  store?: string;
  now?: string;
  step: 'certify' | 'handshake';
  scope?: string;
  out?: string;
  keys?: string;
}

/** Each scope's keys are listed in `<scope>.probe-keys.json`, so directories certified per scope merge by copying. */
const INDEX = '.probe-keys.json';
/** The default key directory: the runner's work area in the checkout, never tracked (like renew's .trellis/out). */
const DEFAULT_KEYS = path.join('.trellis', 'probe-keys');

interface KeyIndexEntry {
  scope: string;
  key: string;
  chain: string;
}

export const probe: CommandModule<object, Args> = {
  command: 'probe <step>',
  describe: 'Prove the fleet ready for a rotation gate: certify probe keys (CI identity), then handshake (none)',
  builder: (y) =>
    y
      .positional('step', { choices: ['certify', 'handshake'] as const, demandOption: true })
      .option('scope', {
        type: 'string',
        describe: "certify: only this scope's intermediates; handshake: the scope whose endpoints this runner probes",
      })
      .option('out', {
        type: 'string',
        describe:
          'certify: the directory for the probe keys, 0700 (default <store>/.trellis/probe-keys; never the ' +
          'tracked tree)',
      })
      .option('keys', { type: 'string', describe: 'handshake: the directory certify wrote (the same default)' })
      .example('$0 probe certify', 'in the step with the CI identity; connects nowhere')
      .example(
        '$0 probe handshake --scope us-east-1',
        "on us-east-1's runner, with no identity (any is refused, exit 3); docs/fleet-gates.md",
      ) as never,
  handler: async (a) => {
    if (a.keys !== undefined && a.step === 'certify')
      throw new TrellisError('usage', '--keys belongs to probe handshake', { hint: 'certify writes to --out' });
    if (a.out !== undefined && a.step === 'handshake')
      throw new TrellisError('usage', '--out belongs to probe certify', { hint: 'handshake reads --keys' });
    if (a.step === 'certify') await certify(a);
    else {
      if (!a.scope)
        throw new TrellisError('usage', 'probe handshake needs --scope S', {
          hint: 'the scope whose endpoints this runner reaches',
        });
      assertProbePosture(process.env);
      await handshake(a, a.scope);
    }
  },
};

async function certify(a: Args): Promise<void> {
  await withStore(a.store, async (store) => {
    const mesh = loadMesh(store);
    const now = clock(a.now);
    requireConfirmedAllowList(mesh);
    const scopes = a.scope ? [scopeDef(mesh, a.scope).name] : mesh.scopes.map((s) => s.name);
    const ids = await ciIdentities(mesh, a.scope ? scopes : undefined);
    const out = path.resolve(a.out ?? path.join(store.dir, DEFAULT_KEYS));
    // The default lies inside the store: a committed link there must not reroute the keys (prepareOutDir refuses it).
    process.stdout.write(prepareOutDir(out, { storeDir: store.dir, store: a.out ? undefined : store.dir }) ?? '');
    const files: string[] = [];
    for (const scope of scopes) {
      const index: KeyIndexEntry[] = [];
      for (const live of liveIntermediates(mesh, scope).filter((l) => l.anchored && l.keyAge)) {
        const signer = await openIntermediate(mesh, scope, ids, live.role);
        const def = probeService();
        const leaf = await mintLeaf(
          {
            scope,
            service: def,
            trustDomain: mesh.config.trustDomain,
            ttl: def.ttl!,
            algorithm: mesh.config.algorithms.leaf,
            now,
          },
          signer,
          nodeCryptoSeam,
        );
        const base = `${scope}-${fingerprint(live.cert).slice('sha256:'.length, 'sha256:'.length + 16)}`;
        replaceFile(path.join(out, `${base}.key.pem`), leaf.keyPem!, 0o600);
        replaceFile(path.join(out, `${base}.chain.pem`), leaf.certPem + certificatePem(live.cert));
        files.push(path.join(out, `${base}.key.pem`), path.join(out, `${base}.chain.pem`));
        index.push({ scope, key: `${base}.key.pem`, chain: `${base}.chain.pem` });
        process.stdout.write(
          `${scope}: probe key under ${live.role} intermediate ${fingerprint(live.cert)}, serial ` +
            `${leaf.record.serial}, ` +
            `until ${iso(leaf.cert.notAfter)}\n`,
        );
      }
      replaceFile(path.join(out, `${scope}${INDEX}`), `${JSON.stringify(index, null, 2)}\n`);
      files.push(path.join(out, `${scope}${INDEX}`));
    }
    outputBarrier(out, files);
  });
}

/** The probe keys in `dir`, each with the live intermediate that certified it (judged, not taken from the index). */
function readProbeKeys(mesh: Mesh, dir: string, now: Date): (ProbeClient & { scope: string; serial: string })[] {
  const read = (f: string) => readBounded(path.join(dir, path.basename(f)), READ_LIMITS.small);
  let index: KeyIndexEntry[];
  try {
    // One index per scope certified; the scopes are the mesh's, so a file name from elsewhere is never opened.
    index = mesh.scopes
      .filter((s) => fs.existsSync(path.join(dir, `${s.name}${INDEX}`)))
      .flatMap((s) => (JSON.parse(read(`${s.name}${INDEX}`)) as KeyIndexEntry[]).map((k) => ({ ...k, scope: s.name })))
      .filter((k) => typeof k.key === 'string' && typeof k.chain === 'string');
  } catch (e) {
    throw new TrellisError('usage', `cannot read the probe keys in ${dir}: ${(e as Error).message.split('\n')[0]}`, {
      hint: 'pass --keys the directory trellis-ci probe certify wrote',
    });
  }
  // Only a probe certificate of its scope, from a live intermediate and live now, is a probe key.
  return index.flatMap((k) => {
    const chainPem = read(k.chain);
    const [leaf] = parseCertificates(chainPem);
    const client = leaf && issuingIntermediate(mesh, k.scope, leaf);
    const probe = leaf && subjectAltNames(leaf).uris.includes(probeSpiffeId(k.scope, mesh.config.trustDomain));
    if (!client || !probe) return [];
    if (now < leaf.notBefore || now >= leaf.notAfter)
      throw new TrellisError('usage', `the probe key of ${k.scope} in ${dir} expired at ${iso(leaf.notAfter)}`, {
        hint: 'probe keys live minutes: run trellis-ci probe certify again, then the handshake at once',
      });
    return [{ scope: k.scope, client, keyPem: read(k.key), chainPem, serial: leaf.serialNumber }];
  });
}

async function handshake(a: Args, scope: string): Promise<void> {
  await withStore(a.store, async (store) => {
    const keysDir = path.resolve(a.keys ?? path.join(store.dir, DEFAULT_KEYS));
    const mesh = loadMesh(store);
    const now = clock(a.now);
    scopeDef(mesh, scope);
    requireConfirmedAllowList(mesh);
    const keys = readProbeKeys(mesh, keysDir, now);
    const own = keys.find((k) => k.scope === scope);
    if (!own)
      throw new TrellisError('usage', `${keysDir} holds no probe key of ${scope}, which signs this run's evidence`, {
        hint: 'run trellis-ci probe certify for every scope (or with --scope for this one) first',
      });
    // The boundary rule: the scopes whose clients this scope's endpoints must accept.
    const trusted = trustedScopes(
      scopeDef(mesh, scope),
      mesh.scopes.map((s) => s.name),
    );
    for (const t of trusted)
      if (!keys.some((k) => k.scope === t))
        process.stdout.write(
          `no probe key of ${t} in ${keysDir}: clients of ${t}'s intermediates are not tried, so its gates wait\n`,
        );
    const outcomes: ProbeOutcome[] = [];
    for (const e of confirmedEndpoints(mesh).filter((x) => x.scope === scope))
      for (const k of keys.filter((x) => trusted.includes(x.scope))) {
        const o = await probeEndpoint(mesh, e, k, now);
        outcomes.push(o);
        process.stdout.write(
          `${e.name} (${e.address}) with a client of ${k.scope} ${k.client.slice(0, 23)}…: ` +
            `${o.accepted ? 'accepted' : `NOT ready: ${o.error}`}\n`,
        );
      }
    const nonce = Buffer.from(nodeCryptoSeam.randomBytes(4)).toString('hex');
    const id = `${iso(now).replace(/[-:]/g, '').replace(/\.\d+/, '')}-${nonce}`;
    const run = { id, scope, at: iso(now), outcomes, serials: keys.map((k) => k.serial) };
    const signing = await importSigningKey(own.keyPem);
    // The run is signed by this scope's probe key and carries its certificate (the chain's first), so verify can
    // check both.
    const signer = certificatePem(parseCertificates(own.chainPem)[0]!);
    const text = serializeProbeRun(run, signer, signing, nodeCryptoSeam);
    // While any scope is in a fleet-gated rotation, every run stays: a gate decision may cite it.
    const gated = [...mesh.material.values()].some((m) => m.state?.rotation?.gate === 'fleet');
    const old = [...mesh.material.get(scope)!.probeRuns.keys()].sort();
    const drop = gated ? [] : old.slice(0, Math.max(0, old.length - (PROBE_RUNS_KEPT - 1)));
    store.commit([...drop.map((p) => ({ path: p, content: null })), { path: probeRunPath(scope, id), content: text }]);
    const refused = outcomes.filter((o) => !o.accepted);
    process.stdout.write(
      `recorded ${probeRunPath(scope, id)}: ${outcomes.length - refused.length} of ${outcomes.length} accepted\n`,
    );
    // Ready means what the gates say, judged on the store with this run in it: a handshake that is accepted can still
    // hold a retire gate (the endpoint presents a leaf of the old intermediate).
    const after = loadMesh(store);
    const runs = probeEvidence(after, now).runs;
    const notReady = after.scopes.flatMap((d) => {
      const st = after.material.get(d.name)?.state;
      if (!st || st.phase === 'steady') return [];
      const f = fleetStatus(after, d.name, st, runs);
      return describeWaiting([...f.waiting, ...f.refusing].filter((w) => w.scope === scope)).map(
        (w) => `${d.name}'s ${st.phase === 'publish' ? 'switch' : 'retire'} gate: ${w}`,
      );
    });
    const failed = [...new Set(refused.map((o) => `${o.endpoint} (${o.error})`))];
    if (failed.length || notReady.length)
      throw new TrellisError('peer-failed', `endpoints of ${scope} not ready: ${[...failed, ...notReady].join('; ')}`, {
        hint: 'the evidence is recorded; a fleet gate holds until a later run shows them ready (docs/fleet-gates.md)',
      });
  });
}
