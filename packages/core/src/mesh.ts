/**
 * The store read into plain data (`Mesh`), and the one table of where each
 * file lives. Commands load a Mesh, compute a plan with pure functions, and
 * commit the plan's writes in one step.
 */
import { TrellisError } from './errors.js';
import { parseMeshConfig, parseScope, type MeshConfig, type ScopeDef } from './config.js';
import { parseCertificate, parseCertificates, type Certificate } from './certificates.js';
import { parseIssuanceRecord, type ActiveIssuer, type IssuanceRecord } from './issuance.js';
import { STORE_FILE, type FileWrite, type Store } from './store.js';
import { certificatePem, fingerprint, keyId } from './certificates.js';
import { parseRootState, parseScopeState } from './state-files.js';
import { iso } from './time.js';
import type { RootState, ScopeEffect, ScopeState } from './rotation.js';
import { composeTrust, trustOpensslPem, trustPem } from './trust.js';

export const paths = {
  config: STORE_FILE,
  scopeFile: (s: string) => `scopes/${s}.yaml`,
  rootCert: 'bundles/root/root.pem',
  roots: 'bundles/root/roots.pem',
  rootKey: 'bundles/root/root.key.age',
  rootCrl: 'bundles/root/crl.pem',
  rootLedger: 'bundles/root/ledger.jsonl',
  rootPrevious: 'bundles/root/root.previous.pem',
  rootPreviousKey: 'bundles/root/root.previous.key.age',
  link: 'bundles/root/link.pem',
  rootState: 'bundles/root/state.yaml',
  intermediate: (s: string) => `bundles/${s}/intermediate.pem`,
  intermediateKey: (s: string) => `bundles/${s}/intermediate.key.age`,
  /** publish phase: the intermediate being introduced. */
  nextIntermediate: (s: string) => `bundles/${s}/intermediate.next.pem`,
  nextIntermediateKey: (s: string) => `bundles/${s}/intermediate.next.key.age`,
  /** switch phase: the intermediate being retired. */
  previousIntermediate: (s: string) => `bundles/${s}/intermediate.previous.pem`,
  previousIntermediateKey: (s: string) => `bundles/${s}/intermediate.previous.key.age`,
  /** root overlap: the active intermediate's certificate under the previous root. */
  oldRootIntermediate: (s: string) => `bundles/${s}/intermediate.old-root.pem`,
  trust: (s: string) => `bundles/${s}/trust.pem`,
  trustOpenssl: (s: string) => `bundles/${s}/trust.openssl.pem`,
  scopeCrl: (s: string) => `bundles/${s}/crl.pem`,
  state: (s: string) => `bundles/${s}/state.yaml`,
  leaves: (s: string) => `bundles/${s}/leaves.yaml`,
  ledger: (s: string) => `bundles/${s}/ledger.jsonl`,
};

export interface ScopeMaterial {
  intermediatePem?: string;
  intermediate?: Certificate;
  keyAge?: string;
  next?: Certificate;
  nextKeyAge?: string;
  previous?: Certificate;
  previousKeyAge?: string;
  oldRootIntermediate?: Certificate;
  /** Parsed state.yaml; a store without one is steady on its intermediate. */
  state?: ScopeState;
  crlPem?: string;
  trustPem?: string;
  trustOpensslPem?: string;
  leaves: IssuanceRecord;
  ledger: string;
}

export interface Mesh {
  dir: string;
  config: MeshConfig;
  scopes: ScopeDef[];
  rootPem?: string;
  root?: Certificate;
  rootsPem?: string;
  roots: Certificate[];
  rootKeyAge?: string;
  rootLedger: string;
  previousRoot?: Certificate;
  previousRootKeyAge?: string;
  link?: Certificate;
  rootState?: RootState;
  rootCrlPem?: string;
  /** Material under bundles/<scope>/ for every declared scope (empty when none yet). */
  material: Map<string, ScopeMaterial>;
  /** bundles/<dir> with no scopes/<dir>.yaml: left behind by a deleted scope. */
  orphans: string[];
}

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
  for (const s of scopes) {
    const inter = certAt(store, paths.intermediate(s.name));
    const leavesText = store.read(paths.leaves(s.name));
    const stateText = store.read(paths.state(s.name));
    material.set(s.name, {
      intermediatePem: inter.pem,
      intermediate: inter.cert,
      keyAge: store.read(paths.intermediateKey(s.name)),
      next: certAt(store, paths.nextIntermediate(s.name)).cert,
      nextKeyAge: store.read(paths.nextIntermediateKey(s.name)),
      previous: certAt(store, paths.previousIntermediate(s.name)).cert,
      previousKeyAge: store.read(paths.previousIntermediateKey(s.name)),
      oldRootIntermediate: certAt(store, paths.oldRootIntermediate(s.name)).cert,
      state: stateText !== undefined ? parseScopeState(stateText, paths.state(s.name))
        : inter.cert ? { phase: 'steady', active: fingerprint(inter.cert), since: iso(inter.cert.notBefore), revoked: [] } : undefined,
      crlPem: store.read(paths.scopeCrl(s.name)),
      trustPem: store.read(paths.trust(s.name)),
      trustOpensslPem: store.read(paths.trustOpenssl(s.name)),
      leaves: leavesText === undefined ? new Map() : parseIssuanceRecord(leavesText, paths.leaves(s.name)),
      ledger: store.read(paths.ledger(s.name)) ?? '',
    });
  }
  const declared = new Set(scopes.map((s) => s.name));
  return {
    dir: store.dir,
    config,
    scopes,
    rootPem: root.pem,
    root: root.cert,
    rootsPem,
    roots: rootsPem ? certsAt(paths.roots, rootsPem) : [],
    rootKeyAge: store.read(paths.rootKey),
    rootLedger: store.read(paths.rootLedger) ?? '',
    previousRoot: certAt(store, paths.rootPrevious).cert,
    previousRootKeyAge: store.read(paths.rootPreviousKey),
    link: certAt(store, paths.link).cert,
    rootState: rootStateText !== undefined ? parseRootState(rootStateText, paths.rootState)
      : root.cert ? { phase: 'steady', active: fingerprint(root.cert), since: iso(root.cert.notBefore), revoked: [] } : undefined,
    rootCrlPem: store.read(paths.rootCrl),
    material,
    orphans: store.list('bundles', 'dir').filter((d) => d !== 'root' && !declared.has(d)),
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
  const m = mesh.material.get(scope);
  if (!m?.intermediate) return undefined;
  return { key: keyId(m.intermediate), fingerprints: [m.intermediate, m.oldRootIntermediate].filter((c): c is Certificate => !!c).map(fingerprint) };
}

/** The scope's signing intermediate, or the not-yet-minted refusal. */
export function activeIntermediate(mesh: Mesh, scope: string): Certificate {
  const m = mesh.material.get(scope);
  if (!m?.intermediate) {
    throw new TrellisError('not-yet-minted', `scope ${scope} has no intermediate yet`, {
      file: paths.intermediate(scope), hint: `the custodian runs trellis-root intermediate ${scope} (or --pending) offline and commits`,
    });
  }
  return m.intermediate;
}

/**
 * The intermediates each scope's bundle must trust now: the active one, and
 * during a rotation the one being introduced or retired (oldest first, so a
 * bundle's order does not change when signing switches).
 */
export function trustedIntermediatesOf(mesh: Mesh): (scope: string) => Certificate[] {
  return (scope) => {
    const m = mesh.material.get(scope);
    return [m?.previous, m?.intermediate, m?.next].filter((c): c is Certificate => c !== undefined);
  };
}

/** The same, as the store will be once `writes` are applied: for recomposing bundles inside a plan. */
export function trustedIntermediatesAfter(mesh: Mesh, writes: FileWrite[]): (scope: string) => Certificate[] {
  const pending = new Map(writes.map((w) => [w.path, w.content]));
  const current = trustedIntermediatesOf(mesh);
  return (scope) => {
    const m = mesh.material.get(scope);
    const slots: [string, Certificate | undefined][] = [
      [paths.previousIntermediate(scope), m?.previous], [paths.intermediate(scope), m?.intermediate], [paths.nextIntermediate(scope), m?.next],
    ];
    if (!slots.some(([p]) => pending.has(p))) return current(scope);
    return slots.flatMap(([p, cert]) => {
      if (!pending.has(p)) return cert ? [cert] : [];
      const pem = pending.get(p);
      return pem ? [parseCertificate(pem)] : [];
    });
  };
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
      case 'restore-previous':
        put(paths.intermediate(scope), pem(m.previous));
        put(paths.intermediateKey(scope), m.previousKeyAge);
        put(paths.previousIntermediate(scope), null);
        put(paths.previousIntermediateKey(scope), null);
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

/** What a scope's services trust: the boundary rule applied to the mesh's intermediates. */
export function scopeTrust(mesh: Mesh, scope: string, intermediatesOf = trustedIntermediatesOf(mesh)): Certificate[] {
  return composeTrust(scopeDef(mesh, scope), mesh.scopes.map((s) => s.name), intermediatesOf);
}

/** trust.pem and trust.openssl.pem of every scope with material, composed by the boundary rule. */
export function trustBundleFiles(mesh: Mesh, intermediatesOf = trustedIntermediatesOf(mesh)): { path: string; content: string }[] {
  return mesh.scopes
    .filter((s) => intermediatesOf(s.name).length > 0)
    .flatMap((s) => {
      const certs = scopeTrust(mesh, s.name, intermediatesOf);
      return [
        { path: paths.trust(s.name), content: trustPem(certs) },
        { path: paths.trustOpenssl(s.name), content: trustOpensslPem(certs) },
      ];
    });
}
