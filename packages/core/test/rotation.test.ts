import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  advanceRoot,
  advanceScope,
  nextGate,
  type RootState,
  type ScopeEvent,
  type ScopeState,
} from '../src/rotation/rotation.js';
import { TrellisError } from '../src/model/errors.js';

const T = (h: number) => new Date(Date.UTC(2027, 0, 1) + h * 3_600_000);
const steady: ScopeState = { phase: 'steady', active: 'A', since: '2027-01-01T00:00:00Z', revoked: [] };
const DAY = 24 * 3_600_000;
const begin: ScopeEvent = { type: 'begin', next: 'B', propagation: DAY, id: 'r1' };
const tick: ScopeEvent = { type: 'tick', longestLeafTtl: 7 * DAY };
const abort: ScopeEvent = { type: 'abort', longestLeafTtl: 7 * DAY };

function refused(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof TrellisError) return `${e.reason}/${e.exitCode}`;
    throw e;
  }
  return undefined;
}

describe('planned intermediate rotation, as a table', () => {
  const publish = advanceScope(steady, begin, T(0)).state;
  const switched = advanceScope(publish, tick, T(24)).state;
  it.each([
    ['begin from steady publishes the next intermediate', steady, begin, T(0), 'publish', ['stage-next']],
    ['a tick before the propagation gate changes nothing', publish, tick, T(23), 'publish', []],
    ['a tick at the gate switches signing to the new intermediate', publish, tick, T(24), 'switch', ['promote-next']],
    ['a tick before every old-key leaf has expired changes nothing', switched, tick, T(24 + 7 * 24 - 1), 'switch', []],
    [
      'a tick once the longest leaf TTL has passed retires the old one',
      switched,
      tick,
      T(24 + 7 * 24),
      'steady',
      ['retire-previous'],
    ],
    ['abort during publish drops the new one', publish, abort, T(1), 'steady', ['drop-next']],
    [
      'abort during switch switches back: the old key signs, the aborted one is retired like an old one',
      switched,
      abort,
      T(30),
      'switch',
      ['swap-previous'],
    ],
    [
      'an aborted switch retires the aborted key at its own retire gate',
      advanceScope(switched, abort, T(30)).state,
      tick,
      T(30 + 7 * 24),
      'steady',
      ['retire-previous'],
    ],
    [
      'recover from any phase replaces everything',
      switched,
      { type: 'recover', fresh: 'C' },
      T(30),
      'steady',
      ['replace-all'],
    ],
  ] as const)('%s', (_, state, event, now, phase, effects) => {
    const t = advanceScope(state as ScopeState, event as ScopeEvent, now);
    expect(t.state.phase).toBe(phase);
    expect(t.effects).toEqual(effects);
  });
  it('switch makes the new intermediate active and keeps the old one trusted as previous', () => {
    expect(switched).toMatchObject({ active: 'B', previous: 'A', next: undefined });
    expect(nextGate(switched)).toEqual({ gate: 'retire', at: '2027-01-09T00:00:00Z' });
  });
  it('the retire gate waits for a recorded leaf that outlives the longest declared TTL (a TTL lowered since)', () => {
    const t = advanceScope(publish, { type: 'tick', longestLeafTtl: DAY, latestLeafExpiry: T(24 + 5 * 24) }, T(24));
    expect(t.state.rotation!.retireAt).toBe(
      T(24 + 5 * 24)
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z'),
    );
  });
  it('abort during switch puts signing back on the old key and keeps the aborted one trusted until its leaves expire', () => {
    const t = advanceScope(switched, abort, T(30)).state;
    expect(t).toMatchObject({ phase: 'switch', active: 'A', previous: 'B' });
    expect(nextGate(t)).toEqual({ gate: 'retire', at: '2027-01-09T06:00:00Z' });
  });
  it.each([
    ['a second begin during publish', publish, begin],
    ['a begin during switch', switched, begin],
    ['an abort with nothing to abort', steady, abort],
    ['a second abort of an aborted switch', advanceScope(switched, abort, T(30)).state, abort],
  ] as const)('refuses %s (exit 1)', (_, state, event) => {
    expect(refused(() => advanceScope(state as ScopeState, event as ScopeEvent, T(2)))).toBe('wrong-phase/1');
  });
});

describe('rotation invariants under any sequence of events', () => {
  it('publish holds exactly a next, switch exactly a previous, steady neither; the active key is always defined', () => {
    const event = fc.oneof(
      fc.constant<ScopeEvent>(begin),
      fc.constant<ScopeEvent>(tick),
      fc.constant<ScopeEvent>(abort),
      fc.constant<ScopeEvent>({ type: 'recover', fresh: 'C' }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(event, fc.integer({ min: 0, max: 400 })), { maxLength: 30 }), (steps) => {
        let s = steady;
        let hours = 0;
        for (const [e, dt] of steps) {
          hours += dt;
          try {
            s = advanceScope(s, e, T(hours)).state;
          } catch (err) {
            if (!(err instanceof TrellisError && err.reason === 'wrong-phase')) throw err;
          }
          expect(Boolean(s.next)).toBe(s.phase === 'publish');
          expect(Boolean(s.previous)).toBe(s.phase === 'switch');
          expect(s.active).toBeTruthy();
          expect(Boolean(s.rotation)).toBe(s.phase !== 'steady');
        }
      }),
    );
  });
});

describe('root rotation', () => {
  const root: RootState = {
    phase: 'steady',
    active: 'R1',
    since: 'x',
    revoked: [
      {
        scope: 's',
        serial: '1',
        fingerprint: 'f',
        issuer: 'k1',
        notAfter: '2030-01-01T00:00:00Z',
        at: 'x',
        reason: 'r',
      },
    ],
  };
  it('begin enters the overlap with the old root as previous; finalize drops it and its CRL entries', () => {
    const o = advanceRoot(root, { type: 'begin', fresh: 'R2', retiringKey: 'k1', id: 'x' }, T(0));
    expect(o.state).toMatchObject({ phase: 'overlap', active: 'R2', previous: 'R1' });
    const f = advanceRoot(o.state, { type: 'finalize' }, T(1));
    expect(f.state).toMatchObject({ phase: 'steady', active: 'R2', previous: undefined, revoked: [] });
    expect(f.effects).toEqual(['drop-old-root']);
  });
  it('refuses a second begin and a finalize without an overlap', () => {
    const o = advanceRoot(root, { type: 'begin', fresh: 'R2', retiringKey: 'k1', id: 'x' }, T(0)).state;
    expect(refused(() => advanceRoot(o, { type: 'begin', fresh: 'R3', retiringKey: 'k2', id: 'y' }, T(1)))).toBe(
      'wrong-phase/1',
    );
    expect(refused(() => advanceRoot(root, { type: 'finalize' }, T(1)))).toBe('wrong-phase/1');
  });
});

describe('a fleet-gated rotation (--gate fleet)', () => {
  const fleetBegin: ScopeEvent = { ...begin, gate: 'fleet' } as ScopeEvent;
  const publish = advanceScope(steady, fleetBegin, T(0)).state;
  const ready = (fleetReady: boolean): ScopeEvent => ({ type: 'tick', longestLeafTtl: 7 * DAY, fleetReady });
  it('records the mode in the state the root signs', () => {
    expect(publish.rotation?.gate).toBe('fleet');
    expect(advanceScope(steady, begin, T(0)).state.rotation?.gate).toBeUndefined();
  });
  it.each([
    ['time passed, fleet not ready: holds', publish, ready(false), T(48), 'publish'],
    ['fleet ready, time not passed: holds', publish, ready(true), T(23), 'publish'],
    ['both: switches', publish, ready(true), T(24), 'switch'],
  ])('publish → switch: %s', (_, s, e, now, phase) => {
    expect(advanceScope(s, e, now).state.phase).toBe(phase);
  });
  it('switch → retire waits for the fleet and for the longest leaf TTL', () => {
    const sw = advanceScope(publish, ready(true), T(24)).state;
    expect(advanceScope(sw, ready(false), T(24 * 30)).state.phase).toBe('switch');
    expect(advanceScope(sw, ready(true), T(24 + 7 * 24 - 1)).state.phase).toBe('switch');
    expect(advanceScope(sw, ready(true), T(24 + 7 * 24)).state.phase).toBe('steady');
  });
  it('an aborted fleet-gated rotation winds down on time: the fleet already holds leaves of the key it returned to', () => {
    const sw = advanceScope(publish, ready(true), T(24)).state;
    const aborted = advanceScope(sw, abort, T(25)).state;
    expect(advanceScope(aborted, ready(false), T(25 + 7 * 24)).state.phase).toBe('steady');
  });
  it('a time-gated rotation ignores the fleet', () => {
    const p = advanceScope(steady, begin, T(0)).state;
    expect(advanceScope(p, ready(false), T(24)).state.phase).toBe('switch');
  });
});
