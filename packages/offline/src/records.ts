/** What every offline operation records: ledger entries that note the posture, and the custodian's confirmations. */
import {
  TrellisError,
  actor,
  allowListDigest,
  appendToLedger,
  ciScopesRecord,
  iso,
  lastConfirmedRecord,
  ledgerSigner,
  unconfirmedCiRecipients,
  type Created,
  type DeployAllowList,
  type Mesh,
} from '@trellis/core';
import type { RootSigner } from './ceremony.js';

export interface Posture {
  allowOnline: boolean;
  onlineInterfaces: string[];
}

/**
 * Appends one entry to a ledger text, signed by `root` (the active root of the ceremony); offline entries always carry
 * the posture they ran in.
 */
export function offlineEntry(
  ledger: string,
  op: string,
  now: Date,
  posture: Posture,
  details: Record<string, unknown>,
  created: Created[],
  root: RootSigner,
): string {
  return appendToLedger(
    ledger,
    { op, at: iso(now), actor: actor(), details: { ...details, ...posture }, created },
    'ledger.jsonl',
    ledgerSigner(root),
  ).text;
}

/**
 * Keys are encrypted to the recipients in trellis.yaml, a file a pull request
 * can change. Every ceremony compares them with the last ones the root ledger
 * recorded, and refuses a change the custodian has not confirmed. Returns what
 * to record (nothing when unchanged).
 */
export function recipientsToRecord(mesh: Mesh, confirmed: boolean): Record<string, unknown> {
  const current = {
    ciRecipient: mesh.config.recipients.ci,
    offlineRecipients: mesh.config.recipients.offline,
    ...ciScopesRecord(mesh.config),
  };
  // Only a root-signed entry confirms (or, on a ledger written before ledgers were signed, its legacy prefix): a pull
  // request can append anything else.
  const recorded = lastConfirmedRecord(mesh, 'ciRecipient');
  if (!recorded) return current;
  const scopes = unconfirmedCiRecipients(mesh)
    .filter((u) => u.field !== 'recipients.ci')
    .map((u) => u.text);
  const same =
    recorded.ciRecipient === current.ciRecipient &&
    JSON.stringify(recorded.offlineRecipients) === JSON.stringify(current.offlineRecipients) &&
    !scopes.length;
  if (same) return {};
  if (!confirmed) {
    const what =
      recorded.ciRecipient !== current.ciRecipient
        ? `recipients.ci ${String(recorded.ciRecipient)} → ${current.ciRecipient}`
        : scopes.length
          ? scopes.join('; ')
          : 'recipients.offline';
    throw new TrellisError(
      'custody-recipients',
      `changed since the root ledger last recorded it (${what}): new keys would be encrypted to it`,
      {
        file: 'trellis.yaml',
        field: 'recipients',
        hint:
          'if you rotated that identity on purpose, rerun with --confirm-recipients (recorded in the ledger); ' +
          'otherwise restore trellis.yaml: a pull request must not redirect keys',
      },
    );
  }
  return current;
}

/**
 * The deploy allow-list in trellis.yaml, as `trellis-root confirm` records it:
 * the entries themselves (so verify can name each later change) and their digest.
 */
export function allowListToRecord(mesh: Mesh): { allowList: DeployAllowList; allowListDigest: string } {
  return { allowList: mesh.config.deploy, allowListDigest: allowListDigest(mesh.config.deploy) };
}
