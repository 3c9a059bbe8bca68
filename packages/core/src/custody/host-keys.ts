/**
 * Keys held by their hosts (`key: host`): which request renew may sign for a
 * service. A request is hostile input from a pull request: it must prove
 * possession, carry a key of the mesh's leaf algorithm, and name a key no
 * other service and no CA holds (docs/host-keys.md).
 */
import { TrellisError } from '../model/errors.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import { keyId, type Certificate } from '../x509/certificates.js';
import { readCertificateRequest, type HostKeyRequest } from '../x509/csr.js';

/** `<scope>/<service>`: how a host-held key is named in messages and maps. */
const held = (scope: string, service: string) => `${scope}/${service}`;

/** Every CA key of the mesh (roots and each scope's intermediates in any slot), by keyId. */
function caKeys(mesh: Mesh): Map<string, string> {
  const out = new Map<string, string>();
  const add = (c: Certificate | undefined, what: string) => {
    if (c) out.set(keyId(c), what);
  };
  add(mesh.root, 'the root CA');
  add(mesh.previousRoot, 'the previous root CA');
  for (const r of mesh.roots) add(r, 'a root CA');
  for (const [scope, m] of [...mesh.material, ...mesh.retired])
    for (const c of [m.intermediate, m.next, m.previous, m.standby, m.oldRootIntermediate])
      add(c, `the ${scope} intermediate CA`);
  return out;
}

/**
 * The checked request of every `key: host` service of `scopes`, by `<scope>/<service>`; refuses (bad-scope, exit 2)
 * a missing, malformed or unproven request, a key of another algorithm, or a key another service or a CA holds.
 */
export async function hostKeyRequests(mesh: Mesh, scopes: string[]): Promise<Map<string, HostKeyRequest>> {
  const read = new Map<string, HostKeyRequest>();
  // Every request of the mesh is read: a key reused across scopes is refused whichever scope renews.
  for (const def of mesh.scopes) {
    const m = mesh.material.get(def.name)!;
    for (const svc of def.services) {
      if (svc.key !== 'host') continue;
      const file = paths.csr(def.name, svc.name);
      const pem = m.csrs.get(svc.name);
      if (pem === undefined) {
        if (!scopes.includes(def.name)) continue;
        throw new TrellisError('bad-scope', `${held(def.name, svc.name)} has key: host but no certificate request`, {
          file,
          hint: `on the host, run trellis-agent keygen ${svc.name} (or the openssl recipe in docs/host-keys.md) and commit the CSR it prints`,
        });
      }
      try {
        read.set(held(def.name, svc.name), await readCertificateRequest(pem));
      } catch (e) {
        throw new TrellisError('bad-scope', (e as Error).message, {
          file,
          hint: 'commit the PEM CSR the host printed, unchanged',
        });
      }
    }
  }
  const cas = caKeys(mesh);
  const owners = new Map<string, string>();
  for (const [name, r] of read) {
    const [scope, service] = name.split('/') as [string, string];
    const file = paths.csr(scope, service);
    const want = mesh.config.algorithms.leaf;
    if (r.algorithm !== want)
      throw new TrellisError(
        'bad-scope',
        `carries ${r.algorithm ? `an ${r.algorithm}` : 'a kind of'} key; this mesh's leaves are ${want}`,
        { file, hint: `make the host key ${want} (trellis.yaml defaults.algorithms.leaf) and commit its CSR` },
      );
    if (!r.possessed)
      throw new TrellisError(
        'bad-scope',
        'its signature does not verify with the key it carries: nothing proves the requester holds that key',
        { file, hint: 'commit the CSR exactly as the host made it' },
      );
    const ca = cas.get(r.keyId);
    const other = owners.get(r.keyId);
    if (ca || other)
      throw new TrellisError('bad-scope', `carries ${r.keyId}, the key of ${ca ?? other}`, {
        file,
        hint: 'each host-held service needs its own key: generate a new one on the host',
      });
    owners.set(r.keyId, name);
  }
  return new Map([...read].filter(([name]) => scopes.includes(name.split('/')[0]!)));
}
