/**
 * Ownership: every DNS name, SPIFFE ID, deploy directory and Kubernetes object
 * belongs to one service in the whole mesh (all scopes). This is the one rule;
 * verify reports its collisions, renew and deploy hold the services in them.
 * Pure: the input is the mesh's declared scopes as plain data.
 */
import { posix } from 'node:path';
import type { DeploySelection } from '../config/config.js';
import { serviceDnsName, serviceSpiffeId } from '../model/names.js';
import { quoteInput } from '../custody/custody.js';
import { TrellisError } from '../model/errors.js';
import type { Mesh } from '../model/mesh.js';
import type { Finding } from '../verify/finding.js';

type ClaimKind = 'dns' | 'spiffe' | 'directory' | 'kubernetes';

/** Who claims a thing: the service and the field of its scope file (`services.web.dns[0]`). */
interface Owner {
  scope: string;
  service: string;
  field: string;
  /** The value as the scope file wrote it (or as it is derived). */
  value: string;
  /** A name derived from scope/service (its own DNS name, its SPIFFE ID): its owner is not in doubt. */
  derived?: boolean;
}

export interface Collision {
  kind: ClaimKind;
  /**
   * The canonical value claimed twice. A directory is `machine:/path` (`local` is the CI
   * runner, else the ssh host:port) and is the outermost one: a directory holds its subtree.
   */
  value: string;
  /** Every claim on it, of at least two services, in mesh order. */
  owners: Owner[];
}

export interface OwnershipInput {
  trustDomain: string;
  scopes: readonly {
    name: string;
    services: readonly { name: string; dns: readonly string[]; deploy: readonly DeploySelection[] }[];
  }[];
  /** The ssh allow-list: where an ssh target's entry actually connects (two entries may name one machine). */
  ssh?: Readonly<Record<string, { host: string; port: number }>>;
  /** How the shell resolves a dir target's path on this runner (deploy: links followed); lexical when unset. */
  localDir?: (path: string) => string;
}

interface Claim extends Owner {
  kind: ClaimKind;
  /** Canonical: equal keys are one thing. */
  key: string;
  /** Directories only: the machine it is on, and its canonical path. */
  machine?: string;
  dir?: string;
}

/** DNS is case-insensitive and a trailing dot names the same host. */
const canonicalDns = (name: string): string => name.toLowerCase().replace(/\.+$/, '');

/** A SPIFFE ID's scheme and trust domain are case-insensitive; its path is not. */
function canonicalSpiffe(id: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/[^/]*)(.*)$/i.exec(id);
  return m ? `${m[1]!.toLowerCase()}${m[2]}` : id;
}

/** A directory by its absolute path, `..`, `.`, doubled and trailing slashes resolved. */
const canonicalDir = (p: string): string => posix.resolve('/', p);

/** Every claim the declared scopes make, in mesh order. */
function claimsOf(input: OwnershipInput): Claim[] {
  const out: Claim[] = [];
  for (const scope of input.scopes) {
    for (const svc of scope.services) {
      const at = `services.${svc.name}`;
      const own = { scope: scope.name, service: svc.name };
      const dns = serviceDnsName(scope.name, svc.name, input.trustDomain);
      const id = serviceSpiffeId(scope.name, svc.name, input.trustDomain);
      out.push({ ...own, kind: 'dns', key: canonicalDns(dns), field: at, value: dns, derived: true });
      out.push({ ...own, kind: 'spiffe', key: canonicalSpiffe(id), field: at, value: id, derived: true });
      svc.dns.forEach((n, i) =>
        out.push({ ...own, kind: 'dns', key: canonicalDns(n), field: `${at}.dns[${i}]`, value: n }),
      );
      svc.deploy.forEach((t, i) => {
        const f = `${at}.deploy[${i}]`;
        if (t.type === 'dir' || t.type === 'ssh') {
          const entry = t.type === 'ssh' ? input.ssh?.[t.host] : undefined;
          // An entry outside the allow-list: by its name.
          const machine =
            t.type === 'dir' ? 'local' : entry ? `${entry.host.toLowerCase()}:${entry.port}` : `ssh-entry ${t.host}`;
          const dir = canonicalDir(t.type === 'dir' && input.localDir ? input.localDir(canonicalDir(t.path)) : t.path);
          out.push({
            ...own,
            kind: 'directory',
            key: `${machine}:${dir}`,
            machine,
            dir,
            field: `${f}.path`,
            value: t.path,
          });
        } else if (t.type === 'kubernetes') {
          // The Secret and the trust ConfigMap deploy applies, and the manifest file it writes them to.
          out.push({
            ...own,
            kind: 'kubernetes',
            key: `${t.namespace}/Secret/${t.name}`,
            field: `${f}.name`,
            value: `${t.namespace}/Secret/${t.name}`,
          });
          out.push({
            ...own,
            kind: 'kubernetes',
            key: `${t.namespace}/ConfigMap/${t.name}-trust`,
            field: `${f}.name`,
            value: `${t.namespace}/ConfigMap/${t.name}-trust`,
          });
          out.push({
            ...own,
            kind: 'kubernetes',
            key: `manifest ${scope.name}/${svc.name}-${t.name}.yaml`,
            field: `${f}.name`,
            value: `manifest ${scope.name}/${svc.name}-${t.name}.yaml`,
          });
        }
      });
    }
  }
  return out;
}

const ownerKey = (o: { scope: string; service: string }) => `${o.scope}/${o.service}`;

/**
 * Every thing two or more services claim. Directories collide when one is at
 * or under another on the same machine: an install writes the whole subtree.
 */
export function ownershipCollisions(input: OwnershipInput): Collision[] {
  const claims = claimsOf(input);
  // A directory is grouped under the outermost claimed directory that holds it.
  const dirs = new Set(claims.filter((c) => c.kind === 'directory').map((c) => c.key));
  const groupOf = (c: Claim): string => {
    if (c.kind !== 'directory') return `${c.kind} ${c.key}`;
    const segs = c.dir!.split('/').filter(Boolean);
    // From the outermost: /, /srv, /srv/tls, … up to the directory itself.
    for (let n = 0; n <= segs.length; n++) {
      const key = `${c.machine}:/${segs.slice(0, n).join('/')}`;
      if (dirs.has(key)) return `directory ${key}`;
    }
    return `directory ${c.key}`;
  };
  const groups = new Map<string, Claim[]>();
  for (const c of claims) {
    const g = groupOf(c);
    const list = groups.get(g);
    if (list) list.push(c);
    else groups.set(g, [c]);
  }
  const out: Collision[] = [];
  for (const [g, list] of groups) {
    if (new Set(list.map(ownerKey)).size < 2) continue;
    const kind = list[0]!.kind;
    out.push({
      kind,
      value: g.slice(kind.length + 1),
      owners: list.map(({ scope, service, field, value, derived }) => ({
        scope,
        service,
        field,
        value,
        ...(derived ? { derived } : {}),
      })),
    });
  }
  return out;
}

/**
 * The services a collision holds (`scope/service`): renew mints none of them and
 * deploy ships nothing to them. A derived name's owner is not in doubt, so only
 * its claimants are held: a pull request cannot stop another service by naming it.
 */
export function heldServices(collisions: readonly Collision[]): Map<string, Collision[]> {
  const held = new Map<string, Collision[]>();
  for (const c of collisions) {
    const rightful = c.owners.find((o) => o.derived);
    for (const o of c.owners) {
      if (rightful && ownerKey(o) === ownerKey(rightful)) continue;
      const k = ownerKey(o);
      const list = held.get(k) ?? [];
      if (!list.includes(c)) list.push(c);
      held.set(k, list);
    }
  }
  return held;
}

const KIND_WORDS: Record<ClaimKind, string> = {
  dns: 'DNS name',
  spiffe: 'SPIFFE ID',
  directory: 'deploy directory',
  kubernetes: 'Kubernetes object',
};

/**
 * One line naming the thing and every owner, by scope/service and field: `DNS name "x" is claimed by a/b
 * (services.b.dns[0]) and …`.
 */
export function describeCollision(c: Collision): string {
  const owners = c.owners.map(
    (o) =>
      `${o.scope}/${o.service} (scopes/${o.scope}.yaml ` +
      `${o.field}${o.value !== c.value ? ` ${quoteInput(o.value)}` : ''})`,
  );
  const list = owners.length === 2 ? owners.join(' and ') : `${owners.slice(0, -1).join(', ')} and ${owners.at(-1)}`;
  return `${KIND_WORDS[c.kind]} ${quoteInput(c.value)} is claimed by ${list}`;
}

/** What to do about a collision, by kind. */
function collisionHint(c: Collision): string {
  switch (c.kind) {
    case 'dns':
      return 'each DNS name belongs to one service in the whole mesh: remove it from every service but its owner';
    case 'spiffe':
      return 'each SPIFFE ID belongs to one service: rename one of the services';
    case 'directory':
      return 'each deploy directory (and everything under it) belongs to one service: give each service its own path';
    case 'kubernetes':
      return (
        'each Kubernetes object (namespace/kind/name, in any context) belongs to one service: give each target ' +
        'its own name'
      );
  }
}

/** The mesh's collisions: its declared scopes, and where each ssh entry of trellis.yaml connects. */
export function meshCollisions(
  mesh: Pick<Mesh, 'config' | 'scopes'>,
  localDir?: OwnershipInput['localDir'],
): Collision[] {
  return ownershipCollisions({
    trustDomain: mesh.config.trustDomain,
    scopes: mesh.scopes,
    ssh: mesh.config.deploy.ssh,
    ...(localDir ? { localDir } : {}),
  });
}

/** verify: each collision an error naming every owner. */
export function ownershipFindings(mesh: Pick<Mesh, 'config' | 'scopes'>): Finding[] {
  return meshCollisions(mesh).map((c) => ({
    level: 'error',
    check: 'ownership',
    scope: c.owners[0]!.scope,
    file: `scopes/${c.owners[0]!.scope}.yaml`,
    message: `${describeCollision(c)}: ${collisionHint(c)}`,
  }));
}

/**
 * What renew, plan and deploy exit with after doing everything else: exit 2, naming each
 * collision. `did`: what the command did, such as "renew held" or "renew would hold".
 */
export function collisionRefusal(collisions: readonly Collision[], did: string): TrellisError | undefined {
  if (!collisions.length) return undefined;
  const first = collisions[0]!;
  const n = collisions.length;
  return new TrellisError(
    'ownership-collision',
    `${did} the claimants of ${n} collision${n === 1 ? '' : 's'}, every other service as usual: ` +
      `${collisions.map(describeCollision).join('; ')}`,
    {
      file: `scopes/${first.owners[0]!.scope}.yaml`,
      field: first.owners[0]!.field,
      hint: collisionHint(first),
    },
  );
}
