/**
 * The store read into plain data (`Mesh`), and the one table of where each
 * file lives. Commands load a Mesh, compute a plan with pure functions, and
 * commit the plan's writes in one step.
 */
import { TrellisError } from './errors.js';
import { parseMeshConfig, parseScope, type MeshConfig, type ScopeDef } from './config.js';
import { parseCertificate, parseCertificates, type Certificate } from './certificates.js';
import { parseIssuanceRecord, type IssuanceRecord } from './issuance.js';
import { STORE_FILE, type Store } from './store.js';
import { composeTrust, trustOpensslPem, trustPem } from './trust.js';

export const paths = {
  config: STORE_FILE,
  scopeFile: (s: string) => `scopes/${s}.yaml`,
  rootCert: 'bundles/root/root.pem',
  roots: 'bundles/root/roots.pem',
  rootKey: 'bundles/root/root.key.age',
  rootCrl: 'bundles/root/crl.pem',
  rootLedger: 'bundles/root/ledger.jsonl',
  intermediate: (s: string) => `bundles/${s}/intermediate.pem`,
  intermediateKey: (s: string) => `bundles/${s}/intermediate.key.age`,
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
  const material = new Map<string, ScopeMaterial>();
  for (const s of scopes) {
    const inter = certAt(store, paths.intermediate(s.name));
    const leavesText = store.read(paths.leaves(s.name));
    material.set(s.name, {
      intermediatePem: inter.pem,
      intermediate: inter.cert,
      keyAge: store.read(paths.intermediateKey(s.name)),
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
    roots: rootsPem ? parseCertificates(rootsPem) : [],
    rootKeyAge: store.read(paths.rootKey),
    rootLedger: store.read(paths.rootLedger) ?? '',
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

/** The intermediates each scope's bundle must trust now. */
export function trustedIntermediatesOf(mesh: Mesh): (scope: string) => Certificate[] {
  return (scope) => {
    const c = mesh.material.get(scope)?.intermediate;
    return c ? [c] : [];
  };
}

/** trust.pem and trust.openssl.pem of every scope with material, composed by the boundary rule. */
export function trustBundleFiles(mesh: Mesh, intermediatesOf = trustedIntermediatesOf(mesh)): { path: string; content: string }[] {
  const all = mesh.scopes.map((s) => s.name);
  return mesh.scopes
    .filter((s) => intermediatesOf(s.name).length > 0)
    .flatMap((s) => {
      const certs = composeTrust(s, all, intermediatesOf);
      return [
        { path: paths.trust(s.name), content: trustPem(certs) },
        { path: paths.trustOpenssl(s.name), content: trustOpensslPem(certs) },
      ];
    });
}
