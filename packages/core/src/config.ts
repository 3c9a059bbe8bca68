/**
 * The store's declared inputs: `trellis.yaml` and `scopes/<scope>.yaml`.
 * Parsing fails closed: unknown keys, wrong types and out-of-scope names are
 * errors naming the file and the field.
 */
import { parseDocument, stringify } from 'yaml';
import { TrellisError, type Reason } from './errors.js';
import { GLOBAL_SCOPE, SCOPE_NAME, SERVICE_NAME, isDnsName, dnsWithin, scopeDomain } from './names.js';
import { parseDuration } from './time.js';
import { KEY_ALGORITHMS, type KeyAlgorithm } from './crypto.js';
import { assertSeparateRecipients, validateRecipients } from './custody.js';

export interface MeshConfig {
  version: 1;
  mesh: string;
  trustDomain: string;
  recipients: { offline: string[]; ci: string };
  algorithms: { root: KeyAlgorithm; intermediate: KeyAlgorithm; leaf: KeyAlgorithm };
  /** Lifetimes in milliseconds. */
  ttl: { root: number; intermediate: number; leaf: number };
  overlap: { propagation: number };
  /** CRL lifetimes, ms: the root CRL is re-signed offline, a scope's leaf CRL by every renew. */
  crl: { root: number; leaf: number };
}

export type ScopeKind = 'global' | 'region';

/** Where a service's releases go (see the delivery section of the README). */
export type DeployTarget =
  | { type: 'dir'; path: string; reload?: string; check?: string }
  | { type: 'ssh'; host: string; port: number; user?: string; hostKey: string; path: string; reload?: string; identityFile?: string; check?: string }
  | { type: 'kubernetes'; name: string; namespace: string; context?: string }
  | { type: 'sealed'; host: string; recipient: string };

export interface ServiceDef {
  name: string;
  /** Extra DNS SANs beyond `<service>.<scope>.<trust domain>`. */
  dns: string[];
  /** Leaf lifetime in ms; undefined means the mesh default. */
  ttl?: number;
  deploy: DeployTarget[];
}

export interface ScopeDef {
  name: string;
  kind: ScopeKind;
  services: ServiceDef[];
}

export const MESH_DEFAULTS = {
  algorithms: { root: 'ecdsa-p256', intermediate: 'ecdsa-p256', leaf: 'ecdsa-p256' } as const,
  ttl: { root: '10y', intermediate: '3y', leaf: '7d' },
  overlap: { propagation: '24h' },
  crl: { root: '180d', leaf: '72h' },
};

/** Walks a parsed YAML value, naming the field at fault in every error. */
class Reader {
  constructor(readonly file: string, readonly reason: Reason) {}

  fail(field: string, detail: string, hint?: string): never {
    throw new TrellisError(this.reason, detail, { file: this.file, field: field || undefined, hint });
  }

  map(v: unknown, field: string, allowed: readonly string[]): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(field, 'must be a mapping');
    const unknown = Object.keys(v as object).filter((k) => !allowed.includes(k));
    if (unknown.length) {
      this.fail(
        field ? `${field}.${unknown[0]}` : unknown[0]!,
        `unknown key "${unknown[0]}"`,
        allowed.length ? `allowed here: ${allowed.join(', ')} (a typo must not silently drop a setting)` : undefined,
      );
    }
    return v as Record<string, unknown>;
  }

  string(v: unknown, field: string, pattern?: RegExp, hint?: string): string {
    if (typeof v !== 'string' || v.length === 0) this.fail(field, 'must be a non-empty string', hint);
    if (pattern && !pattern.test(v)) this.fail(field, `"${v}" is not valid`, hint);
    return v;
  }

  list(v: unknown, field: string): unknown[] {
    if (!Array.isArray(v)) this.fail(field, 'must be a list');
    return v;
  }

  duration(v: unknown, field: string): number {
    if (typeof v !== 'string') this.fail(field, 'must be a duration such as 72h or 7d');
    return parseDuration(v, { file: this.file, field }, this.reason);
  }

  oneOf<T extends string>(v: unknown, field: string, values: readonly T[]): T {
    if (!values.includes(v as T)) this.fail(field, `must be one of ${values.join(', ')} (got ${JSON.stringify(v)})`);
    return v as T;
  }
}

function parseYaml(text: string, file: string, reason: Reason): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new TrellisError(reason, `not valid YAML: ${e.message.split('\n')[0]}`, { file, hint: 'fix the syntax and rerun' });
  }
  return doc.toJS() ?? {};
}

const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;

export function parseMeshConfig(text: string, file = 'trellis.yaml'): MeshConfig {
  const r = new Reader(file, 'bad-config');
  const top = r.map(parseYaml(text, file, 'bad-config'), '', ['version', 'mesh', 'trustDomain', 'recipients', 'defaults']);
  if (top.version !== 1) r.fail('version', `unsupported store version ${JSON.stringify(top.version)}`, 'this trellis reads version 1');
  const recipients = r.map(top.recipients, 'recipients', ['offline', 'ci']);
  const offline = r.list(recipients.offline, 'recipients.offline').map((v, i) => r.string(v, `recipients.offline[${i}]`, /^age1/));
  if (offline.length === 0) r.fail('recipients.offline', 'needs at least one offline recipient');
  const ci = r.string(recipients.ci, 'recipients.ci', /^age1/);
  validateRecipients(offline, { file, field: 'recipients.offline' });
  validateRecipients([ci], { file, field: 'recipients.ci' });
  assertSeparateRecipients(offline, ci, { file, field: 'recipients.ci' });
  const defaults = r.map(top.defaults ?? {}, 'defaults', ['algorithms', 'ttl', 'overlap', 'crl']);
  const crl = r.map(defaults.crl ?? {}, 'defaults.crl', ['root', 'leaf']);
  const alg = r.map(defaults.algorithms ?? {}, 'defaults.algorithms', ['root', 'intermediate', 'leaf']);
  const ttl = r.map(defaults.ttl ?? {}, 'defaults.ttl', ['root', 'intermediate', 'leaf']);
  const overlap = r.map(defaults.overlap ?? {}, 'defaults.overlap', ['propagation']);
  const d = MESH_DEFAULTS;
  return {
    version: 1,
    mesh: r.string(top.mesh, 'mesh', SCOPE_NAME, 'lower-case letters, digits and dashes'),
    trustDomain: r.string(top.trustDomain, 'trustDomain', TRUST_DOMAIN, 'a lower-case DNS name such as mesh.example'),
    recipients: { offline, ci },
    algorithms: {
      root: r.oneOf(alg.root ?? d.algorithms.root, 'defaults.algorithms.root', KEY_ALGORITHMS),
      intermediate: r.oneOf(alg.intermediate ?? d.algorithms.intermediate, 'defaults.algorithms.intermediate', KEY_ALGORITHMS),
      leaf: r.oneOf(alg.leaf ?? d.algorithms.leaf, 'defaults.algorithms.leaf', KEY_ALGORITHMS),
    },
    ttl: {
      root: r.duration(ttl.root ?? d.ttl.root, 'defaults.ttl.root'),
      intermediate: r.duration(ttl.intermediate ?? d.ttl.intermediate, 'defaults.ttl.intermediate'),
      leaf: r.duration(ttl.leaf ?? d.ttl.leaf, 'defaults.ttl.leaf'),
    },
    overlap: { propagation: r.duration(overlap.propagation ?? d.overlap.propagation, 'defaults.overlap.propagation') },
    crl: { root: r.duration(crl.root ?? d.crl.root, 'defaults.crl.root'), leaf: r.duration(crl.leaf ?? d.crl.leaf, 'defaults.crl.leaf') },
  };
}

export function serializeMeshConfig(c: { mesh: string; trustDomain: string; recipients: MeshConfig['recipients']; rootAlgorithm?: KeyAlgorithm }): string {
  return toYaml({
    version: 1,
    mesh: c.mesh,
    trustDomain: c.trustDomain,
    recipients: { offline: c.recipients.offline, ci: c.recipients.ci },
    defaults: { ...MESH_DEFAULTS, algorithms: { ...MESH_DEFAULTS.algorithms, root: c.rootAlgorithm ?? MESH_DEFAULTS.algorithms.root } },
  });
}

const DEPLOY_TYPES = ['dir', 'ssh', 'kubernetes', 'sealed'] as const;
const ABSOLUTE = /^\/[^\0]*$/;
const HOST_PORT = /^([A-Za-z0-9.:[\]-]+:\d{1,5}|https:\/\/[A-Za-z0-9.:[\]-]+:\d{1,5}(\/\S*)?)$/;
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const SSH_KEY = /^(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ssh-rsa) [A-Za-z0-9+/=]+$/;

function parseTarget(r: Reader, raw: unknown, at: string): DeployTarget {
  const type = r.oneOf((raw as Record<string, unknown> | null)?.type, `${at}.type`, DEPLOY_TYPES);
  const opt = (m: Record<string, unknown>, k: string, pattern?: RegExp, hint?: string) => (m[k] === undefined ? {} : { [k]: r.string(m[k], `${at}.${k}`, pattern, hint) });
  switch (type) {
    case 'dir': {
      const m = r.map(raw, at, ['type', 'path', 'reload', 'check']);
      return { type, path: r.string(m.path, `${at}.path`, ABSOLUTE, 'an absolute path'), ...opt(m, 'reload'), ...opt(m, 'check', HOST_PORT, 'host:port of the TLS endpoint to check, or https://host:port/path to also require an HTTP status below 400') } as DeployTarget;
    }
    case 'ssh': {
      const m = r.map(raw, at, ['type', 'host', 'port', 'user', 'hostKey', 'path', 'reload', 'identityFile', 'check']);
      const port = m.port ?? 22;
      if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) r.fail(`${at}.port`, 'must be a TCP port number');
      return {
        type, host: r.string(m.host, `${at}.host`), port: port as number,
        hostKey: r.string(m.hostKey, `${at}.hostKey`, SSH_KEY, 'the host\'s public key as "ssh-ed25519 AAAA…" (ssh-keyscan, checked out of band): it is pinned, never learned on first use'),
        path: r.string(m.path, `${at}.path`, ABSOLUTE, 'an absolute path on the host'),
        ...opt(m, 'user'), ...opt(m, 'reload'), ...opt(m, 'identityFile'), ...opt(m, 'check', HOST_PORT, 'host:port of the TLS endpoint to check, or https://host:port/path'),
      } as DeployTarget;
    }
    case 'kubernetes': {
      const m = r.map(raw, at, ['type', 'name', 'namespace', 'context']);
      return { type, name: r.string(m.name, `${at}.name`, K8S_NAME, 'a Kubernetes object name'), namespace: m.namespace === undefined ? 'default' : r.string(m.namespace, `${at}.namespace`, K8S_NAME), ...opt(m, 'context') } as DeployTarget;
    }
    case 'sealed': {
      const m = r.map(raw, at, ['type', 'host', 'recipient']);
      const recipient = r.string(m.recipient, `${at}.recipient`, /^age1/, 'the host agent\'s age recipient');
      validateRecipients([recipient], { file: r.file, field: `${at}.recipient` });
      return { type, host: r.string(m.host, `${at}.host`, /^[A-Za-z0-9.-]+$/, 'a host name'), recipient };
    }
  }
}

/** Parses `scopes/<name>.yaml`; the scope's name is the file's. */
export function parseScope(text: string, name: string, trustDomain: string, file = `scopes/${name}.yaml`): ScopeDef {
  const r = new Reader(file, 'bad-scope');
  if (!SCOPE_NAME.test(name)) {
    r.fail('', `"${name}" is not a scope name`, 'name the file [a-z0-9-]{1,63}.yaml');
  }
  const top = r.map(parseYaml(text, file, 'bad-scope'), '', ['kind', 'services']);
  const kind = r.oneOf(top.kind, 'kind', ['global', 'region'] as const);
  if ((kind === 'global') !== (name === GLOBAL_SCOPE)) {
    r.fail('kind', kind === 'global' ? `only scopes/${GLOBAL_SCOPE}.yaml may be kind: global` : `"${GLOBAL_SCOPE}" is reserved for the global scope`,
      kind === 'global' ? 'use kind: region' : 'set kind: global');
  }
  const domain = scopeDomain(name, trustDomain);
  const services = Object.entries(r.map(top.services ?? {}, 'services', Object.keys(top.services ?? {}))).map(([svc, raw]) => {
    const at = `services.${svc}`;
    if (!SERVICE_NAME.test(svc)) r.fail(at, `"${svc}" is not a service name`, 'use [a-z0-9-]{1,63}: it becomes a DNS label');
    if (`${svc}.${domain}`.length > 64) r.fail(at, `${svc}.${domain} is longer than 64 characters, the limit of a certificate's common name`, 'shorten the service name');
    const s = r.map(raw ?? {}, at, ['dns', 'ttl', 'deploy']);
    const dns = r.list(s.dns ?? [], `${at}.dns`).map((v, i) => {
      const n = r.string(v, `${at}.dns[${i}]`);
      if (!isDnsName(n)) r.fail(`${at}.dns[${i}]`, `"${n}" is not a lower-case DNS name`);
      if (!dnsWithin(n.replace(/^\*\./, ''), domain)) {
        r.fail(`${at}.dns[${i}]`, `"${n}" is outside the scope's name constraints`, `the intermediate of ${name} may only certify names under ${domain}`);
      }
      return n;
    });
    const deploy = r.list(s.deploy ?? [], `${at}.deploy`).map((t, i) => parseTarget(r, t, `${at}.deploy[${i}]`));
    const def: ServiceDef = { name: svc, dns, deploy };
    if (s.ttl !== undefined) def.ttl = r.duration(s.ttl, `${at}.ttl`);
    return def;
  });
  return { name, kind, services: services.sort((a, b) => a.name.localeCompare(b.name)) };
}

/** Deterministic YAML: the key order given, LF, trailing newline. */
export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0, indent: 2 });
}

export function fromYaml(text: string, file: string): unknown {
  return parseYaml(text, file, 'corrupt-store');
}

/** A deploy target as one line: where it delivers, for reports and the blast radius. */
export function describeTarget(t: DeployTarget): string {
  switch (t.type) {
    case 'dir': return `dir:${t.path}`;
    case 'ssh': return `ssh:${t.user ? `${t.user}@` : ''}${t.host}:${t.port}${t.path}`;
    case 'kubernetes': return `kubernetes:${t.context ? `${t.context}/` : ''}${t.namespace}/${t.name}`;
    case 'sealed': return `sealed:${t.host}`;
  }
}
