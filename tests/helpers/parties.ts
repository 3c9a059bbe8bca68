import fs from 'node:fs';
import type { Party } from '../../scripts/lib/mtls.js';
import type { FakeMesh } from './fake-mesh.js';

/** A service of a FakeMesh as a TLS party, from renew's output directory. */
export function party(
  m: FakeMesh,
  scope: string,
  service: string,
  name = `${scope}/${service}`,
  outDir?: string,
): Party {
  const f = (file: string) =>
    fs.readFileSync(outDir ? `${outDir}/${scope}/${service}/${file}` : m.out(scope, service, file), 'utf8');
  // The trust bundle sits once per scope, beside its leaf directories.
  const trust = fs.readFileSync(
    outDir ? `${outDir}/${scope}/trust.openssl.pem` : m.path(`.trellis/out/${scope}/trust.openssl.pem`),
    'utf8',
  );
  return { name, dns: `${service}.${scope}.mesh.example`, key: f('key.pem'), chain: f('chain.pem'), trust };
}
