/**
 * The signing policy: the fields of trellis.yaml that shape what a ceremony or
 * CI signs (mesh name, trust domain, algorithms, lifetimes, overlap, CRL
 * lifetimes). A pull request can edit trellis.yaml, so a change counts only
 * once the custodian confirmed it (`trellis-root confirm`, a root-signed
 * entry that records the policy and its digest), as the deploy allow-list
 * does. `init` records the first one; a store made before policies were
 * recorded has none, and its current policy counts until the first confirm.
 */
import type { MeshConfig } from '../config/config.js';
import { sha256Hex } from '../crypto/crypto.js';
import { TrellisError } from '../model/errors.js';
import { canonicalJson } from '../ledger/ledger.js';
import { lastConfirmedRecord } from '../ledger/ledger-trust.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import { formatDuration } from '../model/time.js';

export type SigningPolicy = Pick<MeshConfig, 'mesh' | 'trustDomain' | 'algorithms' | 'ttl' | 'overlap' | 'crl'>;

function signingPolicyOf(config: MeshConfig): SigningPolicy {
  const { mesh, trustDomain, algorithms, ttl, overlap, crl } = config;
  return { mesh, trustDomain, algorithms, ttl, overlap, crl };
}

function policyDigest(p: SigningPolicy): string {
  return `sha256:${sha256Hex(canonicalJson(p))}`;
}

/** What a confirmation records: the policy itself (so verify can name each later change) and its digest. */
export function policyRecord(config: MeshConfig): { policy: SigningPolicy; policyDigest: string } {
  const policy = signingPolicyOf(config);
  return { policy, policyDigest: policyDigest(policy) };
}

/** The policy the custodian last confirmed; undefined on a store whose root ledger never recorded one. */
export function confirmedPolicy(mesh: Mesh): SigningPolicy | undefined {
  const d = lastConfirmedRecord(mesh, 'policyDigest');
  if (!d) return undefined;
  const p = d.policy as SigningPolicy | undefined;
  if (!p || typeof p !== 'object' || policyDigest(p) !== d.policyDigest) {
    throw new TrellisError(
      'corrupt-store',
      'a confirmed signing policy in the root ledger does not match its own digest',
      { file: paths.rootLedger, hint: 'restore the root ledger from git history' },
    );
  }
  return p;
}

/**
 * Each field of trellis.yaml's signing policy that differs from `before`, as `defaults.ttl.leaf changed: 7d → 1h`
 * lines.
 */
function policyChanges(before: SigningPolicy, after: SigningPolicy): string[] {
  const out: string[] = [];
  const line = (field: string, b: unknown, a: unknown, show: (v: never) => string) => {
    if (b !== a) out.push(`${field} changed: ${show(b as never)} → ${show(a as never)}`);
  };
  const text = (v: string) => JSON.stringify(v);
  line('mesh', before.mesh, after.mesh, text);
  line('trustDomain', before.trustDomain, after.trustDomain, text);
  for (const group of ['algorithms', 'ttl', 'overlap', 'crl'] as const) {
    const b = before[group] as Record<string, string | number>;
    const a = after[group] as Record<string, string | number>;
    for (const k of Object.keys(a).sort())
      line(`defaults.${group}.${k}`, b[k], a[k], group === 'algorithms' ? text : formatDuration);
  }
  return out;
}

/** The unconfirmed changes to trellis.yaml's signing policy (none on a store that never recorded one). */
export function unconfirmedPolicyChanges(mesh: Mesh): string[] {
  const confirmed = confirmedPolicy(mesh);
  return confirmed ? policyChanges(confirmed, signingPolicyOf(mesh.config)) : [];
}

/**
 * Refuses (exit 3) to sign under a policy the custodian has not confirmed:
 * every ceremony and every CI command that signs goes through here.
 */
export function requireConfirmedPolicy(mesh: Mesh): void {
  const changes = unconfirmedPolicyChanges(mesh);
  if (!changes.length) return;
  throw new TrellisError(
    'custody-policy-unconfirmed',
    `the signing policy differs from the one the custodian last confirmed: ${changes.join('; ')}`,
    {
      file: paths.config,
      field: changes[0]!.split(' ')[0],
      hint:
        'if the custodian made this change, they review it with trellis-root confirm --dry-run and record it ' +
        'with trellis-root confirm (offline); otherwise restore trellis.yaml: a pull request must not change ' +
        'what is signed',
    },
  );
}
