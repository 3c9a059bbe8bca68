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

/** Every reason's exit code; docs/errors.md lists the same (tests/errors-table.test.ts). */
export const REASON_EXIT_CODES: Readonly<Record<Reason, 1 | 2 | 3 | 4>> = {
  usage: 2,
  'bad-config': 2,
  'bad-scope': 2,
  'unknown-scope': 2,
  'unknown-service': 2,
  'bad-recipient': 2,
  'bad-identity': 2,
  'no-store': 2,
  'store-exists': 2,
  'bad-time': 2,
  'bad-release': 2,
  'bad-host-state': 2,
  'ownership-collision': 2,
  'custody-root-identity-in-ci': 3,
  'custody-ci-posture': 3,
  'custody-ci-identity-on-root': 3,
  'custody-online': 3,
  'custody-missing-identity': 3,
  'custody-wrong-identity': 3,
  'custody-recipients': 3,
  'release-refused': 3,
  'custody-out-dir': 3,
  'custody-not-allowed': 3,
  'custody-allow-list-unconfirmed': 3,
  'custody-policy-unconfirmed': 3,
  'custody-clock-behind': 3,
  'custody-identity-in-drill': 3,
  'custody-not-confirmed': 3,
  'custody-token': 3,
  'custody-identity-too-broad': 3,
  'custody-breakglass-misplaced': 3,
  'store-locked': 4,
  'store-changed': 4,
  'profile-violation': 1,
  'outlives-issuer': 1,
  'issuer-expiring': 1,
  'name-outside-constraints': 1,
  'not-yet-minted': 1,
  'already-minted': 1,
  'wrong-phase': 1,
  'key-mismatch': 1,
  'corrupt-store': 1,
  'verification-failed': 1,
  'peer-failed': 1,
  'output-failed': 1,
  'shard-outside-scope': 1,
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
    return REASON_EXIT_CODES[this.reason];
  }
}

export function isTrellisError(e: unknown): e is TrellisError {
  return e instanceof TrellisError;
}
