/**
 * Everything checkable about a store, as findings, composed from one module
 * per concern (verify/*). `verifyMesh` needs no secret; `custodyFindings`
 * adds what an identity can prove. Both CLIs' `verify` print them.
 */
import { ceremonyState } from '../rotation/ceremony-plan.js';
import { liveIntermediates } from '../trust/live.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import { parseLedger } from '../ledger/ledger.js';
import { liveRevokedIntermediates, verifyRootTier } from './root.js';
import {
  verifyBoundary,
  verifyIntermediates,
  verifyIssuance,
  verifyPhase,
  verifyScopeCrl,
  verifyScopeLedger,
  type ScopeView,
} from './scope.js';
import type { Finding } from './finding.js';
import { deployFindings } from './deploy.js';
import { ciScopeFindings } from '../custody/scope-custody.js';
import { verifyLedgers } from './ledgers.js';
import { ownershipFindings } from '../trust/uniqueness.js';
import { hostKeyFindings } from './host-keys.js';

export { worstLevel, type Finding } from './finding.js';
export { intermediateProblems } from './chain.js';
export { custodyFindings } from './custody.js';

/**
 * Every finding about the store as loaded; `read` reads a store file by relative path (the evidence files a ledger
 * cites), given by the shell (`storeReader`), so this stays a function of what it is handed.
 */
export async function verifyMesh(mesh: Mesh, now: Date, read: (rel: string) => string | undefined): Promise<Finding[]> {
  const out = await verifyRootTier(mesh, now);
  const revokedFps = new Set(liveRevokedIntermediates(mesh, now).map((r) => r.fingerprint));
  for (const def of mesh.scopes) {
    const m = mesh.material.get(def.name)!;
    const view: ScopeView = { mesh, def, m, live: liveIntermediates(mesh, def.name), now };
    out.push(...verifyScopeLedger(view));
    if (!m.intermediate) {
      const file = paths.intermediate(def.name);
      if (ceremonyState(mesh, def.name) === 'lost')
        out.push({
          level: 'error',
          check: 'custody',
          message: 'intermediate.pem is missing but the scope had an intermediate: restore it from git',
          scope: def.name,
          file,
        });
      else
        out.push({
          level: 'pending',
          check: 'ceremony',
          message:
            `declared in ${paths.scopeFile(def.name)}, awaiting its intermediate: the custodian runs ` +
            `trellis-root intermediate ${def.name} offline`,
          scope: def.name,
          file,
        });
      continue;
    }
    out.push(
      ...(await verifyIntermediates(view)),
      ...verifyPhase(view),
      ...verifyBoundary(view, revokedFps),
      ...(await verifyScopeCrl(view)),
      ...verifyIssuance(view),
    );
  }
  out.push(...ciScopeFindings(mesh));
  out.push(...deployFindings(mesh));
  out.push(...(await hostKeyFindings(mesh)));
  out.push(...ownershipFindings(mesh));
  out.push(...verifyLedgers(mesh, now, read));
  for (const o of mesh.orphans) {
    // A retired scope keeps its ledger and evidence as its record; any intermediate left would still be trusted by
    // someone.
    if (mesh.retired.has(o) && retiredScopes(mesh).has(o)) {
      if (liveIntermediates(mesh, o).length)
        out.push({
          level: 'error',
          check: 'retire',
          message: `scope ${o} was retired but an intermediate of it is still in the store`,
          file: `bundles/${o}/intermediate.pem`,
        });
      continue;
    }
    if (mesh.retired.get(o)?.intermediate) {
      out.push({
        level: 'pending',
        check: 'retire',
        message:
          `scopes/${o}.yaml was deleted: its intermediates stay trusted until the custodian runs trellis-root ` +
          `retire ${o}`,
        file: `bundles/${o}`,
      });
      continue;
    }
    out.push({
      level: 'warning',
      check: 'orphan',
      message:
        `bundles/${o}/ has no scopes/${o}.yaml: a removed scope's material is still in the store; the custodian ` +
        `runs trellis-root retire ${o}`,
      file: `bundles/${o}`,
    });
  }
  return out;
}

/** Scopes the root ledger records as retired (trellis-root retire). */
function retiredScopes(mesh: Mesh): Set<string> {
  return new Set(
    parseLedger(mesh.rootLedger)
      .entries.filter((e) => e.op === 'retire' && typeof e.details.scope === 'string')
      .map((e) => e.details.scope as string),
  );
}
