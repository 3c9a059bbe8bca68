/**
 * What a ceremony will sign for a pending scope, computed once: the offline
 * minting takes its subject, validity and name constraints from here, and
 * `verify --format markdown` and `trellis-root intermediate` print the same
 * summary. Nothing here signs or opens a key.
 */
import type { Certificate } from '../x509/certificates.js';
import { fingerprint } from '../x509/certificates.js';
import { ciRecipientIn, type MeshConfig } from '../config/config.js';
import { TrellisError } from '../model/errors.js';
import type { Mesh } from '../model/mesh.js';
import { intermediateLost } from '../trust/scope-trust.js';
import { paths } from '../model/paths.js';
import { permittedNamesFor, type PermittedNames } from '../model/names.js';
import { PROFILES, validityWithin } from '../x509/profiles.js';
import { formatDuration, iso } from '../model/time.js';

/** `YYYYMMDDTHHMMZ`: tells generations of a CA apart in its subject. */
export const caStamp = (now: Date): string => `${now.toISOString().slice(0, 16).replace(/[-:]/g, '')}Z`;

export interface IntermediatePlan {
  scope: string;
  subject: string;
  issuer: string;
  /** The root it is signed under (its fingerprint). */
  root: string;
  notBefore: Date;
  notAfter: Date;
  pathLength: number;
  permitted: PermittedNames;
  algorithm: MeshConfig['algorithms']['intermediate'];
  /** Its key is encrypted to this recipient, and to no other. */
  recipient: string;
}

/**
 * The certificate a scope's new intermediate will be, at `now` under `root`; refused (outlives-issuer) as minting would
 * refuse it.
 */
export function intermediatePlan(scope: string, config: MeshConfig, root: Certificate, now: Date): IntermediatePlan {
  const validity = validityWithin('intermediate', now, config.ttl.intermediate, {
    notBefore: root.notBefore,
    notAfter: root.notAfter,
    label: 'the root',
    file: paths.rootCert,
  });
  return {
    scope,
    subject: `O=${config.mesh}, OU=${scope}, CN=${scope} intermediate ${caStamp(now)}`,
    issuer: root.subject,
    root: fingerprint(root),
    ...validity,
    pathLength: PROFILES.intermediate.pathLength!,
    permitted: permittedNamesFor(scope, config.trustDomain),
    algorithm: config.algorithms.intermediate,
    recipient: ciRecipientIn(config, scope),
  };
}

/**
 * Whether a declared scope has had its ceremony. A scope that ever had an
 * intermediate is not pending even if intermediate.pem went missing ('lost'):
 * minting over it would orphan its key and leaves.
 */
export function ceremonyState(mesh: Mesh, scope: string): 'minted' | 'pending' | 'lost' {
  if (mesh.material.get(scope)!.intermediate) return 'minted';
  return intermediateLost(mesh, scope) ? 'lost' : 'pending';
}

/** The scopes declared but never minted: what `trellis-root intermediate --pending` would mint. */
export function pendingScopes(mesh: Mesh): string[] {
  return mesh.scopes.map((s) => s.name).filter((s) => ceremonyState(mesh, s) === 'pending');
}

/** One scope's plan, or why the ceremony would refuse it. */
export function planOrRefusal(
  mesh: Mesh,
  scope: string,
  now: Date,
): IntermediatePlan | { scope: string; refused: string } {
  if (!mesh.root) return { scope, refused: 'the store has no root (run trellis-root init)' };
  try {
    return intermediatePlan(scope, mesh.config, mesh.root, now);
  } catch (e) {
    if (e instanceof TrellisError) return { scope, refused: e.message.split('\n')[0]! };
    throw e;
  }
}

/** The summary a reviewer and the custodian read before the ceremony: one block per scope, Markdown. */
export function renderCeremonySummary(
  mesh: Mesh,
  scopes: string[],
  now: Date,
  command = 'trellis-root intermediate --pending',
): string {
  if (!scopes.length) return 'No scope is pending its ceremony.\n';
  const out = [
    `The ceremony (\`${command}\`) will sign ${scopes.length} intermediate${scopes.length === 1 ? '' : 's'} ` +
      `under the root:`,
    '',
  ];
  for (const scope of scopes) {
    const p = planOrRefusal(mesh, scope, now);
    out.push(`#### ${scope}`, '');
    if ('refused' in p) {
      out.push(`- **refused**: ${p.refused}`, '');
      continue;
    }
    const services = mesh.scopes.find((s) => s.name === scope)?.services ?? [];
    out.push(
      `- subject: \`${p.subject}\` (the minute is the ceremony's)`,
      `- issuer: \`${p.issuer}\` (${p.root})`,
      `- validity: ${iso(p.notBefore)} → ${iso(p.notAfter)} (${formatDuration(mesh.config.ttl.intermediate)} ` +
        `from the ceremony; shown as of this run), CA pathLen ${p.pathLength}, key ${p.algorithm}`,
      `- name constraints (critical): permitted DNS \`${p.permitted.dns.join('`, `')}\`, URI host ` +
        `\`${p.permitted.uriHosts.join('`, `')}\`; excluded IP \`${p.permitted.excludedIps.join('`, `')}\``,
      `- key encrypted to the CI recipient only: \`${p.recipient}\``,
      `- services: ${services.length ? services.map((s) => `\`${s.name}\``).join(', ') : 'none yet'}`,
      '',
    );
  }
  return `${out.join('\n').trimEnd()}\n`;
}
