/**
 * Drills: a FakeMesh driven through time with --now, and handshakes judged at
 * the same simulated instants by real TLS stacks running under libfaketime.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Party } from '../../scripts/lib/mtls.js';
import type { FakeMesh } from './fake-mesh.js';

export { at, DAY, HOUR } from './clock.js';

/** A host of one service: the leaf and the bundle it was last deployed. */
export interface Host {
  scope: string;
  service: string;
  party: Party;
}

/** What a deploy at this instant would put on each host: the newest leaf per service and its scope's current bundle. */
export function deployment(m: FakeMesh, services: [string, string][], outDirs: string[]): Host[] {
  return services.map(([scope, service]) => {
    const dir = [...outDirs]
      .reverse()
      .map((d) => path.join(d, scope, service))
      .find((d) => fs.existsSync(path.join(d, 'cert.pem')));
    if (!dir) throw new Error(`no leaf for ${scope}/${service}`);
    const f = (file: string) => fs.readFileSync(path.join(dir, file), 'utf8');
    return {
      scope,
      service,
      party: {
        name: `${scope}/${service}`,
        dns: `${service}.${scope}.mesh.example`,
        key: f('key.pem'),
        chain: f('chain.pem'),
        trust: m.read(`bundles/${scope}/trust.openssl.pem`),
      },
    };
  });
}

/** The drill package's probe: handshakes in a process whose clock reads the drill's instant. */
export { probeAt, type ProbeResult } from '../../packages/drill/src/probe-at.js';

/** Every pair of hosts the regional boundary says must handshake, both directions. */
export function allowedPairs(hosts: Host[]): { client: Party; server: Party }[] {
  const ok = (a: Host, b: Host) => a.scope === b.scope || a.scope === 'global' || b.scope === 'global';
  return hosts.flatMap((c) =>
    hosts.filter((s) => s !== c && ok(c, s)).map((s) => ({ client: c.party, server: s.party })),
  );
}
