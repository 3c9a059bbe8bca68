/**
 * A scope of the loaded mesh and what it trusts: its definition, its signing
 * intermediate, and its bundles composed by the boundary rule (trust.ts).
 */
import { TrellisError } from '../model/errors.js';
import type { ScopeDef } from '../config/config.js';
import { type Certificate, fingerprint, keyId } from '../x509/certificates.js';
import type { ActiveIssuer } from '../ledger/issuance.js';
import type { FileWrite } from '../model/file-write.js';
import type { Mesh } from '../model/mesh.js';
import { paths } from '../model/paths.js';
import { anchorsBy, inRole, liveIntermediates } from './live.js';
import { anchorFileSet, composeTrust, composeTrustByScope, trustOpensslPem, trustPem } from './trust.js';

export function scopeDef(mesh: Mesh, name: string): ScopeDef {
  const s = mesh.scopes.find((x) => x.name === name);
  if (!s) {
    throw new TrellisError('unknown-scope', `no scope "${name}"`, {
      file: paths.scopeFile(name),
      hint: `declared scopes: ${mesh.scopes.map((x) => x.name).join(', ') || 'none'}`,
    });
  }
  return s;
}

/** The scope's signing key as leaf records name it, or undefined before its ceremony. */
export function activeIssuer(mesh: Mesh, scope: string): ActiveIssuer | undefined {
  const live = liveIntermediates(mesh, scope);
  const active = inRole(live, 'active');
  if (!active) return undefined;
  // The old-root twin carries the same key: leaves it vouches for are the active key's.
  return {
    key: keyId(active.cert),
    fingerprints: live.filter((l) => l.role === 'active' || l.role === 'old-root').map((l) => fingerprint(l.cert)),
  };
}

/**
 * A scope whose intermediate.pem is gone though its key or ledger says it had one: never "not minted yet", which would
 * send the custodian to mint over it.
 */
export function intermediateLost(mesh: Mesh, scope: string): TrellisError | undefined {
  const m = mesh.material.get(scope);
  if (!m || m.intermediate || (m.keyAge === undefined && !m.ledger.includes('"kind":"intermediate"'))) return undefined;
  return new TrellisError('corrupt-store', `scope ${scope} had an intermediate but intermediate.pem is missing`, {
    file: paths.intermediate(scope),
    hint:
      `restore it from git history (git log -- ${paths.intermediate(scope)}): every procedure needs it, recover ` +
      `included, to revoke it; a scope is minted only once`,
  });
}

/** The scope's signing intermediate, or the not-yet-minted (or lost) refusal. */
export function activeIntermediate(mesh: Mesh, scope: string): Certificate {
  const m = mesh.material.get(scope);
  const lost = intermediateLost(mesh, scope);
  if (lost) throw lost;
  if (!m?.intermediate) {
    throw new TrellisError('not-yet-minted', `scope ${scope} has no intermediate yet`, {
      file: paths.intermediate(scope),
      hint: `the custodian runs trellis-root intermediate ${scope} (or --pending) offline and commits`,
    });
  }
  return m.intermediate;
}

/**
 * Every scope whose intermediates may be trusted: the declared ones, and a
 * scope whose file a pull request deleted but the custodian has not retired
 * yet (its bundles keep trusting it, so merging the PR breaks no handshake;
 * `trellis-root retire` then revokes it and drops it everywhere).
 */
export function trustedScopeNames(mesh: Mesh): string[] {
  return [...mesh.scopes.map((s) => s.name), ...awaitingRetire(mesh)];
}

/**
 * Scopes a pull request deleted whose intermediate is still trusted: renew keeps their CRLs current until the retire
 * ceremony.
 */
export function awaitingRetire(mesh: Mesh): string[] {
  return [...mesh.retired].filter(([, m]) => m.intermediate).map(([s]) => s);
}

/** What a scope's services trust: the boundary rule applied to the mesh's intermediates. */
export function scopeTrust(mesh: Mesh, scope: string, intermediatesOf = anchorsBy(mesh)): Certificate[] {
  return composeTrust(scopeDef(mesh, scope), trustedScopeNames(mesh), intermediatesOf);
}

/** A scope's bundle one anchor per file (capath/ and anchors/), by store path. */
export function scopeAnchorFiles(mesh: Mesh, scope: string, intermediatesOf = anchorsBy(mesh)): FileWrite[] {
  const anchors = composeTrustByScope(scopeDef(mesh, scope), trustedScopeNames(mesh), intermediatesOf);
  return anchorFileSet(anchors).map((f) => ({ path: `bundles/${scope}/${f.name}`, content: f.content }));
}

/**
 * trust.pem, trust.openssl.pem and the one-anchor-per-file directories of
 * every scope with material, composed by the boundary rule; an anchor file
 * the composition no longer holds (an intermediate left) is removed.
 */
export function trustBundleFiles(mesh: Mesh, intermediatesOf = anchorsBy(mesh)): FileWrite[] {
  return mesh.scopes
    .filter((s) => intermediatesOf(s.name).length > 0)
    .flatMap((s) => {
      const certs = scopeTrust(mesh, s.name, intermediatesOf);
      const perFile = scopeAnchorFiles(mesh, s.name, intermediatesOf);
      const kept = new Set(perFile.map((f) => f.path));
      const stale = [...(mesh.material.get(s.name)?.anchorFiles.keys() ?? [])]
        .filter((p) => !kept.has(p))
        .map((p) => ({ path: p, content: null }));
      return [
        { path: paths.trust(s.name), content: trustPem(certs) },
        { path: paths.trustOpenssl(s.name), content: trustOpensslPem(certs) },
        ...perFile,
        ...stale,
      ];
    });
}
