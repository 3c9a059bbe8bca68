/** What every offline operation records: ledger entries that note the posture, and the custodian's confirmations. */
import {
  allowListDigest,
  appendToLedger,
  iso,
  ledgerSigner,
  type Created,
  type DeployAllowList,
  type Mesh,
} from '@trellis/core';
import { actor } from '@trellis/core/shell';
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
 * The deploy allow-list in trellis.yaml, as `trellis-root confirm` records it:
 * the entries themselves (so verify can name each later change) and their digest.
 */
export function allowListToRecord(mesh: Mesh): { allowList: DeployAllowList; allowListDigest: string } {
  return { allowList: mesh.config.deploy, allowListDigest: allowListDigest(mesh.config.deploy) };
}
