/**
 * Standby intermediates, the ceremony side: a second key per scope, signed by
 * the root now and encrypted to the break-glass recipient only, so the on-call
 * security team can swap it in (trellis-ci activate-standby) when the active
 * key is burned, without reaching the air-gapped root. It is in no bundle.
 */
import {
  TrellisError, certRef, certificatePem, encryptTo, fingerprint, inRole, lastConfirmedRecord, liveIntermediates, paths, scopeDef,
  type FileWrite,
} from '@trellis/core';
import { mintIntermediate, type RootSigner } from './ceremony.js';
import type { Ceremony, ProcedureResult } from './procedures.js';
import { offlineEntry } from './records.js';

/**
 * The break-glass recipient must be one the custodian confirmed: trellis.yaml
 * is a file a pull request can edit, and a redirected recipient would hand the
 * standby key to whoever wrote it. First use and every change need --confirm-recipients.
 */
export function breakglassToRecord(c: Ceremony, confirmed: boolean): Record<string, unknown> {
  const current = c.mesh.config.recipients.breakglass;
  if (!current) {
    throw new TrellisError('bad-config', 'no break-glass recipient: a standby key needs a reader who is neither the custodian nor CI', {
      file: 'trellis.yaml', field: 'recipients.breakglass', hint: "add the on-call security team's age recipient as recipients.breakglass, then rerun with --confirm-recipients",
    });
  }
  const recorded = lastConfirmedRecord(c.mesh, 'breakglassRecipient')?.breakglassRecipient;
  if (recorded === current) return {};
  if (!confirmed) {
    throw new TrellisError('custody-recipients', `recipients.breakglass ${recorded === undefined ? 'has never been confirmed' : `changed since the root ledger last recorded it (${String(recorded)} → ${current})`}: the standby key would be encrypted to it`, {
      file: 'trellis.yaml', field: 'recipients.breakglass', hint: 'check it with the on-call security team and rerun with --confirm-recipients (recorded in the root ledger); otherwise restore trellis.yaml',
    });
  }
  return { breakglassRecipient: current };
}

/** `trellis-root intermediate --standby SCOPE…`: one standby per target scope that has an active intermediate and no standby yet. */
export async function mintStandbys(c: Ceremony, targets: string[], root: RootSigner, confirmed: boolean): Promise<ProcedureResult> {
  const { mesh, now } = c;
  const recorded = breakglassToRecord(c, confirmed);
  const breakglass = mesh.config.recipients.breakglass!;
  const writes: FileWrite[] = [];
  const minted: { scope: string; fp: string; ref: ReturnType<typeof certRef> }[] = [];
  for (const scope of targets) {
    scopeDef(mesh, scope);
    const live = liveIntermediates(mesh, scope);
    if (!inRole(live, 'active')) throw new TrellisError('not-yet-minted', `scope ${scope} has no intermediate yet: a standby stands beside one`, { file: paths.intermediate(scope), hint: `trellis-root intermediate ${scope} first` });
    if (inRole(live, 'standby')) throw new TrellisError('already-minted', `scope ${scope} already has a standby intermediate`, { file: paths.standbyIntermediate(scope), hint: 'one standby per scope; it is replaced after activate-standby, at the next ceremony' });
    const ca = await mintIntermediate(scope, mesh.config, root, now, c.seam);
    const ref = certRef(ca.cert);
    minted.push({ scope, fp: fingerprint(ca.cert), ref });
    writes.push(
      { path: paths.standbyIntermediate(scope), content: certificatePem(ca.cert) },
      // The break-glass recipient only: neither CI nor the custodian can open it.
      { path: paths.standbyIntermediateKey(scope), content: await encryptTo([breakglass], ca.keyPem) },
      { path: paths.ledger(scope), content: offlineEntry(mesh.material.get(scope)!.ledger, 'standby', now, c.posture, { scope, root: fingerprint(root.cert), standby: fingerprint(ca.cert) }, [{ kind: 'intermediate', ...ref }], root) },
    );
  }
  writes.push({
    path: paths.rootLedger,
    content: offlineEntry(mesh.rootLedger, 'standby', now, c.posture, { scopes: targets, ...c.recipients, ...recorded }, minted.map((m) => ({ kind: 'intermediate' as const, ...m.ref })), root),
  });
  return {
    writes,
    report: [
      ...minted.map((m) => `minted ${m.scope} standby intermediate ${m.fp}, encrypted to the break-glass recipient only; in no bundle`),
      'commit the store; on a compromise of the active key the on-call team runs trellis-ci activate-standby SCOPE',
    ],
  };
}
