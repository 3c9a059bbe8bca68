/**
 * The store read into plain data (`Mesh`), and the one table of where each
 * file lives. Commands load a Mesh, compute a plan with pure functions, and
 * commit the plan's writes in one step.
 */
import { TrellisError } from './errors.js';
import { parseMeshConfig, parseScope, type ScopeDef } from './config.js';
import { parseCertificate, parseCertificates, type Certificate } from './certificates.js';
import { parseIssuanceRecord, type ActiveIssuer } from './issuance.js';
import { STORE_FILE, type FileWrite, type Store } from './store.js';
import type { Mesh, ScopeMaterial } from './mesh-model.js';
import { paths } from './paths.js';
import { anchorsBy, inRole, liveIntermediates } from './live.js';
import { certificatePem, fingerprint, keyId } from './certificates.js';
import { parseRootState, parseScopeState } from './state-files.js';
import { iso } from './time.js';
import { sha256Hex } from './crypto.js';
import { SCOPE_NAME } from './names.js';
import { evidencePaths } from './evidence.js';
import type { ScopeEffect } from './rotation.js';
import { anchorFileSet, composeTrust, composeTrustByScope, trustOpensslPem, trustPem } from './trust.js';

export { paths } from './paths.js';

export type { Mesh, ScopeMaterial } from './mesh-model.js';

function certAt(store: Store, rel: string): { pem?: string; cert?: Certificate } {
  const pem = store.read(rel);
  if (pem === undefined) return {};
  try {
    return { pem, cert: parseCertificate(pem) };
  } catch (e) {
    throw new TrellisError('corrupt-store', `not a PEM certificate (${(e as Error).message})`, { file: rel, hint: 'restore it from git history' });
  }
}

function certsAt(rel: string, pem: string): Certificate[] {
  try {
    return parseCertificates(pem);
  } catch (e) {
    throw new TrellisError('corrupt-store', `holds a certificate that does not parse (${(e as Error).message})`, { file: rel, hint: 'restore it from git history' });
  }
}

function loadMaterial(store: Store, scope: string): ScopeMaterial {
  const inter = certAt(store, paths.intermediate(scope));
  const leavesText = store.read(paths.leaves(scope));
  const stateText = store.read(paths.state(scope));
  const state = stateText !== undefined ? parseScopeState(stateText, paths.state(scope))
    : inter.cert ? { phase: 'steady' as const, active: fingerprint(inter.cert), since: iso(inter.cert.notBefore), revoked: [] } : undefined;
  const evidencePath = state?.evidence ? evidencePaths(scope, state.evidence).json : undefined;
  return {
    intermediatePem: inter.pem,
    intermediate: inter.cert,
    keyAge: store.read(paths.intermediateKey(scope)),
    next: certAt(store, paths.nextIntermediate(scope)).cert,
    nextKeyAge: store.read(paths.nextIntermediateKey(scope)),
    previous: certAt(store, paths.previousIntermediate(scope)).cert,
    previousKeyAge: store.read(paths.previousIntermediateKey(scope)),
    oldRootIntermediate: certAt(store, paths.oldRootIntermediate(scope)).cert,
    standby: certAt(store, paths.standbyIntermediate(scope)).cert,
    standbyKeyAge: store.read(paths.standbyIntermediateKey(scope)),
    burned: store.read(paths.burned(scope)),
    state,
    openEvidence: evidencePath ? store.read(evidencePath) : undefined,
    crlPem: store.read(paths.scopeCrl(scope)),
    trustPem: store.read(paths.trust(scope)),
    trustOpensslPem: store.read(paths.trustOpenssl(scope)),
    anchorFiles: new Map([paths.capath(scope), paths.anchors(scope)].flatMap((d) => store.list(d).map((f) => [`${d}/${f}`, store.read(`${d}/${f}`)!] as const))),
    leaves: leavesText === undefined ? new Map() : parseIssuanceRecord(leavesText, paths.leaves(scope)),
    leavesSha256: leavesText === undefined ? undefined : sha256Hex(leavesText),
    ledger: store.read(paths.ledger(scope)) ?? '',
  };
}

export function loadMesh(store: Store): Mesh {
  const configText = store.read(paths.config);
  if (configText === undefined) throw new TrellisError('no-store', `${store.dir} holds no ${STORE_FILE}`);
  const config = parseMeshConfig(configText);
  const scopes = store.list('scopes')
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .map((f) => {
      if (f.endsWith('.yml')) throw new TrellisError('bad-scope', 'scope files end in .yaml', { file: `scopes/${f}`, hint: `rename it to ${f.replace(/\.yml$/, '.yaml')}` });
      const name = f.slice(0, -'.yaml'.length);
      return parseScope(store.read(paths.scopeFile(name))!, name, config.trustDomain);
    });
  const root = certAt(store, paths.rootCert);
  const rootsPem = store.read(paths.roots);
  const rootStateText = store.read(paths.rootState);
  const material = new Map<string, ScopeMaterial>();
  for (const s of scopes) material.set(s.name, loadMaterial(store, s.name));
  const declared = new Set(scopes.map((s) => s.name));
  const orphans = store.list('bundles', 'dir').filter((d) => d !== 'root' && !declared.has(d));
  const rootState = rootStateText !== undefined ? parseRootState(rootStateText, paths.rootState)
    : root.cert ? { phase: 'steady' as const, active: fingerprint(root.cert), since: iso(root.cert.notBefore), revoked: [] } : undefined;
  return {
    dir: store.dir,
    config,
    scopes,
    rootPem: root.pem,
    root: root.cert,
    rootsPem,
    roots: rootsPem ? certsAt(paths.roots, rootsPem) : [],
    rootKeyAge: store.read(paths.rootKey),
    rootKeyUri: store.read(paths.rootKeyUri)?.trim(),
    rootLedger: store.read(paths.rootLedger) ?? '',
    previousRoot: certAt(store, paths.rootPrevious).cert,
    previousRootKeyAge: store.read(paths.rootPreviousKey),
    previousRootKeyUri: store.read(paths.rootPreviousKeyUri)?.trim(),
    link: certAt(store, paths.link).cert,
    rootState,
    rootOpenEvidence: rootState?.rotation ? store.read(evidencePaths('root', rootState.rotation.id).json) : undefined,
    rootCrlPem: store.read(paths.rootCrl),
    material,
    orphans,
    retired: new Map(orphans.filter((d) => SCOPE_NAME.test(d)).map((d) => [d, loadMaterial(store, d)])),
  };
}

export function scopeDef(mesh: Mesh, name: string): ScopeDef {
  const s = mesh.scopes.find((x) => x.name === name);
  if (!s) {
    throw new TrellisError('unknown-scope', `no scope "${name}"`, { file: paths.scopeFile(name), hint: `declared scopes: ${mesh.scopes.map((x) => x.name).join(', ') || 'none'}` });
  }
  return s;
}

/** The scope's signing key as leaf records name it, or undefined before its ceremony. */
export function activeIssuer(mesh: Mesh, scope: string): ActiveIssuer | undefined {
  const live = liveIntermediates(mesh, scope);
  const active = inRole(live, 'active');
  if (!active) return undefined;
  // The old-root twin carries the same key: leaves it vouches for are the active key's.
  return { key: keyId(active.cert), fingerprints: live.filter((l) => l.role === 'active' || l.role === 'old-root').map((l) => fingerprint(l.cert)) };
}

/** A scope whose intermediate.pem is gone though its key or ledger says it had one: never "not minted yet", which would send the custodian to mint over it. */
export function intermediateLost(mesh: Mesh, scope: string): TrellisError | undefined {
  const m = mesh.material.get(scope);
  if (!m || m.intermediate || (m.keyAge === undefined && !m.ledger.includes('"kind":"intermediate"'))) return undefined;
  return new TrellisError('corrupt-store', `scope ${scope} had an intermediate but intermediate.pem is missing`, {
    file: paths.intermediate(scope),
    hint: `restore it from git history (git log -- ${paths.intermediate(scope)}): every procedure needs it, recover included, to revoke it; a scope is minted only once`,
  });
}

/** The scope's signing intermediate, or the not-yet-minted (or lost) refusal. */
export function activeIntermediate(mesh: Mesh, scope: string): Certificate {
  const m = mesh.material.get(scope);
  const lost = intermediateLost(mesh, scope);
  if (lost) throw lost;
  if (!m?.intermediate) {
    throw new TrellisError('not-yet-minted', `scope ${scope} has no intermediate yet`, {
      file: paths.intermediate(scope), hint: `the custodian runs trellis-root intermediate ${scope} (or --pending) offline and commits`,
    });
  }
  return m.intermediate;
}

/** The writes that make the scope's files hold `effects` (see rotation.ts). */
export function effectWrites(mesh: Mesh, scope: string, effects: ScopeEffect[], fresh?: { pem: string; keyAge: string }): FileWrite[] {
  const m = mesh.material.get(scope)!;
  const pem = (c?: Certificate) => (c ? certificatePem(c) : null);
  const out: FileWrite[] = [];
  const put = (path: string, content: string | null | undefined) => out.push({ path, content: content ?? null });
  for (const e of effects) {
    switch (e) {
      case 'stage-next':
        put(paths.nextIntermediate(scope), fresh!.pem);
        put(paths.nextIntermediateKey(scope), fresh!.keyAge);
        break;
      case 'promote-next':
        put(paths.previousIntermediate(scope), pem(m.intermediate));
        put(paths.previousIntermediateKey(scope), m.keyAge);
        put(paths.intermediate(scope), pem(m.next));
        put(paths.intermediateKey(scope), m.nextKeyAge);
        put(paths.nextIntermediate(scope), null);
        put(paths.nextIntermediateKey(scope), null);
        put(paths.oldRootIntermediate(scope), null);
        break;
      case 'retire-previous':
        put(paths.previousIntermediate(scope), null);
        put(paths.previousIntermediateKey(scope), null);
        break;
      case 'drop-next':
        put(paths.nextIntermediate(scope), null);
        put(paths.nextIntermediateKey(scope), null);
        break;
      case 'swap-previous':
        put(paths.intermediate(scope), pem(m.previous));
        put(paths.intermediateKey(scope), m.previousKeyAge);
        put(paths.previousIntermediate(scope), pem(m.intermediate));
        put(paths.previousIntermediateKey(scope), m.keyAge);
        put(paths.oldRootIntermediate(scope), null);
        break;
      case 'replace-all':
        put(paths.intermediate(scope), fresh!.pem);
        put(paths.intermediateKey(scope), fresh!.keyAge);
        for (const p of [paths.nextIntermediate, paths.nextIntermediateKey, paths.previousIntermediate, paths.previousIntermediateKey, paths.oldRootIntermediate]) put(p(scope), null);
        break;
    }
  }
  return out; // removing a file that is absent is a no-op in Store.commit
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

/** Scopes a pull request deleted whose intermediate is still trusted: renew keeps their CRLs current until the retire ceremony. */
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
      const stale = [...(mesh.material.get(s.name)?.anchorFiles.keys() ?? [])].filter((p) => !kept.has(p)).map((p) => ({ path: p, content: null }));
      return [
        { path: paths.trust(s.name), content: trustPem(certs) },
        { path: paths.trustOpenssl(s.name), content: trustOpensslPem(certs) },
        ...perFile,
        ...stale,
      ];
    });
}
