/**
 * Custody, enforced rather than documented: which posture may hold which
 * identity, where identities come from, and age encryption to exactly the
 * recipients a tier allows. Every custody rule of the contract lives here.
 */
import {
  Decrypter,
  Encrypter,
  armor,
  generateHybridIdentity,
  generateX25519Identity,
  identityToRecipient,
} from 'age-encryption';
import { TrellisError } from '../model/errors.js';
import { escapeUnsafe } from '../model/untrusted.js';

export type IdentityKind = 'root' | 'ci' | 'agent' | 'breakglass';
export type Env = Readonly<Record<string, string | undefined>>;

const IDENTITY_VARS: Record<IdentityKind, [string, string]> = {
  root: ['TRELLIS_ROOT_IDENTITY', 'TRELLIS_ROOT_IDENTITY_FILE'],
  ci: ['TRELLIS_CI_IDENTITY', 'TRELLIS_CI_IDENTITY_FILE'],
  agent: ['TRELLIS_AGENT_IDENTITY', 'TRELLIS_AGENT_IDENTITY_FILE'],
  breakglass: ['TRELLIS_BREAKGLASS_IDENTITY', 'TRELLIS_BREAKGLASS_IDENTITY_FILE'],
};

const WHO: Record<IdentityKind, string> = {
  root: 'offline root',
  ci: 'CI',
  agent: "host's agent",
  breakglass: 'break-glass',
};

const isSet = (env: Env, k: string) => (env[k] ?? '') !== '';

const SECRET = /AGE-SECRET-KEY|PRIVATE KEY/i;

/**
 * A value from input as an error message may quote it: never a secret (a
 * pasted identity is described, not echoed, not even in part) and never more
 * than a line.
 */
export function quoteInput(v: unknown): string {
  const text = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  if (SECRET.test(text)) return '(a secret key, not shown: treat it as exposed)';
  return escapeUnsafe(JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text));
}

/** A message from a library that may quote its input (a parser's error): one line, cut short, and never a secret. */
export function withoutSecrets(message: string, max = 200): string {
  const line = message.split('\n')[0]!;
  if (SECRET.test(message)) return 'the offending text is a secret key, not shown: treat it as exposed';
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/**
 * A peer's own output (a server's error on reload), shown to the operator: one line, bounded, escaped, never a secret.
 */
export function quotePeerOutput(text: string, max = 600): string {
  if (SECRET.test(text)) return '(it printed a secret key, not shown: treat it as exposed)';
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' | ');
  return escapeUnsafe(line.length > max ? `${line.slice(0, max)}…` : line);
}

/** The names of the set environment variables that carry an identity of `kind`. */
function identityVarsSet(env: Env, kind: IdentityKind): string[] {
  const prefix = IDENTITY_VARS[kind][0];
  return Object.keys(env)
    .filter((k) => k.startsWith(prefix) && isSet(env, k))
    .sort();
}

/**
 * The environment of every process a trellis command spawns (reload, ssh,
 * kubectl): ours without any TRELLIS_ variable, identities above all, so no
 * child inherits one. (The agent's installer applies the same rule.)
 */
export function childEnv(env: Env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => !e[0].startsWith('TRELLIS_') && e[1] !== undefined),
  );
}

/** `trellis-agent` runs on service hosts: neither the root nor the CI identity belongs there. */
export function assertAgentPosture(env: Env): void {
  const leaked = [
    ...identityVarsSet(env, 'root'),
    ...identityVarsSet(env, 'ci'),
    ...identityVarsSet(env, 'breakglass'),
  ];
  if (leaked.length) {
    throw new TrellisError('custody-root-identity-in-ci', `${leaked.join(', ')} is set on a service host`, {
      hint: 'hosts hold only their own agent identity: remove it, and treat that identity as exposed',
    });
  }
}

/** `trellis-ci` refuses to run with the root identity anywhere in its environment. */
export function assertCiPosture(env: Env): void {
  const leaked = identityVarsSet(env, 'root');
  if (leaked.length) {
    throw new TrellisError(
      'custody-root-identity-in-ci',
      `${leaked.join(', ')} is set: the root identity must never reach CI`,
      {
        hint:
          'remove it from this environment and its secrets store, and treat the root identity as exposed: plan a ' +
          'root rotation',
      },
    );
  }
}

/**
 * `trellis-drill` rehearses on throwaway keys only: with any real identity in
 * its environment (root, CI, a host's agent, break-glass) it refuses, so a
 * rehearsal can never sign with, or leak, the real thing.
 */
export function assertDrillPosture(env: Env): void {
  const real = identitiesSet(env);
  if (real.length) {
    throw new TrellisError(
      'custody-identity-in-drill',
      `${real.join(', ')} is set: a drill runs on throwaway identities only`,
      {
        hint:
          'run the drill in a shell without any real trellis identity (unset it); the drill mints and discards ' +
          'its own',
      },
    );
  }
}

/** Every trellis identity variable set in `env`: root, CI (per scope too), a host's agent, break-glass. */
const identitiesSet = (env: Env) =>
  Object.keys(env)
    .filter((k) => /^TRELLIS_[A-Z_0-9]*IDENTITY/.test(k) && isSet(env, k))
    .sort();

/**
 * The probe's handshake step connects to endpoints: it holds no identity, so no intermediate key is ever opened in a
 * process that talks to the network (its probe keys live minutes and sign nothing but its evidence).
 */
export function assertProbePosture(env: Env): void {
  const real = identitiesSet(env);
  if (real.length)
    throw new TrellisError('custody-identity-in-probe', `${real.join(', ')} is set where the probe connects out`, {
      hint: 'run trellis-ci probe handshake in a job without any trellis identity; the certify step is the one with it',
    });
}

/**
 * The break-glass identity opens only standby keys and belongs only to
 * `trellis-ci activate-standby`: anywhere else (renew, revoke, a ceremony) it
 * is refused, so the on-call team's secret never rides along with routine work.
 */
export function assertNoBreakglass(env: Env, where: string): void {
  const set = identityVarsSet(env, 'breakglass');
  if (set.length) {
    throw new TrellisError(
      'custody-breakglass-misplaced',
      `${set.join(', ')} is set: the break-glass identity has no business in ${where}`,
      {
        hint: 'unset it; it is for trellis-ci activate-standby only, held by the on-call security team',
      },
    );
  }
}

/**
 * `trellis-ci activate-standby`: the break-glass identity, and not the CI one beside it (one party acts, the standby
 * key stays its own).
 */
export function assertBreakglassPosture(env: Env): void {
  const ci = identityVarsSet(env, 'ci');
  if (ci.length) {
    throw new TrellisError(
      'custody-breakglass-misplaced',
      `${ci.join(', ')} is set: activate-standby runs with the break-glass identity alone`,
      {
        hint:
          'unset the CI identity; activation re-encrypts the standby key to the CI recipient, so CI never needs ' +
          'to be present',
      },
    );
  }
}

export interface RootPostureInputs {
  env: Env;
  /** Names of network interfaces other than loopback that are up with an address. */
  onlineInterfaces: string[];
  /** `--allow-online` or TRELLIS_ALLOW_ONLINE=1. Overrides only the network check. */
  allowOnline: boolean;
}

/**
 * `trellis-root` refuses to run in CI, next to the CI identity, or on a
 * networked machine unless the operator explicitly allows it.
 */
export function assertRootPosture({ env, onlineInterfaces, allowOnline }: RootPostureInputs): void {
  if (isSet(env, 'CI')) {
    throw new TrellisError(
      'custody-ci-posture',
      'CI is set: trellis-root runs on the air-gapped workstation, never in CI',
      {
        hint: 'run it on the offline workstation; CI uses trellis-ci',
      },
    );
  }
  const ciVars = identityVarsSet(env, 'ci');
  if (ciVars.length) {
    throw new TrellisError(
      'custody-ci-identity-on-root',
      `${ciVars.join(', ')} is set: the CI identity has no business on the root workstation`,
      {
        hint: 'unset it; trellis-root only needs the CI recipient, which trellis.yaml holds',
      },
    );
  }
  assertNoBreakglass(env, 'a root ceremony');
  if (onlineInterfaces.length && !allowOnline) {
    throw new TrellisError('custody-online', `network interface(s) up: ${onlineInterfaces.join(', ')}`, {
      hint:
        'disconnect the workstation, or pass --allow-online (TRELLIS_ALLOW_ONLINE=1) if you accept the risk; the ' +
        'ceremony record will note it',
    });
  }
}

/**
 * The root workstation's clock (or `--now`) must not be earlier than the
 * newest of `entries`: a clock set back is how an expired root, intermediate
 * or CRL gets used again. The caller passes only entries a held root signed
 * (rootClockBound). `at` of an entry is RFC 3339.
 */
export function assertClockNotBehindLedger(now: Date, entries: { at: string }[], file: string): void {
  let newest: Date | undefined;
  for (const e of entries) {
    const at = new Date(e.at);
    if (!Number.isNaN(at.getTime()) && (!newest || at > newest)) newest = at;
  }
  if (newest && now < newest) {
    throw new TrellisError(
      'custody-clock-behind',
      `the time ${now.toISOString()} is earlier than the newest root ledger entry (${newest.toISOString()})`,
      {
        file,
        hint:
          'set the workstation clock right (or give a --now after that entry); a clock set back would let ' +
          'expired roots and CRLs be used again',
      },
    );
  }
}

/** Age identities from `TRELLIS_<KIND>_IDENTITY` or the file named by `..._FILE`; comments and blanks are skipped. */
export function readIdentities(kind: IdentityKind, env: Env, readFile: (path: string) => string): string[] | undefined {
  const [direct, fileVar] = IDENTITY_VARS[kind];
  let text: string | undefined;
  let source = direct;
  if (isSet(env, direct)) text = env[direct];
  else if (isSet(env, fileVar)) {
    source = `${fileVar} (${env[fileVar]})`;
    try {
      text = readFile(env[fileVar]!);
    } catch (e) {
      throw new TrellisError('bad-identity', `cannot read the identity file: ${(e as Error).message}`, {
        file: env[fileVar],
        hint: `point ${fileVar} at an age identity file`,
      });
    }
  }
  if (text === undefined) return undefined;
  const ids = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const bad = ids.findIndex((l) => !/^AGE-SECRET-KEY-(PQ-)?1[0-9A-Z]+$/.test(l) || !identityParses(l));
  if (!ids.length || bad !== -1) {
    // Which line, never what it holds: a near-miss identity is still almost the whole secret.
    const which = ids.length
      ? ` (identity ${bad + 1} of ${ids.length} is damaged: a character is wrong, missing or extra)`
      : '';
    throw new TrellisError(
      'bad-identity',
      `${source} does not hold age identities (AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1…)${which}`,
      { hint: 'use the file written by trellis-root init or age-keygen, copied whole' },
    );
  }
  return ids;
}

/**
 * What secret `text` holds, if any: a PEM private key (encrypted or not), an
 * age identity that age reads (its checksum included, so a document showing
 * the shape is none), a trellis identity share. Never the secret itself.
 */
export function secretIn(text: string): string | undefined {
  if (/-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/.test(text)) return 'a PEM private key';
  for (const m of text.matchAll(/AGE-SECRET-KEY-(?:PQ-)?1[0-9A-Z]{20,}/g))
    if (identityParses(m[0])) return 'an age identity';
  if (/^trellis-share: v1$/m.test(text) && /^data: [0-9a-f]+$/m.test(text)) return 'an identity share';
  return undefined;
}

/**
 * Whether age reads `identity` (its checksum included); the reason is not kept, since age quotes the identity in it.
 */
function identityParses(identity: string): boolean {
  try {
    new Decrypter().addIdentity(identity);
    return true;
  } catch {
    return false;
  }
}

export function requireIdentities(kind: IdentityKind, env: Env, readFile: (path: string) => string): string[] {
  const ids = readIdentities(kind, env, readFile);
  if (!ids) {
    const [direct, fileVar] = IDENTITY_VARS[kind];
    throw new TrellisError('custody-missing-identity', `this needs the ${WHO[kind]} identity`, {
      hint: `set ${fileVar} to its file (or ${direct})`,
    });
  }
  return ids;
}

export const isPq = (r: string): boolean => r.startsWith('age1pq1') || r.startsWith('age1tagpq1');

/** Recipients of one file: age1… strings, all classic or all post-quantum, never mixed. */
export function validateRecipients(recipients: string[], place: { file?: string; field?: string }): void {
  const bad = recipients.find((r) => !/^age1[0-9a-z]+$/.test(r));
  if (bad !== undefined)
    throw new TrellisError('bad-recipient', `${quoteInput(bad)} is not an age recipient`, {
      ...place,
      hint: 'an age recipient starts with age1 (age-keygen -y prints it)',
    });
  for (const r of recipients) {
    try {
      new Encrypter().addRecipient(r);
    } catch {
      throw new TrellisError('bad-recipient', `${quoteInput(r)} is not a valid age recipient`, {
        ...place,
        hint: 'copy it from age-keygen -y or from the file trellis-root init wrote',
      });
    }
  }
  if (new Set(recipients.map(isPq)).size > 1) {
    // a custody rule, not a typo: exit 3 like every other recipient-custody refusal
    throw new TrellisError('custody-recipients', 'mixes post-quantum (age1pq1…) and classic recipients', {
      ...place,
      hint: 'a classic recipient would undo the post-quantum protection of the file: use one kind',
    });
  }
}

/** The CI tier is one kind: a classic scope recipient would undo the post-quantum protection of the others. */
export function assertOneCiTier(scopeRecipient: string, ci: string, place: { file?: string; field?: string }): void {
  if (isPq(scopeRecipient) === isPq(ci)) return;
  throw new TrellisError(
    'custody-recipients',
    `is ${isPq(scopeRecipient) ? 'post-quantum' : 'classic'} but recipients.ci is ` +
      `${isPq(ci) ? 'post-quantum' : 'classic'}`,
    { ...place, hint: 'the CI tier is one kind: move every CI recipient together (trellis-ci rekey)' },
  );
}

/** The break-glass recipient is a third party: neither an offline nor the CI recipient. */
export function assertBreakglassRecipient(
  offline: string[],
  ci: string,
  breakglass: string,
  place: { file?: string; field?: string },
): void {
  if (offline.includes(breakglass) || ci === breakglass) {
    throw new TrellisError(
      'custody-recipients',
      `the break-glass recipient is also ${ci === breakglass ? 'the CI' : 'an offline'} recipient: standby ` +
        `keys would not be the on-call team's alone`,
      {
        ...place,
        hint:
          'give the on-call security team its own identity (age-keygen) and list its recipient as ' +
          'recipients.breakglass',
      },
    );
  }
}

/** The root key's readers and the intermediate keys' reader are different parties: one recipient must never be both. */
export function assertSeparateRecipients(
  offline: string[],
  ci: string,
  place: { file?: string; field?: string },
): void {
  if (offline.includes(ci)) {
    throw new TrellisError(
      'custody-recipients',
      'the CI recipient is also an offline recipient: CI could open the root key',
      {
        ...place,
        hint: 'give CI its own identity (trellis-root init --ci-identity-out) and keep the offline identities off CI',
      },
    );
  }
}

/** Encrypts to exactly `recipients`, ASCII-armored so the store diffs as text. */
export async function encryptTo(recipients: string[], plaintext: string): Promise<string> {
  validateRecipients(recipients, {});
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return armor.encode(await readWhole(await e.encrypt(streamOf(new TextEncoder().encode(plaintext)))));
}

/*
 * age reads its output through `Response`, which makes node load its whole fetch stack (about 30 ms of every
 * process that opens or seals a key); these two pass it streams and read them directly, with the same bytes.
 */
function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(bytes);
      c.close();
    },
  });
}

async function readWhole(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = s.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export type Decrypted = { ok: true; text: string } | { ok: false; why: 'no-match' | 'malformed' };

/** Decrypts; tells "none of these identities" apart from "this is not an age file". */
export async function tryDecrypt(identities: string[], armored: string): Promise<Decrypted> {
  const d = new Decrypter();
  identities.forEach((id, i) => {
    try {
      d.addIdentity(id);
    } catch {
      // age's message quotes the identity: say which one, never what it holds.
      throw new TrellisError(
        'bad-identity',
        `identity ${i + 1} of ${identities.length} could not be read (a character is wrong, missing or extra)`,
        { hint: 'use the identity file written by trellis-root init or age-keygen, copied whole' },
      );
    }
  });
  let ct: Uint8Array;
  try {
    ct = armor.decode(armored);
  } catch {
    return { ok: false, why: 'malformed' };
  }
  try {
    // TextDecoder's defaults are the UTF-8 decode `Response.text()` did: a BOM dropped, bad bytes replaced.
    return { ok: true, text: new TextDecoder().decode(await readWhole(await d.decrypt(streamOf(ct)))) };
  } catch (e) {
    return { ok: false, why: /no identity matched/i.test((e as Error).message) ? 'no-match' : 'malformed' };
  }
}

export async function decryptWith(
  identities: string[],
  armored: string,
  file: string,
  kind: IdentityKind,
): Promise<string> {
  const out = await tryDecrypt(identities, armored);
  if (out.ok) return out.text;
  if (out.why === 'malformed') {
    // A host has no git: a damaged release is bad input there (exit 2), and what it needs is the release again.
    if (kind === 'agent')
      throw new TrellisError('bad-release', 'not a readable age file (truncated, damaged or replaced)', {
        file,
        hint: 'copy the release from CI again (trellis-ci deploy --type sealed writes it)',
      });
    throw new TrellisError('corrupt-store', 'not a readable age file (damaged or replaced)', {
      file,
      hint: 'restore it from git history',
    });
  }
  throw new TrellisError(
    'custody-wrong-identity',
    `the ${WHO[kind]} identity given does not open this ${kind === 'agent' ? 'bundle' : 'key'}`,
    {
      file,
      hint: `check ${IDENTITY_VARS[kind][1]}: it must be the identity whose recipient trellis.yaml lists`,
    },
  );
}

/** How many recipient stanzas an age file's header carries; undefined when it is not an age file. Needs no secret. */
export function ageStanzaCount(armored: string): number | undefined {
  try {
    const header = Buffer.from(armor.decode(armored)).toString('latin1').split('\n---')[0]!;
    if (!header.startsWith('age-encryption.org/v1\n')) return undefined;
    return header.split('\n').filter((l) => l.startsWith('-> ')).length;
  } catch {
    return undefined;
  }
}

/**
 * The type of each recipient stanza of an age file's header (X25519, mlkem768x25519, …); undefined when it is not an
 * age file.
 */
export function ageStanzaTypes(armored: string): string[] | undefined {
  try {
    const header = Buffer.from(armor.decode(armored)).toString('latin1').split('\n---')[0]!;
    if (!header.startsWith('age-encryption.org/v1\n')) return undefined;
    return header
      .split('\n')
      .filter((l) => l.startsWith('-> '))
      .map((l) => l.split(' ')[1] ?? '');
  } catch {
    return undefined;
  }
}

/**
 * A new age identity: X25519, or with `pq` the ML-KEM-768 + X25519 hybrid (AGE-SECRET-KEY-PQ-1…, recipient age1pq1…).
 */
export async function newIdentity(pq = false): Promise<{ identity: string; recipient: string }> {
  const identity = await (pq ? generateHybridIdentity() : generateX25519Identity());
  return { identity, recipient: await identityToRecipient(identity) };
}

export async function recipientOf(identity: string): Promise<string> {
  return identityToRecipient(identity);
}

/**
 * A ceremony's typed-back confirmation: the custodian typed exactly the scopes it signs (any order), else nothing is
 * signed (exit 3).
 */
export function assertTypedBack(answer: string, scopes: string[]): void {
  const typed = answer
    .split(/[\s,]+/)
    .filter(Boolean)
    .sort();
  const want = [...scopes].sort();
  if (typed.join(' ') === want.join(' ')) return;
  throw new TrellisError(
    'custody-not-confirmed',
    `the names typed back (${typed.length ? typed.map(quoteInput).join(' ') : 'none'}) are not the scopes ` +
      `this ceremony signs (${want.join(' ')}): nothing was signed`,
    { hint: 'read the summary above and type exactly its scope names, or rerun with --yes once it has been reviewed' },
  );
}

/** With --pq every recipient given is post-quantum: a classic one beside it would leave one tier classic. */
export function assertPqRecipients(given: readonly string[], field: string): void {
  if (given.every(isPq)) return;
  throw new TrellisError('custody-recipients', 'with --pq every recipient must be post-quantum (age1pq1…)', {
    field,
    hint: 'give the recipient of an AGE-SECRET-KEY-PQ-1… identity, or let init generate one',
  });
}

/** The root key's token cannot be reached or used (exit 3): the key stays where it is, and nothing is signed. */
export function tokenRefusal(message: string, hint: string): TrellisError {
  return new TrellisError('custody-token', message, { file: 'bundles/root/root.key.uri', hint });
}
