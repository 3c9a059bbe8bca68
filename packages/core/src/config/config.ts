/**
 * The store's declared inputs: `trellis.yaml` and `scopes/<scope>.yaml`.
 * Parsing fails closed: unknown keys, wrong types and out-of-scope names are
 * errors naming the file and the field.
 */
import { isIP } from 'node:net';
import { isAlias, isMap, isNode, isPair, isScalar, isSeq, parseDocument, stringify, type Node } from 'yaml';
import { TrellisError, type Reason } from '../model/errors.js';
import {
  GLOBAL_SCOPE,
  PROBE_SERVICE,
  RESERVED_SCOPE_NAMES,
  SCOPE_NAME,
  SERVICE_NAME,
  dnsSanRefusal,
  scopeDomain,
} from '../model/names.js';
import { formatDuration, parseDuration } from '../model/time.js';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../crypto/crypto.js';
import { readPlainYaml, writePlainYaml } from './plain-yaml.js';
import { dataOnly, dict } from '../model/data.js';
import {
  assertBreakglassRecipient,
  assertOneCiTier,
  assertSeparateRecipients,
  quoteInput,
  validateRecipients,
  withoutSecrets,
} from '../custody/custody.js';

export interface MeshConfig {
  version: 1;
  mesh: string;
  trustDomain: string;
  /**
   * breakglass: the on-call security team's recipient, the only reader of standby keys (optional).
   * ciScopes: a scope's own CI recipient (optional, per scope), so one runner secret opens one scope's keys;
   * a scope without one uses `ci`. It counts once a custodian confirmed it (see docs/custody-keys.md).
   */
  recipients: { offline: string[]; ci: string; breakglass?: string; ciScopes?: Record<string, string> };
  algorithms: { root: KeyAlgorithm; intermediate: KeyAlgorithm; leaf: KeyAlgorithm };
  /** Lifetimes in milliseconds. */
  ttl: { root: number; intermediate: number; leaf: number };
  overlap: { propagation: number };
  /** CRL lifetimes, ms: the root CRL is re-signed offline, a scope's leaf CRL by every renew. */
  crl: { root: number; leaf: number };
  /** The deploy allow-list; empty when trellis.yaml has no `deploy:`. */
  deploy: DeployAllowList;
}

export type ScopeKind = 'global' | 'region';

/**
 * What a scope file (pull-request editable) asks for: it only selects from the
 * custodian's allow-list in trellis.yaml (see docs/deploy-allow-list.md).
 * `misplaced` holds custodian-owned fields the scope file set anyway (older
 * stores kept them there): deploy refuses them, verify names them.
 */
export type DeploySelection =
  | { type: 'dir'; path: string; reload?: string; check?: string; formats?: ReleaseFormat[] }
  | {
      type: 'ssh';
      host: string;
      path: string;
      reload?: string;
      check?: string;
      formats?: ReleaseFormat[];
      misplaced?: Record<string, string>;
    }
  | { type: 'kubernetes'; name: string; namespace: string; context?: string }
  | { type: 'sealed'; host: string; formats?: ReleaseFormat[]; misplaced?: Record<string, string> };

/**
 * Extra encodings a deploy entry may ask for, of what its target already gets: `pkcs12` adds keystore.p12 (the same key
 * and leaf), truststore.p12 and crl.jvm.pem (docs/jvm.md). It never adds a destination.
 */
const RELEASE_FORMATS = ['pkcs12'] as const;
type ReleaseFormat = (typeof RELEASE_FORMATS)[number];

/** A selection resolved against the confirmed allow-list: what deploy executes and where it delivers. */
export type DeployTarget =
  | {
      type: 'dir';
      path: string;
      reload?: string;
      reloadCommand?: string;
      /** The confirmed endpoint: host:port, or https://host:port/path. */
      check?: string;
      checkSpiffe?: string;
      formats?: ReleaseFormat[];
      allowedRoot: string;
    }
  | {
      type: 'ssh';
      host: string;
      path: string;
      reload?: string;
      reloadCommand?: string;
      check?: string;
      checkSpiffe?: string;
      formats?: ReleaseFormat[];
      address: string;
      port: number;
      user?: string;
      hostKey: string;
      identityFile?: string;
    }
  | { type: 'kubernetes'; name: string; namespace: string; context?: string }
  | { type: 'sealed'; host: string; recipient: string; formats?: ReleaseFormat[] };

/** An ssh host a scope file may name: every field that decides where CI connects, and as whom. */
interface SshHostEntry {
  host: string;
  port: number;
  user?: string;
  hostKey: string;
  identityFile?: string;
  /** Directories on the host a target's path must be at or under. */
  paths: string[];
}

/** trellis.yaml `deploy:`, custodian-owned: everything a deploy may execute, or deliver key material to. */
export interface DeployAllowList {
  /** name → shell command (run after an install, on the runner or the ssh host). */
  reload: Record<string, string>;
  /** Directories on the CI runner a dir target's path must be at or under. */
  dir: { paths: string[] };
  ssh: Record<string, SshHostEntry>;
  /** kubectl context → the namespaces deploy may apply into. */
  kubernetes: Record<string, { namespaces: string[] }>;
  /** host name → its agent's age recipient. */
  sealed: Record<string, { recipient: string }>;
  /**
   * name → a TLS endpoint CI may connect to as a client (a deploy's canary check). Absent when there is none, so a
   * confirmation recorded before the section existed keeps its digest.
   */
  probe?: Record<string, ProbeEndpoint>;
}

/** An endpoint CI may connect to: where, the HTTP path to ask for (a refusal after the handshake counts), who it is. */
interface ProbeEndpoint {
  /** host:port */
  address: string;
  /** With a path, a request must get a status below 400 (nginx answers 400 to a client it does not verify). */
  path?: string;
  /** The SPIFFE ID the endpoint's leaf must carry. */
  spiffe: string;
}

export interface ServiceDef {
  name: string;
  /** Extra DNS SANs beyond `<service>.<scope>.<trust domain>`. */
  dns: string[];
  /** Leaf lifetime in ms; undefined means the mesh default. */
  ttl?: number;
  deploy: DeploySelection[];
  /** `host`: the host holds the key and commits a CSR (docs/host-keys.md); absent: CI mints the key. */
  key?: 'host';
}

export interface ScopeDef {
  name: string;
  kind: ScopeKind;
  services: ServiceDef[];
}

const MESH_DEFAULTS = {
  algorithms: { root: 'ecdsa-p256', intermediate: 'ecdsa-p256', leaf: 'ecdsa-p256' } as const,
  ttl: { root: '10y', intermediate: '3y', leaf: '7d' },
  overlap: { propagation: '24h' },
  crl: { root: '180d', leaf: '72h' },
};

const DAY = 86_400_000;
const YEAR = 365 * DAY;

/**
 * The most a pull request can set (docs/input-limits.md): past these a value
 * is a typo or an attack, never a policy. CRLs are also cut at their issuer's
 * notAfter when signed, whatever the lifetime.
 */
export const POLICY_CEILINGS = {
  ttl: { root: 30 * YEAR, intermediate: 10 * YEAR, leaf: 398 * DAY },
  overlap: { propagation: 30 * DAY },
  crl: { root: YEAR, leaf: 30 * DAY },
  /**
   * Extra DNS names per service: a leaf past a few KB is refused by TLS stacks (OpenSSL's handshake refuses a 200 KB
   * one).
   */
  dnsPerService: 100,
} as const;

/** Walks a parsed YAML value, naming the field at fault in every error. */
class Reader {
  constructor(
    readonly file: string,
    readonly reason: Reason,
  ) {}

  fail(field: string, detail: string, hint?: string): never {
    throw new TrellisError(this.reason, detail, { file: this.file, field: field || undefined, hint });
  }

  /** `allowed` undefined: any key (the keys are names, such as services). */
  map(v: unknown, field: string, allowed?: readonly string[]): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      this.fail(
        field,
        'must be a mapping',
        field ? `write ${field} as indented key: value lines` : 'the file holds keys and values, such as kind: region',
      );
    if (!allowed) return v as Record<string, unknown>;
    const unknown = Object.keys(v as object).filter((k) => !allowed.includes(k));
    if (unknown.length) {
      this.fail(
        field ? `${field}.${unknown[0]}` : unknown[0]!,
        `unknown key ${quoteInput(unknown[0])}`,
        allowed.length ? `allowed here: ${allowed.join(', ')} (a typo must not silently drop a setting)` : undefined,
      );
    }
    return v as Record<string, unknown>;
  }

  string(v: unknown, field: string, pattern?: RegExp, hint?: string): string {
    if (typeof v !== 'string' || v.length === 0)
      this.fail(field, 'must be a non-empty string', hint ?? 'write it as a string');
    if (pattern && !pattern.test(v))
      this.fail(field, `${quoteInput(v)} is not valid`, hint ?? `it must match ${pattern.source}`);
    return v;
  }

  list(v: unknown, field: string): unknown[] {
    if (!Array.isArray(v))
      this.fail(field, 'must be a list', 'write it as a YAML list, such as [a, b] or lines starting with "- "');
    return v;
  }

  duration(v: unknown, field: string): number {
    if (typeof v !== 'string')
      this.fail(
        field,
        'must be a duration such as 72h or 7d',
        'write a whole number and a unit (s, m, h, d, w, y): a bare number has no unit',
      );
    return parseDuration(v, { file: this.file, field }, this.reason);
  }

  /** A duration with a ceiling, refused (never cut) above it. */
  boundedDuration(v: unknown, field: string, ceiling: number): number {
    const ms = this.duration(v, field);
    if (ms > ceiling)
      this.fail(
        field,
        `${formatDuration(ms)} is longer than ${formatDuration(ceiling)}, the most trellis accepts here`,
        "see docs/input-limits.md for each lifetime's ceiling and why",
      );
    return ms;
  }

  oneOf<T extends string>(v: unknown, field: string, values: readonly T[]): T {
    if (!values.includes(v as T))
      this.fail(
        field,
        `must be one of ${values.join(', ')} (got ${quoteInput(v)})`,
        `write one of: ${values.join(', ')}`,
      );
    return v as T;
  }
}

/**
 * Inputs a pull request can change are bounded before they are parsed: 4 MiB
 * holds a scope of 60,000 services with room to spare (see docs/input-limits.md).
 */
export const MAX_INPUT_BYTES = 4 * 1024 * 1024;

/** A path in the document, as the Reader names fields: `services.api.dns[0]`. */
const fieldOf = (path: (string | number)[]) =>
  path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${p}` : p)).join('');

/**
 * Anchors, aliases and tags have no use in trellis files and are how YAML is
 * turned into a resource bomb or a type confusion, so they are refused; the
 * duplicate-key check is done here in one pass (the yaml package's own is
 * quadratic in the number of keys of a mapping).
 */
function refuseHostileNodes(root: unknown, file: string, reason: Reason, allowAliases = false): void {
  const fail = (path: (string | number)[], detail: string, hint: string): never => {
    throw new TrellisError(reason, detail, { file, field: fieldOf(path) || undefined, hint });
  };
  // An explicit stack: a deeply nested document must not exhaust the call stack.
  const stack: { node: unknown; path: (string | number)[] }[] = [{ node: root, path: [] }];
  while (stack.length) {
    const { node, path } = stack.pop()!;
    if (!isNode(node)) continue;
    if (isAlias(node)) {
      if (allowAliases) continue;
      fail(
        path,
        `uses the alias *${node.source}`,
        'write the value out in full: anchors and aliases are not accepted in trellis files',
      );
    }
    const n = node as Node;
    if (n.anchor && !allowAliases)
      fail(
        path,
        `defines the anchor &${n.anchor}`,
        'remove the anchor: anchors and aliases are not accepted in trellis files',
      );
    if (n.tag)
      fail(
        path,
        `carries the tag ${n.tag}`,
        'remove the tag: trellis files hold plain strings, numbers, lists and mappings',
      );
    if (path.length > 32)
      fail(path, 'is nested deeper than 32 levels', 'trellis files are a few levels deep: this is not one');
    // Children go on the stack last-first, so the first offender in the file is the one reported.
    const children: { node: unknown; path: (string | number)[] }[] = [];
    if (isMap(n)) {
      const seen = new Set<string>();
      for (const pair of n.items) {
        if (!isPair(pair)) continue;
        const key = pair.key;
        if (isNode(key) && !isScalar(key))
          fail(path, 'has a key that is not a plain string', 'keys are names such as kind or services');
        // A name YAML reads as a number, a boolean or null (0x10, 1e3, true, ~) would be renamed (0x10 becomes 16):
        // refused, never renamed.
        if (isScalar(key) && typeof key.value !== 'string') {
          const written = (key as { source?: string }).source ?? String(key.value);
          fail(
            [...path, written],
            `the name ${quoteInput(written)} is read by YAML as ` +
              `${key.value === null ? 'null' : `the ${typeof key.value} ${String(key.value)}`}, not as a name`,
            `quote it ("${written}") or choose a name that starts with a letter`,
          );
        }
        const k = String(isScalar(key) ? key.value : key);
        if (seen.has(k))
          fail(
            [...path, k],
            `duplicate key ${quoteInput(k)}`,
            'keep one: a second value would silently replace the first',
          );
        seen.add(k);
        if (isNode(key) && (key.anchor || key.tag)) children.push({ node: key, path: [...path, k] });
        children.push({ node: pair.value, path: [...path, k] });
      }
    } else if (isSeq(n)) {
      n.items.forEach((item, i) => children.push({ node: item, path: [...path, i] }));
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
}

/**
 * `input`: a file people write (trellis.yaml, a scope file), held to the input limits; otherwise a record trellis
 * wrote.
 */
function parseYaml(text: string, file: string, reason: Reason, input = true): unknown {
  if (!input) return parseRecordYaml(text, file, reason);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_INPUT_BYTES) {
    throw new TrellisError(reason, `is ${bytes} bytes, over the limit of ${MAX_INPUT_BYTES} (4 MiB)`, {
      file,
      hint:
        reason === 'bad-scope'
          ? 'split the scope into several scopes (see docs/input-limits.md)'
          : 'trellis.yaml is a few lines: restore it from git history',
    });
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000e-\u001f\u007f\ufffd]/.test(text)) {
    throw new TrellisError(reason, 'holds control characters or bytes that are not UTF-8: this is not a text file', {
      file,
      hint: 'restore it from git history, or rewrite it as plain YAML',
    });
  }
  // The common shape (`svc: {}` lines) is read linearly; anything else, a duplicate key included, goes through the full
  // parser and its checks.
  const plain = readPlainYaml(text);
  if (plain !== undefined) return dataOnly(plain);
  // Duplicate keys are checked by refuseHostileNodes; aliases are refused there before anything expands them.
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new TrellisError(reason, `not valid YAML: ${withoutSecrets(e.message)}`, {
      file,
      hint: 'fix the syntax and rerun',
    });
  }
  refuseHostileNodes(doc.contents, file, reason);
  return dataOnly(doc.toJS() ?? {});
}

/** Records may carry the aliases `stringify` writes for a shared value; the yaml package's alias cap still applies. */
function parseRecordYaml(text: string, file: string, reason: Reason): unknown {
  // What toYaml wrote is read linearly (see plain-yaml.ts); anything else by the yaml package.
  const plain = readPlainYaml(text);
  if (plain !== undefined) return dataOnly(plain);
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  const fail = (why: string): never => {
    throw new TrellisError(reason, `not valid YAML: ${withoutSecrets(why)}`, {
      file,
      hint: 'restore it from git history',
    });
  };
  if (doc.errors.length) fail(doc.errors[0]!.message);
  refuseHostileNodes(doc.contents, file, reason, true);
  try {
    return dataOnly(doc.toJS({ maxAliasCount: 100 }) ?? {});
  } catch (e) {
    return fail((e as Error).message);
  }
}

// RFC 1035: labels of at most 63 characters, the whole name at most 253.
const TRUST_DOMAIN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

export function parseMeshConfig(text: string, file = 'trellis.yaml'): MeshConfig {
  const r = new Reader(file, 'bad-config');
  const top = r.map(parseYaml(text, file, 'bad-config'), '', [
    'version',
    'mesh',
    'trustDomain',
    'recipients',
    'defaults',
    'deploy',
  ]);
  if (top.version !== 1)
    r.fail('version', `unsupported store version ${JSON.stringify(top.version)}`, 'this trellis reads version 1');
  const recipients = r.map(top.recipients, 'recipients', ['offline', 'ci', 'breakglass', 'ciScopes']);
  const offline = r
    .list(recipients.offline, 'recipients.offline')
    .map((v, i) => r.string(v, `recipients.offline[${i}]`, /^age1/));
  if (offline.length === 0)
    r.fail(
      'recipients.offline',
      'needs at least one offline recipient',
      'list the age recipient of each offline identity (age-keygen -y prints it)',
    );
  const ci = r.string(recipients.ci, 'recipients.ci', /^age1/);
  validateRecipients(offline, { file, field: 'recipients.offline' });
  validateRecipients([ci], { file, field: 'recipients.ci' });
  assertSeparateRecipients(offline, ci, { file, field: 'recipients.ci' });
  const breakglass =
    recipients.breakglass === undefined ? undefined : r.string(recipients.breakglass, 'recipients.breakglass', /^age1/);
  if (breakglass !== undefined) {
    validateRecipients([breakglass], { file, field: 'recipients.breakglass' });
    assertBreakglassRecipient(offline, ci, breakglass, { file, field: 'recipients.breakglass' });
  }
  const ciScopes = readCiScopes(r, recipients.ciScopes, { offline, ci, breakglass });
  const defaults = r.map(top.defaults ?? {}, 'defaults', ['algorithms', 'ttl', 'overlap', 'crl']);
  const crl = r.map(defaults.crl ?? {}, 'defaults.crl', ['root', 'leaf']);
  const alg = r.map(defaults.algorithms ?? {}, 'defaults.algorithms', ['root', 'intermediate', 'leaf']);
  const ttl = r.map(defaults.ttl ?? {}, 'defaults.ttl', ['root', 'intermediate', 'leaf']);
  const overlap = r.map(defaults.overlap ?? {}, 'defaults.overlap', ['propagation']);
  const d = MESH_DEFAULTS;
  const c = POLICY_CEILINGS;
  return {
    version: 1,
    mesh: r.string(top.mesh, 'mesh', SCOPE_NAME, 'lower-case letters, digits and dashes'),
    trustDomain: r.string(top.trustDomain, 'trustDomain', TRUST_DOMAIN, 'a lower-case DNS name such as mesh.example'),
    recipients: { offline, ci, ...(breakglass !== undefined ? { breakglass } : {}), ...(ciScopes ? { ciScopes } : {}) },
    algorithms: {
      root: r.oneOf(alg.root ?? d.algorithms.root, 'defaults.algorithms.root', KEY_ALGORITHMS),
      intermediate: r.oneOf(
        alg.intermediate ?? d.algorithms.intermediate,
        'defaults.algorithms.intermediate',
        KEY_ALGORITHMS,
      ),
      leaf: r.oneOf(alg.leaf ?? d.algorithms.leaf, 'defaults.algorithms.leaf', KEY_ALGORITHMS),
    },
    ttl: {
      root: r.boundedDuration(ttl.root ?? d.ttl.root, 'defaults.ttl.root', c.ttl.root),
      intermediate: r.boundedDuration(
        ttl.intermediate ?? d.ttl.intermediate,
        'defaults.ttl.intermediate',
        c.ttl.intermediate,
      ),
      leaf: r.boundedDuration(ttl.leaf ?? d.ttl.leaf, 'defaults.ttl.leaf', c.ttl.leaf),
    },
    overlap: {
      propagation: r.boundedDuration(
        overlap.propagation ?? d.overlap.propagation,
        'defaults.overlap.propagation',
        c.overlap.propagation,
      ),
    },
    crl: {
      root: r.boundedDuration(crl.root ?? d.crl.root, 'defaults.crl.root', c.crl.root),
      leaf: r.boundedDuration(crl.leaf ?? d.crl.leaf, 'defaults.crl.leaf', c.crl.leaf),
    },
    deploy: readAllowList(r, top.deploy ?? {}, 'deploy'),
  };
}

/**
 * recipients.ciScopes: scope → its own CI recipient. Each is a CI recipient
 * like recipients.ci (never an offline or the break-glass one), one kind with
 * it (the CI tier is post-quantum or not as a whole), and each scope's alone:
 * a recipient shared by two scopes, or equal to recipients.ci, separates nothing.
 */
function readCiScopes(
  r: Reader,
  raw: unknown,
  others: { offline: string[]; ci: string; breakglass?: string },
): Record<string, string> | undefined {
  if (raw === undefined) return undefined;
  const m = r.map(raw, 'recipients.ciScopes');
  const out = dict<string>();
  const seen = new Map<string, string>();
  for (const scope of Object.keys(m).sort()) {
    const at = `recipients.ciScopes.${scope}`;
    if (!SCOPE_NAME.test(scope) || RESERVED_SCOPE_NAMES.includes(scope))
      r.fail(at, `${quoteInput(scope)} is not a scope name`, 'name a scope as its file is named: scopes/<scope>.yaml');
    const rec = r.string(
      m[scope],
      at,
      /^age1/,
      "the scope's own CI recipient (age-keygen -y of the identity its runner holds)",
    );
    validateRecipients([rec], { file: r.file, field: at });
    assertOneCiTier(rec, others.ci, { file: r.file, field: at });
    assertSeparateRecipients(others.offline, rec, { file: r.file, field: at });
    if (others.breakglass !== undefined)
      assertBreakglassRecipient(others.offline, rec, others.breakglass, { file: r.file, field: at });
    if (rec === others.ci)
      r.fail(
        at,
        'is recipients.ci, the shared CI recipient: the scope would not be separated',
        'give the scope its own identity (age-keygen), or delete the entry to keep it on the shared one',
      );
    if (seen.has(rec))
      r.fail(
        at,
        `is also the recipient of scope ${seen.get(rec)}: one identity would open both`,
        'give each scope its own identity (age-keygen)',
      );
    seen.set(rec, scope);
    out[scope] = rec;
  }
  return Object.keys(out).length ? out : undefined;
}

/** The CI recipient trellis.yaml gives `scope`'s intermediate keys: its own, else the shared one. */
export function ciRecipientIn(config: MeshConfig, scope: string): string {
  return config.recipients.ciScopes?.[scope] ?? config.recipients.ci;
}

export function serializeMeshConfig(c: {
  mesh: string;
  trustDomain: string;
  recipients: MeshConfig['recipients'];
  rootAlgorithm?: KeyAlgorithm;
}): string {
  return toYaml({
    version: 1,
    mesh: c.mesh,
    trustDomain: c.trustDomain,
    recipients: {
      offline: c.recipients.offline,
      ci: c.recipients.ci,
      ...(c.recipients.breakglass ? { breakglass: c.recipients.breakglass } : {}),
    },
    defaults: {
      ...MESH_DEFAULTS,
      algorithms: { ...MESH_DEFAULTS.algorithms, root: c.rootAlgorithm ?? MESH_DEFAULTS.algorithms.root },
    },
  });
}

const DEPLOY_TYPES = ['dir', 'ssh', 'kubernetes', 'sealed'] as const;

// Deploy fields, by pattern. Every one ends up in an argument vector or a path, so none may begin with "-".
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const POSIX_USER = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
const PATH_SEGMENT = /^[A-Za-z0-9._@%+=:,~-]+$/;
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// Room for the "-trust" suffix of the ConfigMap.
const DNS_1123_SUBDOMAIN = /^(?=.{1,247}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const KUBE_CONTEXT = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,252}$/;
// Lower-case DNS-style names, so a host entry can be called by its host name (no "/", no leading "-", no "..").
const ENTRY_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const COMMAND = /^[^\0-\x1f\x7f]+$/;
const SSH_KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ssh-rsa'];

const isIpLiteral = (s: string) => isIP(s) !== 0;
// A name whose last label is numeric would be read as an IPv4 address: it must be a valid one.
const isHost = (s: string) => (HOST_NAME.test(s) && !/(^|\.)\d+$/.test(s)) || isIpLiteral(s);

/** An absolute, normalized path: no `.`/`..` segment, no empty segment, no whitespace or control character. */
function isNormalizedPath(p: string): boolean {
  return (
    p.startsWith('/') &&
    p
      .slice(1)
      .split('/')
      .every((s) => s !== '.' && s !== '..' && PATH_SEGMENT.test(s))
  );
}

/** `host:port`, `[v6]:port`, or `https://host:port/path`. */
function isCheckEndpoint(v: string): boolean {
  const m = /^(https:\/\/)?(\[([0-9A-Fa-f:.]+)\]|[^/:[\]]+):(\d{1,5})(\/[!-~]*)?$/.exec(v);
  if (!m || (m[5] && !m[1])) return false;
  const port = Number(m[4]);
  return port >= 1 && port <= 65535 && (m[3] !== undefined ? isIpLiteral(m[3]) : isHost(m[2]!));
}

/** An OpenSSH public key whose key blob names the same algorithm as its prefix. */
function isSshPublicKey(v: string): boolean {
  const [type, b64, ...rest] = v.split(' ');
  if (rest.length || !SSH_KEY_TYPES.includes(type!) || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return false;
  const blob = Buffer.from(b64, 'base64');
  const n = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  return n > 0 && blob.length > 4 + n && blob.subarray(4, 4 + n).toString('latin1') === type;
}

const HINT = {
  host: 'a host name or an IP literal (it must not begin with "-")',
  user: 'a POSIX user name: letters, digits, "_", ".", "-", not beginning with "-"',
  path: 'an absolute, normalized path: no "..", "." or empty segments, no spaces or control characters',
  entry: 'the name of an entry of the deploy allow-list in trellis.yaml (lower-case letters, digits, "-" and ".")',
  check: 'the name of an entry of deploy.probe in trellis.yaml (the endpoint a canary handshake checks)',
  address: 'host:port of a TLS endpoint (an IPv6 literal in brackets)',
  httpPath: 'an absolute HTTP path: "/" then printable characters, no spaces',
  spiffe: 'a SPIFFE ID: spiffe://<trust domain>/<path>',
  hostKey:
    'the host\'s public key as "ssh-ed25519 AAAA…" (ssh-keyscan, checked out of band): it is pinned, never ' +
    'learned on first use',
  namespace: 'a Kubernetes namespace (DNS-1123 label: lower-case letters, digits, "-")',
  context: 'a kubectl context name (letters, digits, ".", "_", ":", "@", "/", "-"), not beginning with "-"',
  command: 'one line, no control characters',
};

/** One deploy field and its pattern, so the scope file and trellis.yaml share each rule. */
function field(r: Reader, v: unknown, at: string, kind: keyof typeof HINT): string {
  const s = r.string(v, at);
  const ok = {
    host: isHost,
    user: (x: string) => POSIX_USER.test(x),
    path: isNormalizedPath,
    entry: (x: string) => ENTRY_NAME.test(x),
    // An entry name; an endpoint written here (as scope files once did) parses, and deploy refuses it with the way
    // to move it into the allow-list.
    check: (x: string) => ENTRY_NAME.test(x) || isCheckEndpoint(x),
    address: (x: string) => isCheckEndpoint(x) && !x.startsWith('https://') && !x.includes('/'),
    httpPath: (x: string) => /^\/[!-~]*$/.test(x),
    spiffe: (x: string) => /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/.test(x),
    hostKey: isSshPublicKey,
    namespace: (x: string) => DNS_1123_LABEL.test(x),
    context: (x: string) => KUBE_CONTEXT.test(x),
    command: (x: string) => COMMAND.test(x),
  }[kind];
  if (!ok(s)) r.fail(at, `${JSON.stringify(s)} is not valid`, HINT[kind]);
  return s;
}

function port(r: Reader, v: unknown, at: string): number {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) r.fail(at, 'must be a TCP port number');
  return v as number;
}

function paths(r: Reader, v: unknown, at: string): string[] {
  return r.list(v, at).map((p, i) => field(r, p, `${at}[${i}]`, 'path'));
}

function entries<T>(
  r: Reader,
  v: unknown,
  at: string,
  read: (raw: unknown, at: string) => T,
  key: 'entry' | 'context' = 'entry',
): Record<string, T> {
  const m = r.map(v ?? {}, at, Object.keys((v as object | null) ?? {}));
  return dict(
    Object.keys(m)
      .sort()
      .map((k) => {
        if (!(key === 'entry' ? ENTRY_NAME : KUBE_CONTEXT).test(k))
          r.fail(`${at}.${k}`, `"${k}" is not a valid name here`, HINT[key]);
        return [k, read(m[k], `${at}.${k}`)] as const;
      }),
  );
}

function readAllowList(r: Reader, raw: unknown, at: string): DeployAllowList {
  const d = r.map(raw, at, ['reload', 'dir', 'ssh', 'kubernetes', 'sealed', 'probe']);
  const dir = r.map(d.dir ?? {}, `${at}.dir`, ['paths']);
  const probe = entries(r, d.probe, `${at}.probe`, (v, f) => {
    const m = r.map(v, f, ['address', 'path', 'spiffe']);
    return {
      address: field(r, m.address, `${f}.address`, 'address'),
      ...(m.path === undefined ? {} : { path: field(r, m.path, `${f}.path`, 'httpPath') }),
      spiffe: field(r, m.spiffe, `${f}.spiffe`, 'spiffe'),
    };
  });
  return {
    ...(Object.keys(probe).length ? { probe } : {}),
    reload: entries(r, d.reload, `${at}.reload`, (v, f) => field(r, v, f, 'command')),
    dir: { paths: paths(r, dir.paths ?? [], `${at}.dir.paths`) },
    ssh: entries(r, d.ssh, `${at}.ssh`, (v, f) => {
      const m = r.map(v, f, ['host', 'port', 'user', 'hostKey', 'identityFile', 'paths']);
      return {
        host: field(r, m.host, `${f}.host`, 'host'),
        port: port(r, m.port ?? 22, `${f}.port`),
        ...(m.user === undefined ? {} : { user: field(r, m.user, `${f}.user`, 'user') }),
        hostKey: field(r, m.hostKey, `${f}.hostKey`, 'hostKey'),
        ...(m.identityFile === undefined
          ? {}
          : { identityFile: field(r, m.identityFile, `${f}.identityFile`, 'path') }),
        paths: paths(r, m.paths ?? [], `${f}.paths`),
      };
    }),
    kubernetes: entries(
      r,
      d.kubernetes,
      `${at}.kubernetes`,
      (v, f) => {
        const m = r.map(v, f, ['namespaces']);
        return {
          namespaces: r
            .list(m.namespaces ?? [], `${f}.namespaces`)
            .map((n, i) => field(r, n, `${f}.namespaces[${i}]`, 'namespace')),
        };
      },
      'context',
    ),
    sealed: entries(r, d.sealed, `${at}.sealed`, (v, f) => {
      const m = r.map(v, f, ['recipient']);
      const recipient = r.string(m.recipient, `${f}.recipient`, /^age1/, "the host agent's age recipient");
      validateRecipients([recipient], { file: r.file, field: `${f}.recipient` });
      return { recipient };
    }),
  };
}

/** An allow-list as recorded elsewhere (the root ledger's confirmations), read by the same rules. */
export function parseDeployAllowList(raw: unknown, file: string, at = 'deploy'): DeployAllowList {
  return readAllowList(new Reader(file, 'corrupt-store'), raw, at);
}

function parseTarget(r: Reader, raw: unknown, at: string): DeploySelection {
  const type = r.oneOf((raw as Record<string, unknown> | null)?.type, `${at}.type`, DEPLOY_TYPES);
  const opt = (m: Record<string, unknown>, k: string, kind: Parameters<typeof field>[3]) =>
    m[k] === undefined ? {} : { [k]: field(r, m[k], `${at}.${k}`, kind) };
  // Custodian-owned fields older scope files carried: still checked by pattern, then refused by deploy (they live in
  // trellis.yaml).
  const misplaced = (
    m: Record<string, unknown>,
    kinds: Record<string, Parameters<typeof field>[3] | 'port' | 'recipient'>,
  ) => {
    const set = Object.entries(kinds)
      .filter(([k]) => m[k] !== undefined)
      .map(([k, kind]) => [
        k,
        kind === 'port'
          ? String(port(r, m[k], `${at}.${k}`))
          : kind === 'recipient'
            ? r.string(m[k], `${at}.${k}`, /^age1[0-9a-z]+$/, 'an age recipient')
            : field(r, m[k], `${at}.${k}`, kind),
      ]);
    return set.length ? { misplaced: Object.fromEntries(set) } : {};
  };
  // A closed list, each at most once: an encoding of what the target already gets, never a new destination.
  const formats = (m: Record<string, unknown>) => {
    if (m.formats === undefined) return {};
    const list = r.list(m.formats, `${at}.formats`).map((f, i) => r.oneOf(f, `${at}.formats[${i}]`, RELEASE_FORMATS));
    if (new Set(list).size !== list.length) r.fail(`${at}.formats`, 'names a format twice');
    return list.length ? { formats: list } : {};
  };
  switch (type) {
    case 'dir': {
      const m = r.map(raw, at, ['type', 'path', 'reload', 'check', 'formats']);
      return {
        type,
        path: field(r, m.path, `${at}.path`, 'path'),
        ...opt(m, 'reload', 'entry'),
        ...opt(m, 'check', 'check'),
        ...formats(m),
      } as DeploySelection;
    }
    case 'ssh': {
      const m = r.map(raw, at, [
        'type',
        'host',
        'path',
        'reload',
        'check',
        'formats',
        'port',
        'user',
        'hostKey',
        'identityFile',
      ]);
      return {
        type,
        host: field(r, m.host, `${at}.host`, 'entry'),
        path: field(r, m.path, `${at}.path`, 'path'),
        ...opt(m, 'reload', 'entry'),
        ...opt(m, 'check', 'check'),
        ...formats(m),
        ...misplaced(m, { port: 'port', user: 'user', hostKey: 'hostKey', identityFile: 'path' }),
      } as DeploySelection;
    }
    case 'kubernetes': {
      const m = r.map(raw, at, ['type', 'name', 'namespace', 'context']);
      return {
        type,
        name: r.string(
          m.name,
          `${at}.name`,
          DNS_1123_SUBDOMAIN,
          'a Kubernetes object name (DNS-1123, at most 247 characters)',
        ),
        namespace: m.namespace === undefined ? 'default' : field(r, m.namespace, `${at}.namespace`, 'namespace'),
        ...opt(m, 'context', 'context'),
      } as DeploySelection;
    }
    case 'sealed': {
      const m = r.map(raw, at, ['type', 'host', 'recipient', 'formats']);
      return {
        type,
        host: field(r, m.host, `${at}.host`, 'entry'),
        ...formats(m),
        ...misplaced(m, { recipient: 'recipient' }),
      } as DeploySelection;
    }
  }
}

/** Parses `scopes/<name>.yaml`; the scope's name is the file's. */
export function parseScope(text: string, name: string, trustDomain: string, file = `scopes/${name}.yaml`): ScopeDef {
  const r = new Reader(file, 'bad-scope');
  if (!SCOPE_NAME.test(name)) {
    r.fail(
      '',
      `${quoteInput(name)} is not a scope name`,
      'name the file [a-z0-9-]{1,63}.yaml: lower-case letters, digits and dashes',
    );
  }
  if (RESERVED_SCOPE_NAMES.includes(name))
    r.fail(
      '',
      `"${name}" is reserved: bundles/${name}/ holds the root CA`,
      'rename the scope file (and the region it names)',
    );
  const top = r.map(parseYaml(text, file, 'bad-scope'), '', ['kind', 'services']);
  const kind = r.oneOf(top.kind, 'kind', ['global', 'region'] as const);
  if ((kind === 'global') !== (name === GLOBAL_SCOPE)) {
    r.fail(
      'kind',
      kind === 'global'
        ? `only scopes/${GLOBAL_SCOPE}.yaml may be kind: global`
        : `"${GLOBAL_SCOPE}" is reserved for the global scope`,
      kind === 'global' ? 'use kind: region' : 'set kind: global',
    );
  }
  const domain = scopeDomain(name, trustDomain);
  const services = Object.entries(r.map(top.services ?? {}, 'services')).map(([svc, raw]) => {
    const at = `services.${svc}`;
    if (!SERVICE_NAME.test(svc))
      r.fail(
        quoteInput(svc) === JSON.stringify(svc) ? at : 'services',
        `${quoteInput(svc)} is not a service name`,
        'use [a-z0-9-]{1,63}, lower-case: it becomes a DNS label',
      );
    if (svc === PROBE_SERVICE)
      r.fail(at, `${svc} is reserved for the fleet probe's client certificates`, 'choose another service name');
    if (`${svc}.${domain}`.length > 64)
      r.fail(
        at,
        `${svc}.${domain} is longer than 64 characters, the limit of a certificate's common name`,
        'shorten the service name',
      );
    const s = r.map(raw ?? {}, at, ['dns', 'ttl', 'deploy', 'key']);
    const listed = r.list(s.dns ?? [], `${at}.dns`);
    if (listed.length > POLICY_CEILINGS.dnsPerService)
      r.fail(
        `${at}.dns`,
        `lists ${listed.length} names, more than ${POLICY_CEILINGS.dnsPerService}`,
        'a leaf with that many names is refused by TLS stacks: split the service, or give its clients fewer names',
      );
    const dns = listed.map((v, i) => {
      const n = r.string(v, `${at}.dns[${i}]`);
      const refused = dnsSanRefusal(n, domain);
      if (refused) r.fail(`${at}.dns[${i}]`, `${quoteInput(n)} ${refused.detail}`, refused.hint);
      return n;
    });
    const deploy = r.list(s.deploy ?? [], `${at}.deploy`).map((t, i) => parseTarget(r, t, `${at}.deploy[${i}]`));
    const def: ServiceDef = { name: svc, dns, deploy };
    if (s.ttl !== undefined) def.ttl = r.boundedDuration(s.ttl, `${at}.ttl`, POLICY_CEILINGS.ttl.leaf);
    if (s.key !== undefined && r.oneOf(s.key, `${at}.key`, ['ci', 'host'] as const) === 'host') {
      const k8s = deploy.findIndex((t) => t.type === 'kubernetes');
      // A Secret is written by deploy from CI: the key would have to leave the host to get there.
      if (k8s >= 0)
        r.fail(
          `${at}.deploy[${k8s}]`,
          'is a Kubernetes target, and a Kubernetes Secret carries the key, which key: host keeps on its host',
          'deploy this service through ssh, sealed or dir (where deploy runs on the serving host), or drop key: host',
        );
      def.key = 'host';
    }
    return def;
  });
  return { name, kind, services: services.sort((a, b) => a.name.localeCompare(b.name)) };
}

/** Deterministic YAML: the key order given, LF, trailing newline. */
export function toYaml(value: unknown): string {
  // Records are written by the linear writer when it can (the same bytes; see plain-yaml.ts), else by the yaml package.
  return writePlainYaml(value) ?? stringify(value, { lineWidth: 0, indent: 2 });
}

export function fromYaml(text: string, file: string): unknown {
  return parseYaml(text, file, 'corrupt-store', false);
}

/** A deploy target as one line: where it delivers, for reports and the blast radius. */
export function describeTarget(t: DeploySelection): string {
  switch (t.type) {
    case 'dir':
      return `dir:${t.path}`;
    case 'ssh':
      return `ssh:${t.host}:${t.path}`;
    case 'kubernetes':
      return `kubernetes:${t.context ? `${t.context}/` : ''}${t.namespace}/${t.name}`;
    case 'sealed':
      return `sealed:${t.host}`;
  }
}
