/** `bundles/<scope>/state.yaml` and `bundles/root/state.yaml`: machine-managed, fixed key order. */
import { TrellisError } from '../model/errors.js';
import { fromYaml, toYaml } from '../config/config.js';
import { parseDuration, formatDuration } from '../model/time.js';
import type { RevokedIntermediate, RevokedLeaf, RootState, ScopeState } from '../rotation/rotation.js';

type Raw = Record<string, unknown>;

function reader(file: string) {
  const bad = (field: string): never => {
    throw new TrellisError('corrupt-store', 'missing or malformed', {
      file,
      field,
      hint: 'this file is machine-managed: restore it from git',
    });
  };
  return {
    str: (o: Raw, k: string, at = k) => (typeof o[k] === 'string' ? (o[k] as string) : bad(at)),
    opt: (o: Raw, k: string, at = k) =>
      o[k] === undefined || o[k] === null ? undefined : typeof o[k] === 'string' ? (o[k] as string) : bad(at),
    list: (o: Raw, k: string) => (o[k] === undefined ? [] : Array.isArray(o[k]) ? (o[k] as Raw[]) : bad(k)),
    bad,
  };
}

const strip = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/**
 * The evidence id names a file under bundles/<scope>/evidence/: a path that could climb out of the store is refused,
 * never read.
 */
function evidenceId(id: string | undefined, bad: (field: string) => never): string | undefined {
  return id === undefined || /^[0-9A-Za-z][0-9A-Za-z_-]*$/.test(id) ? id : bad('evidence');
}

const fleetOrNone = (g: string | undefined, bad: (field: string) => never): 'fleet' | undefined =>
  g === undefined || g === 'fleet' ? g : bad('rotation.gate');

export function parseScopeState(text: string, file: string): ScopeState {
  const o = (fromYaml(text, file) ?? {}) as Raw;
  const r = reader(file);
  const phase = r.str(o, 'phase');
  if (!['steady', 'publish', 'switch'].includes(phase)) r.bad('phase');
  const rot = o.rotation as Raw | undefined;
  return strip({
    phase: phase as ScopeState['phase'],
    active: r.str(o, 'active'),
    next: r.opt(o, 'next'),
    previous: r.opt(o, 'previous'),
    since: r.str(o, 'since'),
    evidence: evidenceId(r.opt(o, 'evidence'), r.bad),
    rotation: rot
      ? strip({
          id: r.str(rot, 'id', 'rotation.id'),
          propagation: parseDuration(
            r.str(rot, 'propagation', 'rotation.propagation'),
            { file, field: 'rotation.propagation' },
            'corrupt-store',
          ),
          started: r.str(rot, 'started', 'rotation.started'),
          switchAt: r.str(rot, 'switchAt', 'rotation.switchAt'),
          switched: r.opt(rot, 'switched', 'rotation.switched'),
          retireAt: r.opt(rot, 'retireAt', 'rotation.retireAt'),
          aborted: r.opt(rot, 'aborted', 'rotation.aborted'),
          gate: fleetOrNone(r.opt(rot, 'gate', 'rotation.gate'), r.bad),
        })
      : undefined,
    revoked: r.list(o, 'revoked').map((x, i) => ({
      service: r.str(x, 'service', `revoked[${i}].service`),
      serial: r.str(x, 'serial', `revoked[${i}].serial`),
      issuer: r.str(x, 'issuer', `revoked[${i}].issuer`),
      notAfter: r.str(x, 'notAfter', `revoked[${i}].notAfter`),
      at: r.str(x, 'at', `revoked[${i}].at`),
      reason: r.str(x, 'reason', `revoked[${i}].reason`),
    })),
  });
}

export function serializeScopeState(s: ScopeState): string {
  return toYaml(
    strip({
      phase: s.phase,
      active: s.active,
      next: s.next,
      previous: s.previous,
      since: s.since,
      evidence: s.evidence,
      rotation: s.rotation ? strip({ ...s.rotation, propagation: formatDuration(s.rotation.propagation) }) : undefined,
      revoked: s.revoked.length
        ? s.revoked.map((x: RevokedLeaf) => ({
            service: x.service,
            serial: x.serial,
            issuer: x.issuer,
            notAfter: x.notAfter,
            at: x.at,
            reason: x.reason,
          }))
        : undefined,
    }),
  );
}

export function parseRootState(text: string, file: string): RootState {
  const o = (fromYaml(text, file) ?? {}) as Raw;
  const r = reader(file);
  const phase = r.str(o, 'phase');
  if (!['steady', 'overlap'].includes(phase)) r.bad('phase');
  const rot = o.rotation as Raw | undefined;
  return strip({
    phase: phase as RootState['phase'],
    active: r.str(o, 'active'),
    previous: r.opt(o, 'previous'),
    previousKey: r.opt(o, 'previousKey'),
    since: r.str(o, 'since'),
    rotation: rot
      ? { id: r.str(rot, 'id', 'rotation.id'), started: r.str(rot, 'started', 'rotation.started') }
      : undefined,
    revoked: r.list(o, 'revoked').map((x, i) => {
      const f = (k: string) => r.str(x, k, `revoked[${i}].${k}`);
      return {
        scope: f('scope'),
        serial: f('serial'),
        fingerprint: f('fingerprint'),
        issuer: f('issuer'),
        notAfter: f('notAfter'),
        at: f('at'),
        reason: f('reason'),
      };
    }),
  });
}

export function serializeRootState(s: RootState): string {
  return toYaml(
    strip({
      phase: s.phase,
      active: s.active,
      previous: s.previous,
      previousKey: s.previousKey,
      since: s.since,
      rotation: s.rotation,
      revoked: s.revoked.length
        ? s.revoked.map((x: RevokedIntermediate) => ({
            scope: x.scope,
            serial: x.serial,
            fingerprint: x.fingerprint,
            issuer: x.issuer,
            notAfter: x.notAfter,
            at: x.at,
            reason: x.reason,
          }))
        : undefined,
    }),
  );
}
