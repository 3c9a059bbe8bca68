/** Pure planning over a loaded Mesh: which leaves renew mints, and the status report. */
import { fingerprint } from '../x509/certificates.js';
import { leafDue, leafNames, type DueReason } from '../ledger/issuance.js';
import { nextGate } from '../rotation/rotation.js';
import { describeWaiting, fleetStatus, probeEvidence, type ProbeRun } from '../rotation/fleet-gate.js';
import { activeIssuer, scopeDef } from '../trust/scope-trust.js';
import type { Mesh } from '../model/mesh.js';
import { renewalPoint } from '../x509/profiles.js';
import { iso, notYetValid } from '../model/time.js';
import { displaySerial } from '../x509/revocation.js';
import { heldServices, meshCollisions, type Collision } from '../trust/uniqueness.js';
import { hostKeyHistory, hostKeyStanding, type HostKeyHold } from '../custody/host-keys.js';
import type { HostKeyRequest } from '../x509/csr.js';

interface RenewItem {
  scope: string;
  service: string;
  reason: DueReason;
}

export interface RenewPlan {
  mint: RenewItem[];
  /** Declared scopes renew cannot serve yet (no intermediate): the offline ceremony is pending. */
  pending: string[];
  /** Services of the planned scopes in a collision (uniqueness.ts): not minted, whether due or not. */
  held: { scope: string; service: string; collisions: Collision[] }[];
  /**
   * The collisions with an owner in the planned scopes: renew exits 2 naming them, after minting every other service.
   */
  collisions: Collision[];
  /**
   * `key: host` services whose key does not count yet (custody/host-keys.ts): not minted; renew exits 3 naming them.
   */
  custody: HostKeyHold[];
}

export function planRenew(mesh: Mesh, now: Date, opts: { scope?: string; force?: boolean } = {}): RenewPlan {
  const scopes = opts.scope ? [scopeDef(mesh, opts.scope)] : mesh.scopes;
  const plan: RenewPlan = { mint: [], pending: [], held: [], collisions: [], custody: [] };
  // Ownership is mesh-wide: a service of another scope can claim this scope's names.
  const all = meshCollisions(mesh);
  const held = heldServices(all);
  const planned = new Set(scopes.map((s) => s.name));
  plan.collisions = all.filter((c) => c.owners.some((o) => planned.has(o.scope)));
  for (const scope of scopes) {
    const m = mesh.material.get(scope.name)!;
    if (!m.intermediate) {
      plan.pending.push(scope.name);
      continue;
    }
    const active = activeIssuer(mesh, scope.name)!;
    for (const svc of scope.services) {
      const claims = held.get(`${scope.name}/${svc.name}`);
      if (claims) {
        plan.held.push({ scope: scope.name, service: svc.name, collisions: claims });
        continue;
      }
      const reason = opts.force
        ? 'forced'
        : leafDue(m.leaves.get(svc.name), leafNames(scope.name, svc, mesh.config.trustDomain), active, now);
      if (reason) plan.mint.push({ scope: scope.name, service: svc.name, reason });
    }
  }
  return plan;
}

/**
 * The plan with each host-held key's custody applied: a key that does not count holds its service; a new key that
 * counts is signed now (`key-changed`), due or not.
 */
export function planHostKeys(mesh: Mesh, plan: RenewPlan, requests: ReadonlyMap<string, HostKeyRequest>): RenewPlan {
  const out: RenewPlan = { ...plan, mint: [...plan.mint], custody: [...plan.custody] };
  const held = new Set(plan.held.map((h) => `${h.scope}/${h.service}`));
  for (const [name, request] of requests) {
    const [scope, service] = name.split('/') as [string, string];
    if (held.has(name) || plan.pending.includes(scope)) continue;
    const at = out.mint.findIndex((x) => x.scope === scope && x.service === service);
    const standing = hostKeyStanding(mesh, scope, service, request.keyId);
    if (!standing.counts) {
      if (at >= 0) out.mint.splice(at, 1);
      out.custody.push({ scope, service, why: standing.why });
    } else if (hostKeyHistory(mesh, scope).get(service)?.at(-1) !== request.keyId) {
      if (at < 0) out.mint.push({ scope, service, reason: 'key-changed' });
      else if (out.mint[at]!.reason !== 'new') out.mint[at] = { scope, service, reason: 'key-changed' };
    }
  }
  return out;
}

type LeafState = 'ok' | 'due' | 'expired' | 'not-yet-valid' | 'missing' | 'stale-issuer';

interface ScopeStatus {
  scope: string;
  kind: string;
  phase: string;
  /** The next rotation gate and when it opens. */
  gate?: { gate: string; at: string };
  /**
   * What the probes say while the scope rotates: endpoints a fleet gate waits for, and endpoints refusing clients of
   * the
   * new intermediate after the switch (roll back).
   */
  fleet?: { waiting: string[]; refusing: string[]; waived: string[]; unproven: string[] };
  intermediate: null | { fingerprint: string; subject: string; notAfter: string; notValidBefore?: string };
  leaves: { service: string; state: LeafState; serial?: string; notAfter?: string; renewAt?: string }[];
}

export interface MeshStatus {
  mesh: string;
  trustDomain: string;
  now: string;
  root: null | { fingerprint: string; subject: string; notAfter: string; phase: string; notValidBefore?: string };
  scopes: ScopeStatus[];
}

export function meshStatus(mesh: Mesh, now: Date): MeshStatus {
  let proven: ProbeRun[] | undefined;
  const runs = () => (proven ??= probeEvidence(mesh, now).runs);
  // Only when it applies: a certificate not yet valid at `now` says from when.
  const early = (c: { notBefore: Date }) => (notYetValid(c.notBefore, now) ? { notValidBefore: iso(c.notBefore) } : {});
  return {
    mesh: mesh.config.mesh,
    trustDomain: mesh.config.trustDomain,
    now: iso(now),
    root: mesh.root
      ? {
          fingerprint: fingerprint(mesh.root),
          subject: mesh.root.subject,
          notAfter: iso(mesh.root.notAfter),
          phase: mesh.rootState?.phase ?? 'steady',
          ...early(mesh.root),
        }
      : null,
    scopes: mesh.scopes.map((scope) => {
      const m = mesh.material.get(scope.name)!;
      const active = activeIssuer(mesh, scope.name);
      const gate = m.state ? nextGate(m.state) : undefined;
      const fleet = m.state && m.state.phase !== 'steady' ? fleetStatus(mesh, scope.name, m.state, runs()) : undefined;
      return {
        scope: scope.name,
        kind: scope.kind,
        phase: m.state?.phase ?? 'pending',
        ...(gate ? { gate } : {}),
        ...(fleet && (fleet.gated || fleet.refusing.length)
          ? {
              fleet: {
                waiting: describeWaiting(fleet.waiting),
                refusing: describeWaiting(fleet.refusing),
                waived: fleet.waived.map((w) => `${w.endpoint} (${w.reason})`),
                unproven: fleet.unproven,
              },
            }
          : {}),
        intermediate: m.intermediate
          ? {
              fingerprint: fingerprint(m.intermediate),
              subject: m.intermediate.subject,
              notAfter: iso(m.intermediate.notAfter),
              ...early(m.intermediate),
            }
          : null,
        leaves: scope.services.map((svc) => {
          const r = m.leaves.get(svc.name);
          if (!r) return { service: svc.name, state: 'missing' as const };
          const renewAt = renewalPoint(r);
          const due = leafDue(r, leafNames(scope.name, svc, mesh.config.trustDomain), active!, now);
          const state: LeafState =
            due === 'expired' || due === 'not-yet-valid'
              ? due
              : due === 'issuer-changed'
                ? 'stale-issuer'
                : due
                  ? 'due'
                  : 'ok';
          return {
            service: svc.name,
            state,
            serial: displaySerial(r.serial),
            notAfter: iso(r.notAfter),
            renewAt: iso(renewAt),
          };
        }),
      };
    }),
  };
}
