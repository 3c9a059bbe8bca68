import type { CommandModule } from 'yargs';
import {
  TrellisError,
  activeIntermediate,
  advanceRoot,
  advanceScope,
  assertFleetGateable,
  assertNoRootOverlap,
  parseDuration,
  scopeDef,
} from '@trellis/core';
import { loadMesh, type Store } from '@trellis/core/store';
import { clock, withStore } from '@trellis/core/shell';
import { openRootKey } from '../ceremony.js';
import { ceremony, rootIdentities, say } from '../ceremony-context.js';
import { requireOfflinePosture } from '../posture.js';
import {
  abortIntermediateRotation,
  beginIntermediateRotation,
  beginRootRotation,
  finalizeRootRotation,
  assertWaivable,
  waiveFleetEndpoint,
} from '../root-procedures.js';
import type { Posture } from '../records.js';
import { parseTokenUri } from '../token.js';

interface Args {
  store?: string;
  what: 'intermediate' | 'root';
  scope?: string;
  propagation?: string;
  gate?: 'time' | 'fleet';
  waive?: string;
  reason?: string;
  abort?: boolean;
  finalize?: boolean;
  rootKey?: string;
  confirmRecipients?: boolean;
  now?: string;
  allowOnline?: boolean;
}

export const rotate: CommandModule<object, Args> = {
  command: 'rotate <what> [scope]',
  describe: 'Begin (or abort) a planned intermediate rotation; begin or finalize a root rotation',
  builder: (y) =>
    y
      .positional('what', { choices: ['intermediate', 'root'] as const, demandOption: true })
      .positional('scope', { type: 'string', describe: 'the scope (rotate intermediate)' })
      .option('propagation', {
        type: 'string',
        describe:
          'how long bundles trusting {old, new} propagate before CI switches signing (default ' +
          'defaults.overlap.propagation, 24h)',
      })
      .option('gate', {
        choices: ['time', 'fleet'] as const,
        describe:
          'intermediate: `fleet` also holds each gate until probes (trellis-ci probe) show every endpoint ready; ' +
          'recorded in the root-signed rotation (docs/fleet-gates.md); default time',
      })
      .option('waive', {
        type: 'string',
        describe:
          'intermediate: the fleet gate of the rotation under way stops waiting for this confirmed probe endpoint ' +
          '(needs --reason; signed and recorded)',
      })
      .option('reason', { type: 'string', describe: 'why the endpoint is waived (with --waive)' })
      .option('abort', {
        type: 'boolean',
        describe:
          'intermediate: signing back on the old intermediate (until retire); after the switch the aborted one ' +
          'stays trusted until its leaves expire',
      })
      .option('finalize', {
        type: 'boolean',
        describe: 'root: drop the old root, the link and the old intermediate certificates',
      })
      .option('root-key', {
        type: 'string',
        describe:
          "root: generate the new root's key on this PKCS#11 token (RFC 7512 URI); without it the new key is a " +
          'file encrypted to the offline recipients',
      })
      .example('$0 rotate intermediate us-east-1', 'planned rotation; CI runs the phases')
      .example('$0 rotate intermediate us-east-1 --propagation 1h', 'a key holder left: do not wait a day')
      .example('$0 rotate intermediate us-east-1 --gate fleet', 'each gate waits for probes of every endpoint')
      .example(
        '$0 rotate intermediate us-east-1 --abort',
        'the rollout went wrong (a stolen new key is a job for recover)',
      )
      .example(
        '$0 rotate root',
        'then, once consumers have the new root: trellis-root rotate root --finalize',
      ) as never,
  handler: async (a) => {
    const posture = requireOfflinePosture(a);
    if (a.what === 'intermediate') {
      if (!a.scope) throw new TrellisError('usage', 'rotate intermediate needs a SCOPE');
      if (a.finalize || a.rootKey !== undefined)
        throw new TrellisError('usage', `${a.finalize ? '--finalize' : '--root-key'} belongs to rotate root`);
      if (a.abort && (a.propagation || a.gate))
        throw new TrellisError('usage', `--abort takes no ${a.gate ? '--gate' : '--propagation'}`);
      if (a.waive !== undefined || a.reason !== undefined) {
        if (!a.waive || !a.reason?.trim() || a.abort || a.propagation || a.gate)
          throw new TrellisError('usage', '--waive ENDPOINT takes --reason TEXT, and nothing else', {
            hint: 'trellis-root rotate intermediate S --waive E --reason "decommissioned host"',
          });
        return withStore(a.store, (store) => waive(store, a.scope!, a.waive!, a.reason!, a, posture));
      }
      const propagation =
        a.propagation === undefined ? undefined : parseDuration(a.propagation, { field: '--propagation' }, 'usage');
      await withStore(a.store, (store) =>
        a.abort
          ? abortIntermediate(store, a.scope!, a, posture)
          : beginIntermediate(store, a.scope!, propagation, a, posture),
      );
    } else {
      if (a.scope || a.abort || a.propagation || a.gate || a.waive !== undefined)
        throw new TrellisError('usage', 'rotate root takes only --finalize or --root-key');
      if (a.finalize && a.rootKey !== undefined)
        throw new TrellisError(
          'usage',
          '--root-key names where the new root key is made: it belongs to the start of a rotation, not --finalize',
        );
      if (a.rootKey !== undefined) parseTokenUri(a.rootKey);
      await withStore(a.store, (store) =>
        a.finalize ? finalizeRoot(store, a, posture) : beginRoot(store, a, posture),
      );
    }
  },
};

async function beginIntermediate(
  store: Store,
  scope: string,
  propagationFlag: number | undefined,
  a: Args,
  posture: Posture,
): Promise<void> {
  const mesh = loadMesh(store);
  const now = clock(a.now);
  scopeDef(mesh, scope);
  activeIntermediate(mesh, scope);
  assertNoRootOverlap(mesh.rootState!, scope);
  const propagation = propagationFlag ?? mesh.config.overlap.propagation;
  // Refuses a wrong phase, or a fleet gate with no endpoint to wait for, before the root key is touched.
  advanceScope(mesh.material.get(scope)!.state!, { type: 'begin', next: '', propagation, id: '' }, now, scope);
  if (a.gate === 'fleet') assertFleetGateable(mesh, scope);
  const c = ceremony(mesh, now, posture, a.confirmRecipients);
  const result = await beginIntermediateRotation(
    c,
    scope,
    propagation,
    await openRootKey(mesh, rootIdentities(), now),
    a.gate === 'fleet' ? 'fleet' : undefined,
  );
  store.commit(result.writes);
  say(result.report);
}

async function waive(store: Store, scope: string, endpoint: string, reason: string, a: Args, posture: Posture) {
  const mesh = loadMesh(store);
  scopeDef(mesh, scope);
  const now = clock(a.now);
  assertWaivable(mesh, scope, endpoint);
  const c = ceremony(mesh, now, posture, a.confirmRecipients);
  const result = waiveFleetEndpoint(c, scope, endpoint, reason, await openRootKey(mesh, rootIdentities(), now));
  store.commit(result.writes);
  say(result.report);
}

async function abortIntermediate(store: Store, scope: string, a: Args, posture: Posture): Promise<void> {
  const mesh = loadMesh(store);
  scopeDef(mesh, scope);
  activeIntermediate(mesh, scope);
  const now = clock(a.now);
  // Refuses before the root key is touched.
  advanceScope(mesh.material.get(scope)!.state!, { type: 'abort', longestLeafTtl: 0 }, now, scope);
  // Both ledgers' entries are root-signed, so an abort opens the root key too.
  const result = abortIntermediateRotation(
    ceremony(mesh, now, posture, a.confirmRecipients),
    scope,
    await openRootKey(mesh, rootIdentities(), now),
  );
  store.commit(result.writes);
  say(result.report);
}

async function beginRoot(store: Store, a: Args, posture: Posture): Promise<void> {
  const mesh = loadMesh(store);
  const now = clock(a.now);
  // Refuses a second rotation before the root key is touched.
  advanceRoot(mesh.rootState!, { type: 'begin', fresh: '', retiringKey: '', id: '' }, now);
  const c = ceremony(mesh, now, posture, a.confirmRecipients);
  const result = await beginRootRotation(c, await openRootKey(mesh, rootIdentities(), now), a.rootKey);
  store.commit(result.writes);
  say(result.report);
}

async function finalizeRoot(store: Store, a: Args, posture: Posture): Promise<void> {
  const mesh = loadMesh(store);
  const now = clock(a.now);
  advanceRoot(mesh.rootState!, { type: 'finalize' }, now);
  // Custody gate: the offline identity must open the new root key before the old root is dropped.
  const result = await finalizeRootRotation(
    ceremony(mesh, now, posture, a.confirmRecipients),
    await openRootKey(mesh, rootIdentities(), now),
  );
  store.commit(result.writes);
  say(result.report);
}
