/**
 * A CI identity per scope (trellis.yaml `recipients.ciScopes`): which recipient
 * each scope's intermediate keys belong to, as a custodian confirmed it; the
 * refusal of a CI identity that opens a scope the run was not asked to work
 * on; and what verify can prove about it. See docs/custody-keys.md.
 */
import { keyMatchesCert, type Certificate } from '../x509/certificates.js';
import { ciRecipientIn, type MeshConfig } from '../config/config.js';
import { ageStanzaTypes, isPq, recipientOf, tryDecrypt } from './custody.js';
import { TrellisError } from '../model/errors.js';
import { lastConfirmedRecord } from '../ledger/ledger-trust.js';
import { liveIntermediates } from '../trust/live.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import type { Finding } from '../verify/finding.js';
import { dict } from '../model/data.js';

/** The CI recipients in force: the shared one and each separated scope's own. */
export interface CiCustody {
  shared: string;
  scopes: Record<string, string>;
}

/**
 * What a ceremony records (root-signed) when it confirms trellis.yaml's CI recipients: `ciScopeRecipients` only when a
 * scope has one.
 */
export function ciScopesRecord(config: MeshConfig): { ciScopeRecipients?: Record<string, string> } {
  const s = config.recipients.ciScopes;
  return s && Object.keys(s).length ? { ciScopeRecipients: s } : {};
}

/** trellis.yaml's CI recipients, as `confirmedCiCustody` returns the confirmed ones. */
const configuredCiCustody = (config: MeshConfig): CiCustody => ({
  shared: config.recipients.ci,
  scopes: config.recipients.ciScopes ?? dict(),
});

/**
 * The CI recipients a custodian last confirmed (a root-signed root-ledger
 * entry); trellis.yaml's only for a store that never recorded any. A pull
 * request that edits recipients.ciScopes changes nothing here.
 */
export function confirmedCiCustody(mesh: Mesh): CiCustody {
  const rec = lastConfirmedRecord(mesh, 'ciRecipient');
  if (!rec) return configuredCiCustody(mesh.config);
  const raw = rec.ciScopeRecipients ?? dict();
  const ok =
    raw &&
    typeof raw === 'object' &&
    !Array.isArray(raw) &&
    Object.values(raw).every((v) => typeof v === 'string' && v.startsWith('age1'));
  if (!ok || typeof rec.ciRecipient !== 'string')
    throw new TrellisError('corrupt-store', 'the last confirmation of the CI recipients is not a recipient map', {
      file: paths.rootLedger,
      hint: 'restore the root ledger from git history',
    });
  return { shared: rec.ciRecipient, scopes: raw as Record<string, string> };
}

export const ciRecipientOf = (c: CiCustody, scope: string): string => c.scopes[scope] ?? c.shared;

/** A CI recipient in trellis.yaml that is not the confirmed one: its field, and a line saying both. */
export interface UnconfirmedCiRecipient {
  field: 'recipients.ci' | `recipients.ciScopes.${string}`;
  text: string;
}

/** Each CI recipient in trellis.yaml (shared, then per scope) that is not the confirmed one; empty when all are. */
export function unconfirmedCiRecipients(mesh: Mesh): UnconfirmedCiRecipient[] {
  const c = confirmedCiCustody(mesh);
  const want = configuredCiCustody(mesh.config);
  const out: UnconfirmedCiRecipient[] = [];
  if (want.shared !== c.shared)
    out.push({ field: 'recipients.ci', text: `recipients.ci ${short(want.shared)} (confirmed: ${short(c.shared)})` });
  for (const s of [...new Set([...Object.keys(c.scopes), ...Object.keys(want.scopes)])].sort()) {
    if (want.scopes[s] !== c.scopes[s])
      out.push({
        field: `recipients.ciScopes.${s}`,
        text:
          `recipients.ciScopes.${s} ${want.scopes[s] ? short(want.scopes[s]) : '(none)'} (confirmed: ` +
          `${c.scopes[s] ? short(c.scopes[s]) : 'none, the shared one'})`,
      });
  }
  return out;
}

/** A recipient as a message names it: post-quantum ones are ~2,000 characters. */
export const short = (r: string): string => (r.length > 40 ? `${r.slice(0, 24)}…${r.slice(-8)}` : r);

/**
 * The CI-held key files of a scope: active, next, previous (the old-root twin shares the active key; standby keys are
 * break-glass's).
 */
export function ciKeyFiles(mesh: Mesh, scope: string): { file: string; ct: string; cert: Certificate }[] {
  return liveIntermediates(mesh, scope)
    .filter((l) => l.role !== 'old-root' && l.role !== 'standby' && l.keyAge !== undefined)
    .map((l) => ({ file: l.keyFile, ct: l.keyAge!, cert: l.cert }));
}

/** Who a recipient is, in the words of trellis.yaml. */
function whose(c: CiCustody, r: string): string {
  if (r === c.shared) return 'the shared CI recipient (recipients.ci)';
  const s = Object.keys(c.scopes).find((k) => c.scopes[k] === r);
  return s
    ? `scope ${s}'s own CI recipient (recipients.ciScopes.${s})`
    : `a recipient trellis.yaml does not name (${short(r)})`;
}

/**
 * Refuses (exit 3) an identity handed to trellis-ci (`as`: the CI identity, the break-glass identity) that opens the
 * root key: it has no place there, whatever it was called when it was handed over.
 */
export async function refuseRootOpeners(mesh: Mesh, ids: string[], as: string, where: string): Promise<void> {
  if (mesh.rootKeyAge !== undefined && (await tryDecrypt(ids, mesh.rootKeyAge)).ok) {
    throw new TrellisError('custody-root-identity-in-ci', `the identity given as ${as} opens the root key`, {
      file: paths.rootKey,
      hint: `take it out of ${where} now and treat the root identity as exposed: plan a root rotation`,
    });
  }
}

/**
 * Refuses (exit 3) CI identities that open an intermediate key of a scope
 * outside `asked`, where separation applies: the other scope has its own
 * recipient, or one asked for has. "Opens" is decided by the identity's
 * recipient against the confirmed ones; only an identity that is no scope's
 * own (the shared one, or one trellis.yaml does not name) is tried on the key
 * files, since a key not yet rekeyed to its scope's recipient still opens
 * with it. Nothing is written: the caller refuses before any commit.
 */
export async function assertIdentityScoped(mesh: Mesh, ids: string[], asked: string[]): Promise<void> {
  const c = confirmedCiCustody(mesh);
  if (!Object.keys(c.scopes).length) return; // no scope is separated: one shared identity is the design
  const mine = new Set(asked);
  const strict = asked.some((s) => s in c.scopes);
  // Only scopes with a key to open: a scope pending its ceremony holds nothing.
  const others = [...mesh.material.keys()]
    .filter((s) => !mine.has(s) && (strict || s in c.scopes) && ciKeyFiles(mesh, s).length)
    .sort();
  if (!others.length) return;
  const held = await Promise.all(ids.map(async (id) => ({ id, recipient: await recipientOf(id) })));
  const scoped = new Set(Object.values(c.scopes));
  const unscoped = held.filter((h) => !scoped.has(h.recipient)).map((h) => h.id);
  const opened: { scope: string; byTrial: boolean }[] = [];
  for (const s of others) {
    if (held.some((h) => h.recipient === ciRecipientOf(c, s))) {
      opened.push({ scope: s, byTrial: false });
      continue;
    }
    for (const k of unscoped.length ? ciKeyFiles(mesh, s) : []) {
      if ((await tryDecrypt(unscoped, k.ct)).ok) {
        opened.push({ scope: s, byTrial: true });
        break;
      }
    }
  }
  if (!opened.length) return;
  const list = opened.map((o) => o.scope).join(', ');
  const stale = opened.filter((o) => o.byTrial && o.scope in c.scopes).map((o) => o.scope);
  // The identity is described by its recipients (and what they are), never shown.
  const who = [...new Set(held.map((h) => whose(c, h.recipient)))].join(' and ');
  throw new TrellisError(
    'custody-identity-too-broad',
    `the CI identity given (${who}) also opens the intermediate key of ${list}, which this run was not asked ` +
      `to work on (${asked.join(', ')})`,
    {
      file: paths.config,
      field: 'recipients.ciScopes',
      hint: stale.length
        ? `${stale.join(', ')} ${stale.length === 1 ? 'has' : 'have'} its own confirmed recipient but ` +
          `${stale.length === 1 ? 'its key is' : 'their keys are'} still on the identity given: run trellis-ci ` +
          `rekey (with that identity) to move ${stale.length === 1 ? 'it' : 'them'}, then give each job its ` +
          `scope's identity only`
        : `give this job only the identity of ${asked.join(', ')} (the renew workflow passes ` +
          `TRELLIS_CI_IDENTITY_<SCOPE>, docs/sharding.md); a runner must not hold another scope's identity`,
    },
  );
}

/**
 * Without a secret: each scope's CI recipient in trellis.yaml is the
 * confirmed one and names a declared scope, and each key file's stanza is of
 * the kind (classic or post-quantum) its recipient is. Which X25519 recipient
 * a stanza is for cannot be read: verify with the CI identity proves that.
 */
export function ciScopeFindings(mesh: Mesh): Finding[] {
  const out: Finding[] = [];
  const c = confirmedCiCustody(mesh);
  for (const { text: line } of unconfirmedCiRecipients(mesh)) {
    out.push({
      level: 'warning',
      check: 'custody',
      file: paths.config,
      message:
        `${line} is not confirmed by a custodian: ceremonies refuse it and trellis-ci keeps to the confirmed one ` +
        `until trellis-root confirm --confirm-recipients records it`,
    });
  }
  const declared = new Set(mesh.scopes.map((s) => s.name));
  for (const s of Object.keys(mesh.config.recipients.ciScopes ?? {}).filter((x) => !declared.has(x))) {
    out.push({
      level: 'warning',
      check: 'custody',
      file: paths.config,
      message:
        `recipients.ciScopes.${s} names no declared scope (no scopes/${s}.yaml): a typo would leave the scope it ` +
        `meant on the shared identity`,
    });
  }
  for (const scope of [...mesh.material.keys()].sort()) {
    const want = ciRecipientOf(c, scope);
    for (const k of ciKeyFiles(mesh, scope)) {
      const types = ageStanzaTypes(k.ct);
      if (types?.length !== 1) continue; // verifyIntermediates reports it
      if ((types[0] === 'mlkem768x25519') !== isPq(want)) {
        out.push({
          level: 'error',
          check: 'custody',
          scope,
          file: k.file,
          message:
            `encrypted to a ${isPq(want) ? 'classic' : 'post-quantum'} recipient, but its CI recipient is ` +
            `${whose(c, want)}, ${isPq(want) ? 'post-quantum' : 'classic'}: run trellis-ci rekey`,
        });
      }
    }
  }
  return out;
}

/**
 * With CI identities, on a store where scopes are separated: each key file
 * the identities reach opens with the identity of the recipient its scope's
 * confirmed custody names, and with no other; a key encrypted to the shared
 * recipient when the scope has its own (or the reverse) is an error. A scope
 * whose identity is not given is out of reach and not reported.
 */
export async function ciScopeCustodyFindings(mesh: Mesh, ids: string[]): Promise<Finding[]> {
  const out: Finding[] = [];
  const c = confirmedCiCustody(mesh);
  const held = await Promise.all(ids.map(async (id) => ({ id, recipient: await recipientOf(id) })));
  let reached = 0;
  for (const scope of [...mesh.material.keys()].sort()) {
    const want = ciRecipientOf(c, scope);
    const own = held.filter((h) => h.recipient === want);
    for (const k of ciKeyFiles(mesh, scope)) {
      const r = own.length
        ? await tryDecrypt(
            own.map((h) => h.id),
            k.ct,
          )
        : undefined;
      if (r?.ok) {
        reached++;
        if (!keyMatchesCert(r.text, k.cert))
          out.push({
            level: 'error',
            check: 'custody',
            scope,
            file: k.file,
            message: 'the intermediate key does not match its certificate',
          });
        else
          out.push({
            level: 'ok',
            check: 'custody',
            scope,
            file: k.file,
            message: `intermediate key opens with the identity of ${whose(c, want)} and matches its certificate`,
          });
        continue;
      }
      let by: string | undefined;
      for (const h of held.filter((x) => x.recipient !== want)) {
        if ((await tryDecrypt([h.id], k.ct)).ok) {
          by = h.recipient;
          break;
        }
      }
      if (by !== undefined) {
        reached++;
        out.push({
          level: 'error',
          check: 'custody',
          scope,
          file: k.file,
          message:
            `encrypted to ${whose(c, by)}, but ${scope}'s confirmed CI recipient is ${whose(c, want)}: run ` +
            `trellis-ci rekey with the identity that opens it`,
        });
      } else if (own.length) {
        reached++;
        out.push({
          level: 'error',
          check: 'custody',
          scope,
          file: k.file,
          message:
            r?.ok === false && r.why === 'malformed'
              ? 'this intermediate key file is not readable age ciphertext'
              : `the identity of ${whose(c, want)} does not open this intermediate key`,
        });
      }
    }
  }
  if (!reached)
    out.push({
      level: 'error',
      check: 'custody',
      message:
        'the CI identity given opens no intermediate key and is the identity of no confirmed CI recipient ' +
        '(recipients.ci, recipients.ciScopes)',
    });
  return out;
}

/** The opened key of `scope`: a run that must sign for a scope whose key it did not open is refused (exit 3). */
export function requireScopeKey<K>(keys: ReadonlyMap<string, K>, scope: string): K {
  const key = keys.get(scope);
  if (!key)
    throw new TrellisError('custody-missing-identity', `no key opened for scope ${scope}`, {
      file: paths.intermediateKey(scope),
    });
  return key;
}

/**
 * The CI recipients as a custodian last confirmed them, or a refusal (exit 3): only a root-signed confirmation
 * counts, so a pull request that edits recipients.ci or recipients.ciScopes does not get the keys, and a store whose
 * root ledger confirms no CI recipient has nobody to hand them to (never falling back to trellis.yaml).
 */
export function requireConfirmedCiRecipients(mesh: Mesh): void {
  if (!lastConfirmedRecord(mesh, 'ciRecipient')) {
    throw new TrellisError('custody-not-confirmed', 'no custodian has confirmed a CI recipient in the root ledger', {
      file: 'trellis.yaml',
      field: 'recipients.ci',
      hint: 'the custodian runs trellis-root confirm --confirm-recipients on the offline workstation first',
    });
  }
  const unconfirmed = unconfirmedCiRecipients(mesh);
  if (unconfirmed.length) {
    const ci = unconfirmed.some((u) => u.field === 'recipients.ci');
    const confirmedCi = lastConfirmedRecord(mesh, 'ciRecipient')?.ciRecipient;
    throw new TrellisError(
      'custody-not-confirmed',
      ci
        ? `recipients.ci ${short(mesh.config.recipients.ci)} is not the CI recipient a custodian last ` +
            `confirmed${confirmedCi ? ` (${short(String(confirmedCi))})` : ''}`
        : `${unconfirmed.map((u) => u.text).join('; ')}: not what a custodian last confirmed`,
      {
        file: 'trellis.yaml',
        field: ci ? 'recipients.ci' : 'recipients.ciScopes',
        hint:
          'the custodian runs trellis-root confirm --confirm-recipients on the offline workstation first; if ' +
          'nobody asked for this change, restore trellis.yaml',
      },
    );
  }
}

/**
 * The CI recipient `what` goes to for `scope` (its own, recipients.ciScopes, else the shared one): refused (exit 3)
 * when trellis.yaml names another than the root ledger last recorded, since a pull request could have written it.
 */
export function requireConfirmedCiRecipientOf(mesh: Mesh, scope: string, what: string): string {
  const ci = ciRecipientIn(mesh.config, scope);
  const custody = lastConfirmedRecord(mesh, 'ciRecipient') ? confirmedCiCustody(mesh) : undefined;
  const confirmed = custody && ciRecipientOf(custody, scope);
  if (confirmed === undefined || confirmed === ci) return ci;
  const field =
    scope in (mesh.config.recipients.ciScopes ?? {}) || scope in custody!.scopes
      ? `recipients.ciScopes.${scope}`
      : 'recipients.ci';
  throw new TrellisError(
    'custody-recipients',
    `${field === 'recipients.ci' ? 'recipients.ci' : `the CI recipient of ${scope}`} changed since the root ` +
      `ledger last recorded it (${String(confirmed)} → ${ci}): ${what} would be encrypted to it`,
    {
      file: 'trellis.yaml',
      field,
      hint: 'restore trellis.yaml; a changed CI recipient is confirmed at a ceremony first',
    },
  );
}

/**
 * What a ceremony that mints standby keys records of recipients.breakglass: nothing when the root ledger already
 * holds it; the recipient when the custodian confirms it now (`confirmed`); else a refusal (exit 3), since the
 * standby keys would be encrypted to a recipient a pull request could have written.
 */
export function breakglassToRecord(mesh: Mesh, confirmed: boolean): Record<string, unknown> {
  const current = mesh.config.recipients.breakglass;
  if (!current) {
    throw new TrellisError(
      'bad-config',
      'no break-glass recipient: a standby key needs a reader who is neither the custodian nor CI',
      {
        file: 'trellis.yaml',
        field: 'recipients.breakglass',
        hint:
          "add the on-call security team's age recipient as recipients.breakglass, then rerun with " +
          '--confirm-recipients',
      },
    );
  }
  const recorded = lastConfirmedRecord(mesh, 'breakglassRecipient')?.breakglassRecipient;
  if (recorded === current) return {};
  if (!confirmed) {
    const change =
      recorded === undefined
        ? 'has never been confirmed'
        : `changed since the root ledger last recorded it (${String(recorded)} → ${current})`;
    throw new TrellisError(
      'custody-recipients',
      `recipients.breakglass ${change}: the standby key would be encrypted to it`,
      {
        file: 'trellis.yaml',
        field: 'recipients.breakglass',
        hint:
          'check it with the on-call security team and rerun with --confirm-recipients (recorded in the root ' +
          'ledger); otherwise restore trellis.yaml',
      },
    );
  }
  return { breakglassRecipient: current };
}

/**
 * Keys are encrypted to the recipients in trellis.yaml, a file a pull request
 * can change. Every ceremony compares them with the last ones the root ledger
 * recorded, and refuses a change the custodian has not confirmed. Returns what
 * to record (nothing when unchanged).
 */
export function recipientsToRecord(mesh: Mesh, confirmed: boolean): Record<string, unknown> {
  const current = {
    ciRecipient: mesh.config.recipients.ci,
    offlineRecipients: mesh.config.recipients.offline,
    ...ciScopesRecord(mesh.config),
  };
  // Only a root-signed entry confirms (or, on a ledger written before ledgers were signed, its legacy prefix): a pull
  // request can append anything else.
  const recorded = lastConfirmedRecord(mesh, 'ciRecipient');
  if (!recorded) return current;
  const scopes = unconfirmedCiRecipients(mesh)
    .filter((u) => u.field !== 'recipients.ci')
    .map((u) => u.text);
  const same =
    recorded.ciRecipient === current.ciRecipient &&
    JSON.stringify(recorded.offlineRecipients) === JSON.stringify(current.offlineRecipients) &&
    !scopes.length;
  if (same) return {};
  if (!confirmed) {
    const what =
      recorded.ciRecipient !== current.ciRecipient
        ? `recipients.ci ${String(recorded.ciRecipient)} → ${current.ciRecipient}`
        : scopes.length
          ? scopes.join('; ')
          : 'recipients.offline';
    throw new TrellisError(
      'custody-recipients',
      `changed since the root ledger last recorded it (${what}): new keys would be encrypted to it`,
      {
        file: 'trellis.yaml',
        field: 'recipients',
        hint:
          'if you rotated that identity on purpose, rerun with --confirm-recipients (recorded in the ledger); ' +
          'otherwise restore trellis.yaml: a pull request must not redirect keys',
      },
    );
  }
  return current;
}
