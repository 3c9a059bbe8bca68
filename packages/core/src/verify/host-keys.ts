/**
 * What `verify` says about host-held keys (`key: host`) on a pull request: a
 * request renew would refuse, and every key that does not count yet, with
 * the key it would replace.
 */
import { meshHostKeys } from '../custody/host-keys.js';
import { isTrellisError } from '../model/errors.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import type { Finding } from './finding.js';

export async function hostKeyFindings(mesh: Mesh): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const def of mesh.scopes)
    for (const svc of def.services)
      if (svc.key === 'host' && !mesh.material.get(def.name)!.csrs.has(svc.name))
        out.push({
          level: 'error',
          check: 'host-key',
          scope: def.name,
          file: paths.csr(def.name, svc.name),
          message:
            `${def.name}/${svc.name} has key: host but no certificate request: renew refuses until the host's ` +
            `CSR is committed`,
        });
  let keys: Awaited<ReturnType<typeof meshHostKeys>>;
  try {
    keys = await meshHostKeys(mesh);
  } catch (e) {
    if (!isTrellisError(e)) throw e;
    out.push({ level: 'error', check: 'host-key', file: e.place.file, message: `${e.message.split('\n')[0]}` });
    return out;
  }
  for (const k of keys) {
    if (k.standing.counts) continue;
    const [scope, service] = k.name.split('/') as [string, string];
    out.push({
      level: 'error',
      check: 'host-key',
      scope,
      file: paths.csr(scope, service),
      message:
        `host key ${k.name}: ${k.key} (${k.standing.current ? `replaces ${k.standing.current}` : 'first key'}) ` +
        `does not count: ${k.standing.why}; renew holds the service until a custodian runs trellis-root ` +
        `confirm${k.standing.current ? ' or the current key signs a rotation proof' : ''}`,
    });
  }
  return out;
}
