/**
 * verify's ledger and record concern: every ledger signature (ledger-trust.ts)
 * and every record proven from the entries that count (record-proofs.ts).
 */
import { sha256Hex } from '../crypto/crypto.js';
import { rootLedgerTrust, scopeLedgerTrust, type LedgerTrust } from '../ledger/ledger-trust.js';
import type { Mesh } from '../model/mesh.js';
import {
  evidenceProblems,
  issuanceRecordProblems,
  rootStateProblems,
  scopeStateProblems,
  type RecordProblem,
} from '../ledger/record-proofs.js';
import type { Finding } from './finding.js';
import { probeEvidence } from '../rotation/fleet-gate.js';
import { paths } from '../model/paths.js';

/**
 * Probe runs that do not prove themselves, and fleet-gated steps of an open rotation citing a run the store does not
 * hold as proven: a gate decision is only as good as what it cites.
 */
function probeFindings(mesh: Mesh, now: Date): Finding[] {
  const { runs, problems } = probeEvidence(mesh, now);
  const out: Finding[] = problems.map((p) => ({
    level: 'error',
    check: 'record',
    message: `${p.message}: not evidence of the fleet (remove it, or restore it from git history)`,
    file: p.file,
  }));
  const proven = new Set(runs.map((r) => r.id));
  for (const scope of mesh.scopes) {
    const st = mesh.material.get(scope.name)?.state;
    if (st?.rotation?.gate !== 'fleet') continue;
    for (const e of scopeLedgerTrust(mesh, scope.name).counted.filter((x) => x.at >= st.rotation!.started))
      for (const id of Array.isArray(e.details.fleet) ? (e.details.fleet as unknown[]) : [])
        if (!proven.has(String(id)))
          out.push({
            level: 'error',
            check: 'record',
            scope: scope.name,
            file: paths.ledger(scope.name),
            message: `entry ${e.seq}: its fleet gate cites probe run ${JSON.stringify(id)}, which no proven run is`,
          });
  }
  return out;
}

function ledgerFindings(t: LedgerTrust, scope?: string): Finding[] {
  const where = { file: t.file, ...(scope ? { scope } : {}) };
  const out: Finding[] = t.problems.map((p) => ({
    ...where,
    level: 'error' as const,
    check: 'ledger',
    message: `entry ${p.seq}: ${p.message}; restore the ledger from git history before anything signs on top of it`,
  }));
  if (t.legacy && t.entries.length) {
    out.push({
      ...where,
      level: 'warning',
      check: 'ledger',
      message:
        'unsigned (legacy) ledger, written before ledgers were signed: its entries are taken as written; ' +
        'signed from its next write',
    });
  }
  return out;
}

const asFindings = (ps: RecordProblem[], scope?: string): Finding[] =>
  ps.map((p) => ({
    level: 'error',
    check: 'record',
    message: `${p.field}: ${p.message} (machine-managed: restore it from git history)`,
    file: p.file,
    ...(scope ? { scope } : {}),
  }));

/**
 * Findings for every ledger and record of the store. `read` reads a store file
 * by relative path; it is only ever given paths that evidencePathProblem let through.
 */
export function verifyLedgers(mesh: Mesh, now: Date, read: (rel: string) => string | undefined): Finding[] {
  const root = rootLedgerTrust(mesh);
  const out = [
    ...ledgerFindings(root),
    ...asFindings(rootStateProblems(mesh)),
    ...asFindings(evidenceProblems(root, 'root', read, sha256Hex)),
  ];
  for (const scope of mesh.scopes) {
    const m = mesh.material.get(scope.name)!;
    if (!m.ledger) continue;
    const t = scopeLedgerTrust(mesh, scope.name);
    out.push(
      ...ledgerFindings(t, scope.name),
      ...asFindings(scopeStateProblems(mesh, scope.name, now), scope.name),
      ...asFindings(evidenceProblems(t, scope.name, read, sha256Hex), scope.name),
    );
    out.push(...asFindings(issuanceRecordProblems(mesh, scope.name), scope.name));
  }
  out.push(...probeFindings(mesh, now));
  return out;
}
