/** Why an operation was refused or failed. Tests assert the reason, never the message. */
export type Reason =
  // exit 2: usage or bad input
  | 'usage'
  | 'bad-config'
  | 'bad-scope'
  | 'unknown-scope'
  | 'unknown-service'
  | 'bad-recipient'
  | 'bad-identity'
  | 'no-store'
  | 'store-exists'
  | 'bad-time'
  | 'bad-release'
  | 'bad-host-state'
  | 'ownership-collision'
  // exit 3: custody or posture
  | 'custody-root-identity-in-ci'
  | 'custody-ci-posture'
  | 'custody-ci-identity-on-root'
  | 'custody-online'
  | 'custody-missing-identity'
  | 'custody-wrong-identity'
  | 'custody-recipients'
  | 'custody-breakglass-misplaced'
  | 'release-refused'
  | 'custody-out-dir'
  | 'custody-not-allowed'
  | 'custody-allow-list-unconfirmed'
  | 'custody-policy-unconfirmed'
  | 'custody-clock-behind'
  | 'custody-identity-in-drill'
  | 'custody-identity-in-probe'
  | 'custody-not-confirmed'
  | 'custody-token'
  | 'custody-identity-too-broad'
  // exit 4: concurrency
  | 'store-locked'
  | 'store-changed'
  // exit 1: the operation ran and failed
  | 'profile-violation'
  | 'outlives-issuer'
  | 'issuer-expiring'
  | 'name-outside-constraints'
  | 'not-yet-minted'
  | 'already-minted'
  | 'wrong-phase'
  | 'key-mismatch'
  | 'corrupt-store'
  | 'verification-failed'
  | 'peer-failed'
  | 'output-failed'
  | 'shard-outside-scope';

/**
 * Every reason: its exit code, and what happened and what to do, in general (a throw site's own message and hint say
 * it for the case). docs/errors.md is this table, row for row (tests/errors-table.test.ts).
 */
export const REASONS: Readonly<Record<Reason, { exit: 1 | 2 | 3 | 4; todo: string }>> = {
  usage: { exit: 2, todo: "a flag or argument is wrong: the command's `--help` lists what it takes" },
  'bad-config': { exit: 2, todo: '`trellis.yaml` does not parse or a field is invalid: fix the named field' },
  'bad-scope': {
    exit: 2,
    todo: 'a scope file does not parse or a field is invalid: fix the named field in the pull request',
  },
  'unknown-scope': { exit: 2, todo: 'no scope of that name is declared: check `scopes/`' },
  'unknown-service': { exit: 2, todo: 'no service of that name in the scope: check the scope file' },
  'bad-recipient': { exit: 2, todo: 'not a valid age recipient: copy it again (`age-keygen -y`)' },
  'bad-identity': {
    exit: 2,
    todo: 'an identity (file or variable) is not an age identity, or is unreadable: check the variable named',
  },
  'no-store': { exit: 2, todo: 'no `trellis.yaml` here or above: pass `--store` or set `TRELLIS_STORE`' },
  'store-exists': { exit: 2, todo: '`init` into an existing store: choose an empty directory' },
  'bad-time': {
    exit: 2,
    todo: 'a `--now` or a date that does not parse, or lies where it may not: write RFC 3339 with an offset',
  },
  'bad-release': { exit: 2, todo: 'a sealed release is damaged or not one: copy it from CI again' },
  'bad-host-state': { exit: 2, todo: "the agent's state file is damaged: restore it, or reinstall the host" },
  'ownership-collision': {
    exit: 2,
    todo:
      'two services claim one DNS name, SPIFFE ID, directory or Kubernetes object: the others were served; fix ' +
      'the pull request that made the collision',
  },
  'custody-root-identity-in-ci': {
    exit: 3,
    todo: "the offline identity is visible to CI: remove it from CI's secrets at once, and consider it exposed",
  },
  'custody-ci-posture': {
    exit: 3,
    todo: '`trellis-ci` runs outside CI (`CI` unset), or a command needs CI: run it in CI',
  },
  'custody-ci-identity-on-root': { exit: 3, todo: 'the CI identity is set on the offline workstation: unset it' },
  'custody-online': {
    exit: 3,
    todo: '`trellis-root` on a machine with a network up: disconnect, or `--allow-online` (recorded)',
  },
  'custody-missing-identity': {
    exit: 3,
    todo: 'the command needs an identity that is not given: set the variable it names',
  },
  'custody-wrong-identity': {
    exit: 3,
    todo: 'the identity given does not open this key or release: use the one whose recipient `trellis.yaml` lists',
  },
  'custody-recipients': {
    exit: 3,
    todo:
      'recipients in `trellis.yaml` changed since the custodian recorded them, or mix kinds: confirm ' +
      '(`--confirm-recipients`) or restore',
  },
  'release-refused': {
    exit: 3,
    todo:
      'a host refused a release: not signed under its pinned roots, revoked, expired, dated ahead, or a replay; ' +
      'see the message',
  },
  'custody-out-dir': {
    exit: 3,
    todo:
      "plaintext keys would be written where they must not be (a link, another user's directory, the tracked " +
      'tree): choose another path',
  },
  'custody-not-allowed': {
    exit: 3,
    todo:
      'a scope file selects what the deploy allow-list does not hold: select an allowed entry, or the custodian ' +
      'adds and confirms one',
  },
  'custody-allow-list-unconfirmed': {
    exit: 3,
    todo: 'the deploy allow-list changed without the custodian: `trellis-root confirm`, or revert',
  },
  'custody-policy-unconfirmed': {
    exit: 3,
    todo: '`mesh`, `trustDomain` or `defaults` changed without the custodian: `trellis-root confirm`, or revert',
  },
  'custody-clock-behind': { exit: 3, todo: 'this clock (or `--now`) is behind the root ledger: fix the clock' },
  'custody-identity-in-drill': { exit: 3, todo: '`trellis-drill` sees a real identity: run it where none is set' },
  'custody-identity-in-probe': {
    exit: 3,
    todo: '`trellis-ci probe handshake` connects out, so it holds no identity: run it in a job without one',
  },
  'custody-not-confirmed': {
    exit: 3,
    todo: "a step needs a custodian's root-signed confirmation that is missing: see the message",
  },
  'custody-token': {
    exit: 3,
    todo: 'the PKCS#11 token or its PIN is missing or wrong: check the module, the token and `TRELLIS_PKCS11_PIN`',
  },
  'custody-identity-too-broad': {
    exit: 3,
    todo: "a CI identity that opens another separated scope's key: give each scope's job only its own identity",
  },
  'custody-breakglass-misplaced': { exit: 3, todo: 'the break-glass identity is somewhere it must not be: remove it' },
  'store-locked': {
    exit: 4,
    todo:
      'another trellis command holds the store: wait for it, ' +
      'or remove a lock its holder left (the message names it)',
  },
  'store-changed': { exit: 4, todo: 'the store changed under the command: rerun' },
  'profile-violation': {
    exit: 1,
    todo:
      'a certificate does not match its profile: restore it from git; if it was tampered with, treat the scope ' +
      'as compromised',
  },
  'outlives-issuer': {
    exit: 1,
    todo: 'a certificate would outlive its issuer: shorten the TTL, or rotate the issuer first',
  },
  'issuer-expiring': { exit: 1, todo: 'the issuer has too little life left: rotate it' },
  'name-outside-constraints': {
    exit: 1,
    todo: "a name lies outside the scope's name constraints: use a name under the scope's domain",
  },
  'not-yet-minted': {
    exit: 1,
    todo: 'the scope has no intermediate yet: the custodian runs `trellis-root intermediate`',
  },
  'already-minted': { exit: 1, todo: 'the scope already has an intermediate: rotate or recover it instead' },
  'wrong-phase': {
    exit: 1,
    todo: 'the rotation is not in the phase this step needs: `trellis-ci status` shows where it is',
  },
  'key-mismatch': {
    exit: 1,
    todo: 'a key does not match its certificate: restore both from git; if tampered with, recover the scope',
  },
  'corrupt-store': {
    exit: 1,
    todo: 'a store file is damaged or missing: restore it from git history (the message names it)',
  },
  'verification-failed': {
    exit: 1,
    todo: 'a check of the store failed: run `trellis-ci verify` and follow its findings',
  },
  'peer-failed': {
    exit: 1,
    todo: 'a peer (ssh, kubectl, a reload, a TLS handshake) failed: its own error is in the message',
  },
  'output-failed': { exit: 1, todo: 'an output could not be written whole: free space or fix the path, and rerun' },
  'shard-outside-scope': {
    exit: 1,
    todo: "a shard's output touches another scope: rerun the shard with its own scope",
  },
};

export interface ErrorPlace {
  /** File at fault, relative to the store when inside it. */
  file?: string;
  /** Dotted path of the field at fault inside that file. */
  field?: string;
}

/** The one error type of trellis: a reason, what went wrong, where, and what to do. */
export class TrellisError extends Error {
  readonly reason: Reason;
  readonly place: ErrorPlace;
  readonly hint: string | undefined;

  constructor(reason: Reason, detail: string, opts: ErrorPlace & { hint?: string } = {}) {
    const where = [opts.file, opts.field].filter(Boolean).join(': ');
    super(`${where ? `${where}: ` : ''}${detail}${opts.hint ? `\n  → ${opts.hint}` : ''}`);
    this.name = 'TrellisError';
    this.reason = reason;
    this.place = { file: opts.file, field: opts.field };
    this.hint = opts.hint;
  }

  get exitCode(): 1 | 2 | 3 | 4 {
    return REASONS[this.reason].exit;
  }
}

export function isTrellisError(e: unknown): e is TrellisError {
  return e instanceof TrellisError;
}

/** What to do: the throw site's own hint for its case, else the table's for the reason; every error carries one. */
export function whatToDo(e: TrellisError): string {
  return e.hint ?? REASONS[e.reason].todo;
}

/**
 * The error line, as Go's `CertificateInvalidError.Error()` builds its text: the reason selects the sentence (the
 * table's `todo`), the throw site supplies the case (file, field, detail, and its hint when it has one).
 */
export function errorLine(tool: string, e: TrellisError): string {
  return `${tool}: ${e.reason}: ${e.message}${e.hint ? '' : `\n  → ${REASONS[e.reason].todo}`}\n`;
}
