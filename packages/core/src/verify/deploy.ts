/**
 * What `verify` says about the custodian-owned parts of trellis.yaml on a pull
 * request: every change to the allow-list or the signing policy since the
 * custodian last confirmed it, and every scope target that selects something
 * the allow-list does not hold.
 */
import { allowListChanges, confirmedAllowList, isRefusal, resolveTarget } from '../config/deploy-allow-list.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import { unconfirmedPolicyChanges } from '../custody/signing-policy.js';
import type { Finding } from './finding.js';

export function deployFindings(mesh: Mesh): Finding[] {
  const out: Finding[] = allowListChanges(confirmedAllowList(mesh).allowList, mesh.config.deploy).map((change) => ({
    level: 'error',
    check: 'allow-list',
    file: paths.config,
    message:
      `${change}, not confirmed by the custodian: deploy refuses until they run trellis-root confirm (or the ` +
      `change is reverted)`,
  }));
  for (const change of unconfirmedPolicyChanges(mesh)) {
    out.push({
      level: 'error',
      check: 'signing-policy',
      file: paths.config,
      message:
        `${change}, not confirmed by the custodian: renew and the ceremonies refuse until they run trellis-root ` +
        `confirm (or the change is reverted)`,
    });
  }
  for (const s of mesh.scopes) {
    for (const svc of s.services) {
      svc.deploy.forEach((sel, i) => {
        const r = resolveTarget(mesh.config.deploy, sel, `services.${svc.name}.deploy[${i}]`);
        if (isRefusal(r))
          out.push({
            level: 'error',
            check: 'allow-list',
            scope: s.name,
            file: paths.scopeFile(s.name),
            message: `${r.field}: ${r.detail}`,
          });
      });
    }
  }
  return out;
}
