/** What every offline operation records: ledger entries that note the posture, and the root CRL. */
import {
  actor, appendToLedger, iso, paths, serializeRootState,
  type Created, type FileWrite, type Mesh, type RootState,
} from '@trellis/core';
import { rootCrlPem, type RootSigner } from './ceremony.js';

export interface Posture {
  allowOnline: boolean;
  onlineInterfaces: string[];
}

/** Appends one entry to a ledger text; offline entries always carry the posture they ran in. */
export function offlineEntry(ledger: string, op: string, now: Date, posture: Posture, details: Record<string, unknown>, created: Created[] = []): string {
  return appendToLedger(ledger, { op, at: iso(now), actor: actor(), details: { ...details, ...posture }, created }).text;
}

/** The root state file and a freshly signed root CRL for it. */
export async function rootRecordWrites(mesh: Mesh, state: RootState, signers: RootSigner[], now: Date): Promise<FileWrite[]> {
  return [
    { path: paths.rootState, content: serializeRootState(state) },
    { path: paths.rootCrl, content: await rootCrlPem(signers, state.revoked, now, mesh.config.crl.root) },
  ];
}
