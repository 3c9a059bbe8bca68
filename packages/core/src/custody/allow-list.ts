/**
 * What CI may reach (the deploy allow-list) counts only as the custodian
 * confirmed it: the refusal of an allow-list a pull request changed, and of a
 * scope file that selects what the confirmed allow-list does not hold.
 * Parsing the allow-list is config/deploy-allow-list.ts.
 */
import type { DeployTarget } from '../config/config.js';
import { allowListChanges, confirmedAllowList, isRefusal, resolveTarget } from '../config/deploy-allow-list.js';
import { TrellisError } from '../model/errors.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';

/** Refuses (exit 3) when trellis.yaml's allow-list is not the one the custodian last confirmed. */
export function requireConfirmedAllowList(mesh: Mesh): void {
  const changes = allowListChanges(confirmedAllowList(mesh).allowList, mesh.config.deploy);
  if (!changes.length) return;
  throw new TrellisError(
    'custody-allow-list-unconfirmed',
    `the deploy allow-list differs from the one the custodian last confirmed: ${changes.join('; ')}`,
    {
      file: paths.config,
      field: 'deploy',
      hint:
        'if the custodian made this change, they run trellis-root confirm offline (recorded in the root ledger); ' +
        'otherwise restore trellis.yaml: a pull request must not widen what CI executes or where keys go',
    },
  );
}

/**
 * Every target of the scopes given, resolved; the first refusal is an exit-3 error naming the scope file, field and
 * value.
 */
export function resolveDeployTargets(
  mesh: Mesh,
  scopes = mesh.scopes,
): { scope: string; service: string; target: DeployTarget; field: string }[] {
  return scopes.flatMap((s) =>
    s.services.flatMap((svc) =>
      svc.deploy.map((sel, i) => {
        const r = resolveTarget(mesh.config.deploy, sel, `services.${svc.name}.deploy[${i}]`);
        if (isRefusal(r))
          throw new TrellisError('custody-not-allowed', r.detail, {
            file: paths.scopeFile(s.name),
            field: r.field,
            hint: r.hint,
          });
        return { scope: s.name, service: svc.name, target: r, field: `services.${svc.name}.deploy[${i}]` };
      }),
    ),
  );
}
