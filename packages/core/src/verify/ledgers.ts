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
import { describeWaiting, fleetGate, probeEvidence } from '../rotation/fleet-gate.js';
import { confirmedAllowList } from '../config/deploy-allow-list.js';
import type { ScopeState } from '../rotation/rotation.js';
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
  const proven = new Map(runs.map((r) => [r.id, r]));
  const confirmedAt = confirmedAllowList(mesh).at;
  for (const scope of mesh.scopes) {
    const st = mesh.material.get(scope.name)?.state;
    if (st?.rotation?.gate !== 'fleet') continue;
    const problem = (seq: number, message: string) =>
      out.push({
        level: 'error',
        check: 'record',
        scope: scope.name,
        file: paths.ledger(scope.name),
        message: `entry ${seq}: ${message}`,
      });
    for (const e of scopeLedgerTrust(mesh, scope.name).counted.filter((x) => x.at >= st.rotation!.started)) {
      if (!Array.isArray(e.details.fleet)) continue;
      const ids = (e.details.fleet as unknown[]).map(String);
      for (const id of ids.filter((x) => !proven.has(x)))
        problem(e.seq, `its fleet gate cites probe run ${JSON.stringify(id)}, which no proven run is`);
      // The switch of the rotation under way is judged again on what it cites, as the phase was before it: unless
      // the endpoints were confirmed anew since, when the rule would judge it by a list it never saw.
      const beforeSwitch = st.phase === 'switch' && e.details.phase === 'switch' && st.previous;
      if (!beforeSwitch || (confirmedAt && confirmedAt > e.at)) continue;
      const cited = ids.flatMap((x) => proven.get(x) ?? []).filter((r) => r.at <= e.at);
      const publish: ScopeState = {
        ...st,
        phase: 'publish',
        active: st.previous!,
        next: st.active,
        previous: undefined,
        rotation: { ...st.rotation!, switched: undefined },
      };
      const g = fleetGate(mesh, scope.name, publish, cited);
      if (!g.ready)
        problem(
          e.seq,
          `its fleet gate cites runs that do not show the fleet ready: ${describeWaiting(g.waiting).join('; ')}`,
        );
    }
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
