/**
 * Rotation as reducers: `advance(state, event, now) → { state, effects }`.
 * Phases and gates are data here; the shells persist the state and carry
 * out the effects (moving certificate and key files, re-minting leaves).
 *
 * Planned intermediate rotation:
 *   steady ─begin→ publish ─(propagation elapsed)→ switch ─(longest leaf TTL elapsed)→ steady
 *   publish: bundles trust {old, new}, signing stays on old.
 *   switch:  bundles trust {old, new}, signing on new, every leaf re-minted.
 *   abort in publish: back to steady; new dropped from bundles (it signed nothing).
 *   abort in switch: signing back on old, and new stays trusted as the one being
 *     retired until the leaves it signed have expired (the same retire gate), so
 *     an abort never fails a handshake.
 * Compromise recovery: any phase → steady on a fresh key; everything else revoked.
 */
import { TrellisError } from '../model/errors.js';
import { iso } from '../model/time.js';

type ScopePhase = 'steady' | 'publish' | 'switch';

export interface RevokedLeaf {
  service: string;
  serial: string;
  /** Key id of the issuing intermediate. */
  issuer: string;
  notAfter: string;
  at: string;
  reason: string;
}

interface ScopeRotation {
  id: string;
  /** Bundle propagation window, ms. */
  propagation: number;
  started: string;
  /** When the switch gate opens. */
  switchAt: string;
  switched?: string;
  /** When the retire gate opens: every old-key leaf has expired. */
  retireAt?: string;
  /** Set when the rotation was aborted after its switch: it winds down through the retire gate. */
  aborted?: string;
  /** `fleet`: each gate also waits for probe evidence that the fleet is ready (fleet-gate.ts); absent: time only. */
  gate?: 'fleet';
}

export interface ScopeState {
  phase: ScopePhase;
  /** Fingerprint of the signing intermediate. */
  active: string;
  /** publish: the intermediate being introduced. */
  next?: string;
  /** switch: the intermediate being retired. */
  previous?: string;
  since: string;
  rotation?: ScopeRotation;
  /** Id of the evidence record of the procedure under way (rotation or recovery). */
  evidence?: string;
  revoked: RevokedLeaf[];
}

/**
 * What the retire gate waits for: the longest declared leaf TTL, and the latest expiry among leaves the record holds.
 */
export interface LeafLifetimes {
  longestLeafTtl: number;
  latestLeafExpiry?: Date;
}

/** When every leaf signed before `now` has expired. */
const retireGate = (now: Date, l: LeafLifetimes): string =>
  iso(new Date(Math.max(now.getTime() + l.longestLeafTtl, l.latestLeafExpiry?.getTime() ?? 0)));

export type ScopeEvent =
  | { type: 'begin'; next: string; propagation: number; id: string; gate?: 'fleet' }
  // fleetReady: what the probe evidence says of the gate the phase waits on; only a fleet-gated rotation asks.
  | ({ type: 'tick'; fleetReady?: boolean } & LeafLifetimes)
  | ({ type: 'abort' } & LeafLifetimes)
  | { type: 'recover'; fresh: string };

/** What the shell must do to the files for the new state to hold. */
export type ScopeEffect =
  | 'stage-next' // write the new intermediate beside the active one
  | 'promote-next' // active → previous, next → active; every leaf becomes due
  | 'retire-previous' // delete the previous intermediate and its key
  | 'drop-next' // delete the next intermediate and its key
  // previous ↔ active: signing returns to the old key, the aborted one is retired like an old one;
  // every leaf becomes due
  | 'swap-previous'
  | 'replace-all'; // a fresh active intermediate; every other one deleted; every leaf becomes due

export interface Transition<S, E> {
  state: S;
  effects: E[];
  /** The phase step taken, for ledgers and evidence; undefined when nothing changed. */
  step?: string;
}

function refuse(detail: string, hint: string): never {
  throw new TrellisError('wrong-phase', detail, { hint });
}

export function advanceScope(
  s: ScopeState,
  e: ScopeEvent,
  now: Date,
  scope = 'this scope',
): Transition<ScopeState, ScopeEffect> {
  const at = iso(now);
  switch (e.type) {
    case 'begin':
      if (s.phase !== 'steady')
        refuse(
          `${scope} is already rotating (phase ${s.phase})`,
          `let CI finish it (trellis-ci renew), or abort it: trellis-root rotate intermediate ${scope} --abort`,
        );
      return {
        state: {
          ...s,
          phase: 'publish',
          next: e.next,
          since: at,
          rotation: {
            id: e.id,
            propagation: e.propagation,
            started: at,
            switchAt: iso(new Date(now.getTime() + e.propagation)),
            ...(e.gate ? { gate: e.gate } : {}),
          },
        },
        effects: ['stage-next'],
        step: 'publish',
      };
    case 'tick': {
      const r = s.rotation;
      // An aborted rotation winds down on time: the fleet already holds leaves of the key it returned to.
      if (r?.gate === 'fleet' && !r.aborted && !e.fleetReady) return { state: s, effects: [] };
      if (s.phase === 'publish' && r && now >= new Date(r.switchAt)) {
        return {
          state: {
            ...s,
            phase: 'switch',
            active: s.next!,
            previous: s.active,
            next: undefined,
            since: at,
            // Every old-key leaf must have expired: the longest declared TTL from now, or a recorded leaf that lives
            // longer (a TTL lowered since).
            rotation: { ...r, switched: at, retireAt: retireGate(now, e) },
          },
          effects: ['promote-next'],
          step: 'switch',
        };
      }
      if (s.phase === 'switch' && r?.retireAt && now >= new Date(r.retireAt)) {
        return {
          state: { ...s, phase: 'steady', previous: undefined, since: at, rotation: undefined },
          effects: ['retire-previous'],
          step: 'retire',
        };
      }
      return { state: s, effects: [] };
    }
    case 'abort':
      if (s.phase === 'publish')
        return {
          state: { ...s, phase: 'steady', next: undefined, since: at, rotation: undefined },
          effects: ['drop-next'],
          step: 'abort',
        };
      if (s.phase === 'switch') {
        if (s.rotation?.aborted)
          refuse(
            `${scope}'s rotation was already aborted at ${s.rotation.aborted}`,
            'it winds down by itself at its retire gate; if the key is compromised, trellis-root recover',
          );
        // Leaves the aborted key signed are live on hosts: it stays trusted until they expire.
        return {
          state: {
            ...s,
            active: s.previous!,
            previous: s.active,
            since: at,
            rotation: { ...s.rotation!, aborted: at, retireAt: retireGate(now, e) },
          },
          effects: ['swap-previous'],
          step: 'abort',
        };
      }
      return refuse(`${scope} has no rotation to abort`, 'abort applies during publish and switch, before retire');
    case 'recover':
      return {
        state: {
          ...s,
          phase: 'steady',
          active: e.fresh,
          next: undefined,
          previous: undefined,
          since: at,
          rotation: undefined,
        },
        effects: ['replace-all'],
        step: 'recover',
      };
  }
}

/** When the next gate of a scope opens, for status. */
export function nextGate(s: ScopeState): { gate: string; at: string } | undefined {
  if (s.phase === 'publish' && s.rotation) return { gate: 'switch', at: s.rotation.switchAt };
  if (s.phase === 'switch' && s.rotation?.retireAt) return { gate: 'retire', at: s.rotation.retireAt };
  return undefined;
}

type RootPhase = 'steady' | 'overlap';

export interface RevokedIntermediate {
  scope: string;
  serial: string;
  fingerprint: string;
  /** Key id of the root that issued it. */
  issuer: string;
  notAfter: string;
  at: string;
  reason: string;
}

export interface RootState {
  phase: RootPhase;
  /** Fingerprint of the active root. */
  active: string;
  /** overlap: fingerprint and key id of the root being retired. */
  previous?: string;
  previousKey?: string;
  since: string;
  rotation?: { id: string; started: string };
  revoked: RevokedIntermediate[];
}

export type RootEvent = { type: 'begin'; fresh: string; retiringKey: string; id: string } | { type: 'finalize' };
export type RootEffect = 'stage-new-root' | 'drop-old-root';

export function advanceRoot(s: RootState, e: RootEvent, now: Date): Transition<RootState, RootEffect> {
  const at = iso(now);
  if (e.type === 'begin') {
    if (s.phase !== 'steady')
      refuse('a root rotation is already in its overlap', 'finish it: trellis-root rotate root --finalize');
    return {
      state: {
        ...s,
        phase: 'overlap',
        active: e.fresh,
        previous: s.active,
        previousKey: e.retiringKey,
        since: at,
        rotation: { id: e.id, started: at },
      },
      effects: ['stage-new-root'],
      step: 'overlap',
    };
  }
  if (s.phase !== 'overlap') refuse('no root rotation to finalize', 'begin one with trellis-root rotate root');
  return {
    state: {
      ...s,
      phase: 'steady',
      previous: undefined,
      previousKey: undefined,
      since: at,
      rotation: undefined,
      revoked: s.revoked.filter((r) => r.issuer !== s.previousKey),
    },
    effects: ['drop-old-root'],
    step: 'finalize',
  };
}

/** The guard between the two kinds of rotation. */
export function assertNoRootOverlap(root: RootState, scope: string): void {
  if (root.phase === 'overlap') {
    refuse(
      `a root rotation is in its overlap: no planned rotation of ${scope} until it is finalized`,
      'finalize the root rotation (trellis-root rotate root --finalize) first; a compromised intermediate can ' +
        'still be recovered now with trellis-root recover',
    );
  }
}
