/**
 * The seed runbooks' validation checklist as a handshake matrix: valid
 * clients accepted, and unknown CA, expired, revoked and other-region clients
 * refused, each cell a real mTLS handshake judged at the phase's instant.
 */
import { GLOBAL_SCOPE, type ScopeKind } from '@trellis/core';
import { renderMatrix, type Cell, type Party } from './mtls.js';

/**
 * Who a host is, for the expectation: a service as deployed, one a deploy behind, or one the checklist must see
 * refused.
 */
export type Role = 'service' | 'behind' | 'unknown-ca' | 'expired' | 'revoked';

export interface Host extends Party {
  scope: string;
  kind: ScopeKind;
  service: string;
  role: Role;
}

/**
 * The rule, written out rather than taken from the code under rehearsal:
 * same scope ✓, either side global ✓, two different regions ✗; an unknown
 * CA, an expired or a revoked client ✗; and while `refused` names a scope
 * whose key was burned and not yet re-minted, every handshake of its services ✗.
 */
export function expectHandshake(client: Host, server: Host, refused?: string): boolean {
  if (client.role !== 'service' && client.role !== 'behind') return false;
  if (refused !== undefined && (client.scope === refused || server.scope === refused)) return false;
  return client.scope === server.scope || client.scope === GLOBAL_SCOPE || server.scope === GLOBAL_SCOPE;
}

export interface PhaseResult {
  phase: string;
  title: string;
  at: string;
  cells: Cell[];
  /** Further checks of the phase (verify, OpenSSL chains): what was wanted and what came out, as printed. */
  checks: Check[];
}

export interface Check {
  name: string;
  want: string;
  got: string;
}

export const wrongCells = (r: PhaseResult): number =>
  r.cells.filter((c) => c.outcome.ok !== c.expected).length + r.checks.filter((c) => c.got !== c.want).length;
export const totalCells = (r: PhaseResult): number => r.cells.length + r.checks.length;

export function renderPhase(r: PhaseResult): string {
  const lines = [renderMatrix(r.cells).trimEnd()];
  // Why each unexpected cell came out as it did: the operator's first clue.
  for (const c of r.cells.filter((x) => x.outcome.ok !== x.expected))
    lines.push(`  ${c.client} → ${c.server}: ${c.outcome.ok ? 'accepted' : (c.outcome.error ?? 'refused')}`);
  for (const c of r.checks)
    lines.push(`${c.name.padEnd(58)} ${c.got}${c.got === c.want ? '' : `   UNEXPECTED (want ${c.want})`}`);
  return `${lines.join('\n')}\n`;
}
