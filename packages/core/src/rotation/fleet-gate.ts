/**
 * The fleet gate (docs/fleet-gates.md): a rotation begun with `--gate fleet` takes its switch and retire steps only
 * on signed probe evidence that every confirmed endpoint is ready, besides the time gates. Which endpoints count comes
 * from the confirmed allow-list alone: an entry's SPIFFE ID names its scope, so no field a pull request edits can drop
 * an endpoint from a gate. Evidence is signed by a probe key CI certified, so a pull request cannot forge it.
 */
import { canonicalJson } from '../ledger/ledger.js';
import { TrellisError } from '../model/errors.js';
import { scopeLedgerTrust } from '../ledger/ledger-trust.js';
import { issuedUnder } from '../ledger/ledger-signature.js';
import { confirmedAllowList } from '../config/deploy-allow-list.js';
import { verifyBytes, type KeyAlgorithm } from '../crypto/crypto.js';
import type { CryptoSeam } from '../x509/seam.js';
import { fingerprint, parseCertificate, spkiDer, subjectAltNames, type Certificate } from '../x509/certificates.js';
import { PROBE_SERVICE, scopeDomain, serviceSpiffeId } from '../model/names.js';
import { trustedScopes } from '../trust/trust.js';
import { liveIntermediates } from '../trust/live.js';
import { trustedScopeNames } from '../trust/scope-trust.js';
import type { Mesh } from '../model/mesh.js';
import { paths } from '../model/paths.js';
import type { ScopeState } from './rotation.js';
import type { ServiceDef } from '../config/config.js';

/** A probe key lives minutes: long enough for one run of handshakes, too short to be worth stealing. */
const PROBE_TTL = 15 * 60_000;
/** Probe runs a scope keeps: the newest; older ones are dropped by the run that writes a new one. */
export const PROBE_RUNS_KEPT = 8;

export const probeSpiffeId = (scope: string, trustDomain: string) => serviceSpiffeId(scope, PROBE_SERVICE, trustDomain);

/** A confirmed endpoint, with the scope its SPIFFE ID belongs to. */
export interface Endpoint {
  name: string;
  scope: string;
  address: string;
  path?: string;
  spiffe: string;
}

/** One handshake: a probe client certified by `client` at `endpoint`. */
export interface ProbeOutcome {
  endpoint: string;
  /** Fingerprint of the intermediate that certified the probe's client key. */
  client: string;
  /** The endpoint completed the handshake with this client (and, with a path, answered below 400). */
  accepted: boolean;
  /**
   * The endpoint itself turned the client away (a TLS alert on its certificate, or HTTP 400/403/495/496): the outage a
   * rollback answers. Unreachable, or presenting the wrong leaf, is not ready but refuses no one.
   */
  refused?: boolean;
  /** Fingerprint of the live intermediate of the endpoint's scope that signed the leaf it presented, if one did. */
  presented?: string;
  /** Why the endpoint is not ready, in a line (refused, wrong SPIFFE ID, expired, revoked, unreachable). */
  error?: string;
}

export interface ProbeRun {
  id: string;
  /** The scope whose endpoints were probed (one region's runner). */
  scope: string;
  at: string;
  outcomes: ProbeOutcome[];
  /** Serials of the probe certificates used: what a probe key could have been used for is on the record. */
  serials: string[];
}

/** The signed file under bundles/<scope>/probes/. */
interface SignedProbeRun {
  run: ProbeRun;
  /** PEM of the probe certificate whose key signed `run`. */
  signer: string;
  /** base64 signature over canonicalJson(run). */
  signature: string;
}

export const probeRunPath = (scope: string, id: string) => `${paths.probes(scope)}/${id}.json`;

/** Every endpoint the custodian confirmed, with its scope; an entry naming no declared scope belongs to none. */
export function confirmedEndpoints(mesh: Mesh): Endpoint[] {
  const probe = confirmedAllowList(mesh).allowList.probe ?? {};
  const scopes = trustedScopeNames(mesh);
  return Object.entries(probe).flatMap(([name, p]) => {
    const host = /^spiffe:\/\/([^/]+)\//.exec(p.spiffe)?.[1];
    const scope = scopes.find((s) => scopeDomain(s, mesh.config.trustDomain) === host);
    return scope ? [{ name, scope, address: p.address, ...(p.path ? { path: p.path } : {}), spiffe: p.spiffe }] : [];
  });
}

/** The confirmed endpoints whose scope trusts `scope`'s intermediates (the boundary rule). */
export function endpointsTrusting(mesh: Mesh, scope: string): Endpoint[] {
  const all = trustedScopeNames(mesh);
  const kindOf = (s: string) => mesh.scopes.find((d) => d.name === s)?.kind ?? 'region';
  return confirmedEndpoints(mesh).filter((e) =>
    trustedScopes({ name: e.scope, kind: kindOf(e.scope) }, all).includes(scope),
  );
}

/** The signed run file: the probe key signs through the seam, like every other signature. */
export function serializeProbeRun(
  run: ProbeRun,
  signerPem: string,
  key: { key: CryptoKey; algorithm: KeyAlgorithm },
  seam: CryptoSeam,
): string {
  const signature = Buffer.from(seam.signData(key.key, key.algorithm, Buffer.from(canonicalJson(run)))).toString(
    'base64',
  );
  return `${JSON.stringify({ run, signer: signerPem, signature } satisfies SignedProbeRun, null, 2)}\n`;
}

/**
 * The run a probe file proves, or why it proves nothing: signed by a probe certificate that a live intermediate of
 * the run's scope issued to that scope's probe SPIFFE ID, valid when the run says it ran, and not dated after `now`.
 * `stale`: signed under an intermediate no longer live.
 */
function readProbeRun(mesh: Mesh, text: string, now: Date): ProbeRun | { problem: string } | { stale: true } {
  let f: SignedProbeRun;
  let signer: Certificate;
  try {
    f = JSON.parse(text) as SignedProbeRun;
    signer = parseCertificate(f.signer);
  } catch (e) {
    return { problem: `not a signed probe run (${(e as Error).message.split('\n')[0]})` };
  }
  const run = f.run;
  if (!run || typeof run.id !== 'string' || typeof run.scope !== 'string' || !Array.isArray(run.outcomes))
    return { problem: 'not a signed probe run (no run, scope or outcomes)' };
  const at = new Date(run.at);
  if (Number.isNaN(at.getTime()) || at > now) return { problem: `dated ${String(run.at)}, which is not a past time` };
  if (at < signer.notBefore || at > signer.notAfter)
    return { problem: "dated outside its probe certificate's validity" };
  const issuers = liveIntermediates(mesh, run.scope).map((l) => l.cert);
  // A run from before a retire or a recovery proves nothing now, and is no error: its intermediate is gone.
  if (!issuers.some((i) => issuedUnder(signer, i))) return { stale: true };
  if (!subjectAltNames(signer).uris.includes(probeSpiffeId(run.scope, mesh.config.trustDomain)))
    return { problem: `its signer is not ${run.scope}'s probe (${PROBE_SERVICE})` };
  if (!verifyBytes(spkiDer(signer), Buffer.from(canonicalJson(run)), Buffer.from(String(f.signature), 'base64')))
    return { problem: 'its signature does not verify' };
  return run;
}

/** An endpoint a fleet gate waits for, and why. */
export interface Waiting {
  endpoint: string;
  scope: string;
  why: string;
}

export interface FleetGate {
  /** The evidence says every endpoint is ready for the gate the phase waits on. */
  ready: boolean;
  waiting: Waiting[];
  /** Ids of the probe runs the decision rests on. */
  cites: string[];
  /** A probe after the switch found an endpoint refusing clients of the new intermediate: abort. */
  refusing: Waiting[];
  /** Endpoints the custodian waived for this rotation, with the reason the root signed. */
  waived: { endpoint: string; reason: string }[];
}

/**
 * The endpoints waived for the rotation under way: `fleet-waiver` entries of the scope ledger since it began, each
 * signed by a root (trellis-root rotate intermediate S --waive E --reason R). Nothing unsigned or older counts.
 */
function fleetWaivers(mesh: Mesh, scope: string, state: ScopeState): Map<string, string> {
  const out = new Map<string, string>();
  const r = state.rotation;
  if (!r) return out;
  const t = scopeLedgerTrust(mesh, scope);
  for (const e of t.counted)
    if (
      e.op === 'fleet-waiver' &&
      e.at >= r.started &&
      t.signers.get(e.seq)?.root &&
      typeof e.details.endpoint === 'string' &&
      typeof e.details.reason === 'string'
    )
      out.set(e.details.endpoint, e.details.reason);
  return out;
}

/**
 * What the fleet says about `scope`'s next gate. publish → switch: every endpoint of every scope that trusts `scope`
 * accepted a client of the next intermediate, in a run after the publish step. switch → retire: every endpoint of
 * `scope` presents a leaf of the new intermediate, in a run after the switch. The newest outcome of each counts.
 */
export function fleetGate(mesh: Mesh, scope: string, state: ScopeState, runs: readonly ProbeRun[]): FleetGate {
  const r = state.rotation;
  const none: FleetGate = { ready: true, waiting: [], cites: [], refusing: [], waived: [] };
  if (!r || state.phase === 'steady') return none;
  const since = new Date(state.phase === 'publish' ? r.started : (r.switched ?? r.started));
  const newer = runs.filter((x) => new Date(x.at) > since).sort((a, b) => a.at.localeCompare(b.at));
  // Only a run of the endpoint's own scope speaks for it: one scope's probe key cannot vouch for another's fleet.
  const newest = (e: Endpoint, match: (o: ProbeOutcome) => boolean) => {
    let found: { run: ProbeRun; o: ProbeOutcome } | undefined;
    for (const run of newer.filter((x) => x.scope === e.scope))
      for (const o of run.outcomes) if (o.endpoint === e.name && match(o)) found = { run, o };
    return found;
  };
  const waiting: Waiting[] = [];
  const refusing: Waiting[] = [];
  const cites = new Set<string>();
  // Clients of the intermediate now signing must be accepted everywhere that trusts the scope.
  const client = state.phase === 'publish' ? state.next! : state.active;
  const endpoints = endpointsTrusting(mesh, scope);
  for (const e of endpoints) {
    const n = newest(e, (o) => o.client === client);
    if (!n) waiting.push({ endpoint: e.name, scope: e.scope, why: 'no probe since the phase began' });
    else if (!n.o.accepted) {
      const w = { endpoint: e.name, scope: e.scope, why: `refused a client of ${client}: ${n.o.error ?? 'refused'}` };
      waiting.push(w);
      if (state.phase === 'switch' && n.o.refused) refusing.push(w);
    } else cites.add(n.run.id);
  }
  if (state.phase === 'switch')
    for (const e of endpoints.filter((x) => x.scope === scope)) {
      const n = newest(e, () => true);
      if (n && n.o.presented !== state.active)
        waiting.push({
          endpoint: e.name,
          scope: e.scope,
          why: `presents a leaf of ${n.o.presented ?? 'no live intermediate'}, not of ${state.active}`,
        });
      else if (n) cites.add(n.run.id);
    }
  const waivers = fleetWaivers(mesh, scope, state);
  const unique = [...new Map(waiting.map((w) => [w.endpoint, w])).values()].filter((w) => !waivers.has(w.endpoint));
  return {
    ready: unique.length === 0,
    waiting: unique,
    cites: [...cites].sort(),
    refusing,
    waived: [...waivers].map(([endpoint, reason]) => ({ endpoint, reason })),
  };
}

/** The fingerprint of the live intermediate of `scope` that issued `leaf`, if one did. */
export function issuingIntermediate(mesh: Mesh, scope: string, leaf: Certificate): string | undefined {
  const i = liveIntermediates(mesh, scope).find((l) => issuedUnder(leaf, l.cert));
  return i ? fingerprint(i.cert) : undefined;
}

/** Every probe run the store holds that proves itself, and the files that do not (verify names them). */
export function probeEvidence(
  mesh: Mesh,
  now: Date,
): { runs: ProbeRun[]; problems: { file: string; message: string }[] } {
  const runs: ProbeRun[] = [];
  const problems: { file: string; message: string }[] = [];
  for (const [scope, m] of mesh.material)
    for (const [file, text] of m.probeRuns) {
      const r = readProbeRun(mesh, text, now);
      if ('stale' in r) continue;
      if ('problem' in r) problems.push({ file, message: r.problem });
      else if (r.scope !== scope || file !== probeRunPath(scope, r.id))
        problems.push({ file, message: `holds run ${JSON.stringify(r.id)} of ${r.scope}, not a run of this path` });
      else runs.push(r);
    }
  return { runs, problems };
}

/** The probe client for one intermediate: the scope's reserved probe name, minutes of life, no DNS name of its own. */
export function probeService(): ServiceDef {
  return { name: PROBE_SERVICE, dns: [], deploy: [], ttl: PROBE_TTL };
}

/**
 * Services of the scopes that trust `scope` whose SPIFFE ID no confirmed endpoint carries: sealed hosts without an
 * endpoint, client-only services, Kubernetes targets. A fleet gate cannot see them; the time gates still hold.
 */
function unprovenConsumers(mesh: Mesh, scope: string): string[] {
  const trusting = endpointsTrusting(mesh, scope);
  const proven = new Set(trusting.map((e) => e.spiffe));
  const all = trustedScopeNames(mesh);
  return mesh.scopes
    .filter((d) => trustedScopes(d, all).includes(scope))
    .flatMap((d) =>
      d.services
        .filter((s) => !proven.has(serviceSpiffeId(d.name, s.name, mesh.config.trustDomain)))
        .map((s) => `${d.name}/${s.name}`),
    );
}

/** What status, check and the metrics say of a rotating scope's fleet, in one reading (each as `name (why)`). */
export interface FleetStatus {
  /** The rotation waits for the fleet (`--gate fleet`). */
  gated: boolean;
  /** Endpoints a fleet gate waits for (none while some refuse: then the advice is to abort, not to wait). */
  waiting: Waiting[];
  /** Endpoints refusing clients of the new intermediate after a switch, whatever the gate mode. */
  refusing: Waiting[];
  waived: { endpoint: string; reason: string }[];
  unproven: string[];
}

export function fleetStatus(mesh: Mesh, scope: string, state: ScopeState, runs: readonly ProbeRun[]): FleetStatus {
  const g = fleetGate(mesh, scope, state, runs);
  const gated = state.rotation?.gate === 'fleet';
  return {
    gated,
    waiting: gated && !g.refusing.length ? g.waiting : [],
    refusing: g.refusing,
    waived: gated ? g.waived : [],
    unproven: gated ? unprovenConsumers(mesh, scope) : [],
  };
}

/** `name (scope: why)`, the way every output lists an endpoint. */
export const describeWaiting = (ws: readonly Waiting[]) => ws.map((w) => `${w.endpoint} (${w.scope}: ${w.why})`);

/** `--gate fleet` on a scope no confirmed endpoint trusts would wait for nothing: a time gate that looks like more. */
export function assertFleetGateable(mesh: Mesh, scope: string): void {
  if (!endpointsTrusting(mesh, scope).length)
    throw new TrellisError('usage', `--gate fleet: no confirmed probe endpoint (deploy.probe) trusts ${scope}`, {
      hint:
        'the custodian adds the endpoints to deploy.probe in trellis.yaml and confirms them (trellis-root ' +
        'confirm) first, or rotate with the time gate (docs/fleet-gates.md)',
    });
}
