/**
 * The deploy allow-list (trellis.yaml `deploy:`): a scope file selects, the
 * custodian decides. A selection resolves to a concrete target only through
 * the allow-list, and the allow-list counts only once the custodian confirmed
 * it in the root ledger (`trellis-root confirm`). See docs/deploy-allow-list.md.
 */
import { parseDeployAllowList, type DeployAllowList, type DeploySelection, type DeployTarget } from './config.js';
import { sha256Hex } from '../crypto/crypto.js';
import { TrellisError } from '../model/errors.js';
import { canonicalJson } from '../ledger/ledger.js';
import { rootLedgerTrust } from '../ledger/ledger-trust.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';

export const EMPTY_ALLOW_LIST: DeployAllowList = {
  reload: {},
  dir: { paths: [] },
  ssh: {},
  kubernetes: {},
  sealed: {},
};

export function allowListDigest(a: DeployAllowList): string {
  return `sha256:${sha256Hex(canonicalJson(a))}`;
}

export interface Confirmation {
  allowList: DeployAllowList;
  /** The root-ledger entry that recorded it; undefined for a store that never confirmed one (the empty allow-list). */
  seq?: number;
  at?: string;
}

/**
 * The allow-list the custodian last confirmed. Every reader of confirmations
 * goes through here, so restricting them (to root-signed entries) is one edit.
 */
export function confirmedAllowList(mesh: Mesh): Confirmation {
  // Only an entry that counts (root-signed, or a legacy ledger's unsigned prefix) confirms: a pull request can append
  // anything else.
  const e = rootLedgerTrust(mesh)
    .counted.filter((x) => x.details && typeof x.details.allowListDigest === 'string')
    .at(-1);
  if (!e) return { allowList: EMPTY_ALLOW_LIST };
  const allowList = parseDeployAllowList(e.details.allowList, paths.rootLedger, `seq ${e.seq}.details.allowList`);
  if (allowListDigest(allowList) !== e.details.allowListDigest) {
    throw new TrellisError('corrupt-store', `the confirmation at seq ${e.seq} does not match its own digest`, {
      file: paths.rootLedger,
      hint: 'restore the root ledger from git history',
    });
  }
  return { allowList, seq: e.seq, at: e.at };
}

/** Every entry added, removed or changed from `before` to `after`, as `deploy.<section>.<entry>` lines. */
export function allowListChanges(before: DeployAllowList, after: DeployAllowList): string[] {
  const out: string[] = [];
  const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : canonicalJson(v));
  for (const section of ['reload', 'ssh', 'kubernetes', 'sealed', 'probe'] as const) {
    const b = (before[section] ?? {}) as Record<string, unknown>;
    const a = (after[section] ?? {}) as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(b), ...Object.keys(a)])].sort()) {
      const at = `deploy.${section}.${k}`;
      if (!(k in b)) out.push(`${at} added: ${show(a[k])}`);
      else if (!(k in a)) out.push(`${at} removed (was ${show(b[k])})`);
      else if (canonicalJson(a[k]) !== canonicalJson(b[k])) out.push(`${at} changed: ${show(b[k])} → ${show(a[k])}`);
    }
  }
  for (const p of after.dir.paths.filter((x) => !before.dir.paths.includes(x))) out.push(`deploy.dir.paths ${p} added`);
  for (const p of before.dir.paths.filter((x) => !after.dir.paths.includes(x)))
    out.push(`deploy.dir.paths ${p} removed`);
  return out;
}

/** Why a selection is refused: the field of the scope file, what it asked for, and what to do. */
export interface Refusal {
  field: string;
  detail: string;
  hint: string;
}

const under = (p: string, prefixes: string[]) => prefixes.some((x) => p === x || p.startsWith(`${x}/`));

/**
 * Resolves what a scope file selected against the allow-list: a concrete
 * target, or the first refusal. `at` is the field path of the selection.
 */
export function resolveTarget(allow: DeployAllowList, t: DeploySelection, at: string): DeployTarget | Refusal {
  const refuse = (f: string, detail: string, hint: string): Refusal => ({ field: `${at}.${f}`, detail, hint });
  const addOne = 'a new one is added to trellis.yaml by the custodian and confirmed with trellis-root confirm';
  if ((t.type === 'ssh' || t.type === 'sealed') && t.misplaced) {
    const [k, v] = Object.entries(t.misplaced)[0]!;
    return refuse(
      k,
      `${k} ${JSON.stringify(v)} is custodian-owned and has no place in a scope file`,
      `delete it here; it comes from trellis.yaml deploy.${t.type}.${t.host}.${k}, which the custodian sets ` +
        `and confirms (trellis-root confirm)`,
    );
  }
  const reload = (name: string | undefined): { reloadCommand?: string } | Refusal => {
    if (name === undefined) return {};
    const cmd = allow.reload[name];
    if (cmd === undefined)
      return refuse(
        'reload',
        `reload ${JSON.stringify(name)} is not in the allow-list (deploy.reload in trellis.yaml)`,
        `name one of: ${Object.keys(allow.reload).join(', ') || '(none)'}; ${addOne}`,
      );
    return { reloadCommand: cmd };
  };
  // CI connects only to an endpoint the custodian confirmed: a scope file names an entry of deploy.probe.
  const check = (name: string | undefined): { check?: string; checkSpiffe?: string } | Refusal => {
    if (name === undefined) return {};
    if (name.includes(':'))
      return refuse(
        'check',
        `check ${JSON.stringify(name)} names an endpoint itself, and CI connects only to endpoints the custodian ` +
          `confirmed (deploy.probe in trellis.yaml)`,
        `move it into trellis.yaml as deploy.probe.<name> (address: host:port; path: the https:// path, if any; ` +
          `spiffe: the SPIFFE ID the endpoint presents), have the custodian confirm it (trellis-root confirm), and ` +
          `write check: <name> here (docs/deploy-allow-list.md)`,
      );
    const probe = allow.probe?.[name];
    if (!probe)
      return refuse(
        'check',
        `check ${JSON.stringify(name)} is not in the allow-list (deploy.probe in trellis.yaml)`,
        `name one of: ${Object.keys(allow.probe ?? {}).join(', ') || '(none)'}; ${addOne}`,
      );
    return {
      check: probe.path ? `https://${probe.address}${probe.path}` : probe.address,
      checkSpiffe: probe.spiffe,
    };
  };
  switch (t.type) {
    case 'dir': {
      if (!under(t.path, allow.dir.paths))
        return refuse(
          'path',
          `path ${t.path} is not at or under an allowed directory (deploy.dir.paths in trellis.yaml)`,
          `use a path under: ${allow.dir.paths.join(', ') || '(none)'}; ${addOne}`,
        );
      const r = reload(t.reload);
      const c = check(t.check);
      // The most specific grant: below it, deploy follows no link (out-path.ts), so the release stays where the
      // custodian allowed.
      const allowedRoot = allow.dir.paths.filter((x) => under(t.path, [x])).sort((a, b) => b.length - a.length)[0]!;
      return 'field' in r ? r : 'field' in c ? c : { ...t, ...r, ...c, allowedRoot };
    }
    case 'ssh': {
      const host = allow.ssh[t.host];
      if (!host)
        return refuse(
          'host',
          `ssh host ${JSON.stringify(t.host)} is not in the allow-list (deploy.ssh in trellis.yaml)`,
          `name one of: ${Object.keys(allow.ssh).join(', ') || '(none)'}; ${addOne}`,
        );
      if (!under(t.path, host.paths))
        return refuse(
          'path',
          `path ${t.path} is not at or under a directory allowed on ${t.host} (deploy.ssh.${t.host}.paths)`,
          `use a path under: ${host.paths.join(', ') || '(none)'}; ${addOne}`,
        );
      const r = reload(t.reload);
      if ('field' in r) return r;
      const c = check(t.check);
      if ('field' in c) return c;
      const { paths: _, host: address, ...conn } = host;
      return { ...t, ...r, ...c, ...conn, address };
    }
    case 'kubernetes': {
      // Without a context nothing is applied: the manifests stay in CI's workspace.
      if (t.context === undefined) return t;
      const ctx = allow.kubernetes[t.context];
      if (!ctx)
        return refuse(
          'context',
          `kubectl context ${JSON.stringify(t.context)} is not in the allow-list (deploy.kubernetes in trellis.yaml)`,
          `name one of: ${Object.keys(allow.kubernetes).join(', ') || '(none)'}; ${addOne}`,
        );
      if (!ctx.namespaces.includes(t.namespace))
        return refuse(
          'namespace',
          `namespace ${JSON.stringify(t.namespace)} is not allowed in context ${t.context} ` +
            `(deploy.kubernetes.${t.context}.namespaces)`,
          `use one of: ${ctx.namespaces.join(', ') || '(none)'}; ${addOne}`,
        );
      return t;
    }
    case 'sealed': {
      const host = allow.sealed[t.host];
      if (!host)
        return refuse(
          'host',
          `sealed host ${JSON.stringify(t.host)} is not in the allow-list (deploy.sealed in trellis.yaml)`,
          `name one of: ${Object.keys(allow.sealed).join(', ') || '(none)'}; ${addOne}, with the host agent's ` +
            `recipient`,
        );
      return { type: 'sealed', host: t.host, recipient: host.recipient, ...(t.formats ? { formats: t.formats } : {}) };
    }
  }
}

export function isRefusal(r: DeployTarget | Refusal): r is Refusal {
  return 'field' in r && 'detail' in r;
}
