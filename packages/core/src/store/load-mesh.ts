/**
 * The store read into plain data (`Mesh`), and the one table of where each
 * file lives. Commands load a Mesh, compute a plan with pure functions, and
 * commit the plan's writes in one step.
 */
import { TrellisError } from '../model/errors.js';
import { parseMeshConfig, parseScope } from '../config/config.js';
import { parseCertificate, parseCertificates, type Certificate } from '../x509/certificates.js';
import { parseIssuanceRecord } from '../ledger/issuance.js';
import { STORE_FILE, type Store } from './store.js';
import type { Mesh, ScopeMaterial } from '../model/mesh.js';
import { paths } from '../model/paths.js';
import { fingerprint } from '../x509/certificates.js';
import { parseRootState, parseScopeState } from '../ledger/state-files.js';
import { iso } from '../model/time.js';
import { sha256Hex } from '../crypto/crypto.js';
import { SCOPE_NAME } from '../model/names.js';
import { evidencePaths } from '../ledger/evidence.js';

function certAt(store: Store, rel: string): { pem?: string; cert?: Certificate } {
  const pem = store.read(rel);
  if (pem === undefined) return {};
  try {
    return { pem, cert: parseCertificate(pem) };
  } catch (e) {
    throw new TrellisError('corrupt-store', `not a PEM certificate (${(e as Error).message})`, {
      file: rel,
      hint: 'restore it from git history',
    });
  }
}

function certsAt(rel: string, pem: string): Certificate[] {
  try {
    return parseCertificates(pem);
  } catch (e) {
    throw new TrellisError('corrupt-store', `holds a certificate that does not parse (${(e as Error).message})`, {
      file: rel,
      hint: 'restore it from git history',
    });
  }
}

/** The file at `at(service)` of each service that has one, by service. */
function filesOf(store: Store, services: string[], at: (service: string) => string): Map<string, string> {
  return new Map(
    services.flatMap((svc) => {
      const text = store.read(at(svc));
      return text === undefined ? [] : [[svc, text] as const];
    }),
  );
}

function loadMaterial(store: Store, scope: string, hostHeld: string[] = []): ScopeMaterial {
  const inter = certAt(store, paths.intermediate(scope));
  const leavesText = store.read(paths.leaves(scope));
  const stateText = store.read(paths.state(scope));
  const state =
    stateText !== undefined
      ? parseScopeState(stateText, paths.state(scope))
      : inter.cert
        ? { phase: 'steady' as const, active: fingerprint(inter.cert), since: iso(inter.cert.notBefore), revoked: [] }
        : undefined;
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
    anchorFiles: new Map(
      [paths.capath(scope), paths.anchors(scope)].flatMap((d) =>
        store.list(d).map((f) => [`${d}/${f}`, store.read(`${d}/${f}`)!] as const),
      ),
    ),
    leaves: leavesText === undefined ? new Map() : parseIssuanceRecord(leavesText, paths.leaves(scope)),
    leavesSha256: leavesText === undefined ? undefined : sha256Hex(leavesText),
    ledger: store.read(paths.ledger(scope)) ?? '',
    probeRuns: new Map(
      store
        .list(paths.probes(scope))
        .filter((f) => f.endsWith('.json'))
        .map((f) => [`${paths.probes(scope)}/${f}`, store.read(`${paths.probes(scope)}/${f}`)!] as const),
    ),
    csrs: filesOf(store, hostHeld, (svc) => paths.csr(scope, svc)),
    keyProofs: filesOf(store, hostHeld, (svc) => paths.keyProof(scope, svc)),
  };
}

export function loadMesh(store: Store): Mesh {
  const configText = store.read(paths.config);
  if (configText === undefined) throw new TrellisError('no-store', `${store.dir} holds no ${STORE_FILE}`);
  const config = parseMeshConfig(configText);
  const scopes = store
    .list('scopes')
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .map((f) => {
      if (f.endsWith('.yml'))
        throw new TrellisError('bad-scope', 'scope files end in .yaml', {
          file: `scopes/${f}`,
          hint: `rename it to ${f.replace(/\.yml$/, '.yaml')}`,
        });
      const name = f.slice(0, -'.yaml'.length);
      return parseScope(store.read(paths.scopeFile(name))!, name, config.trustDomain);
    });
  const root = certAt(store, paths.rootCert);
  const rootsPem = store.read(paths.roots);
  const rootStateText = store.read(paths.rootState);
  const material = new Map<string, ScopeMaterial>();
  for (const s of scopes)
    material.set(
      s.name,
      loadMaterial(
        store,
        s.name,
        s.services.filter((x) => x.key === 'host').map((x) => x.name),
      ),
    );
  const declared = new Set(scopes.map((s) => s.name));
  const orphans = store.list('bundles', 'dir').filter((d) => d !== 'root' && !declared.has(d));
  const rootState =
    rootStateText !== undefined
      ? parseRootState(rootStateText, paths.rootState)
      : root.cert
        ? { phase: 'steady' as const, active: fingerprint(root.cert), since: iso(root.cert.notBefore), revoked: [] }
        : undefined;
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
