import {
  TrellisError,
  assertIdentityScoped,
  assertLedgerCounts,
  assertNoBreakglass,
  decryptWith,
  fingerprint,
  caKeyFromPem,
  intermediateProblems,
  keyMatchesCert,
  paths,
  requireConfirmedPolicy,
  requireIdentities,
  inRole,
  liveIntermediates,
  type IntermediateRole,
  type Mesh,
  type SigningIntermediate,
  nodeCryptoSeam,
  type CryptoSeam,
  refuseRootOpeners,
} from '@trellis/core';
import { readBounded, READ_LIMITS } from '@trellis/core/store';

/**
 * The CI identity, for work on `scopes` (all of them when unset): refused if it
 * opens the root key, or the key of a separated scope the run was not asked
 * to work on (assertIdentityScoped, recipients.ciScopes).
 */
export async function ciIdentities(mesh: Mesh, scopes?: string[]): Promise<string[]> {
  // Routine CI work (renew, revoke, compose) never carries the on-call team's secret.
  assertNoBreakglass(process.env, 'routine CI work (it is for trellis-ci activate-standby only)');
  const ids = requireIdentities('ci', process.env, (p) => readBounded(p, READ_LIMITS.small, { followLink: true }));
  await refuseRootOpeners(mesh, ids, 'the CI identity', 'CI');
  if (scopes) await assertIdentityScoped(mesh, ids, scopes);
  return ids;
}

/**
 * Opens one of a scope's intermediate keys with the CI identity. Refuses an
 * intermediate that does not chain to a recorded root or has drifted from its
 * profile, and a key that does not match its certificate.
 */
export async function openIntermediate(
  mesh: Mesh,
  scope: string,
  ids: string[],
  which: IntermediateRole = 'active',
  seam: CryptoSeam = nodeCryptoSeam,
): Promise<SigningIntermediate> {
  const live = inRole(liveIntermediates(mesh, scope), which);
  if (!live)
    throw new TrellisError('not-yet-minted', `scope ${scope} has no ${which} intermediate`, {
      file: paths.intermediate(scope),
      hint: `trellis-root intermediate ${scope}`,
    });
  const { cert, keyAge: ct, file: certFile, keyFile: file } = live;
  const problems = await intermediateProblems(mesh, scope, cert);
  if (problems.length) {
    throw new TrellisError('verification-failed', problems.join('; '), {
      file: certFile,
      hint:
        'restore it from git and run trellis-ci verify; if it was tampered with, treat the scope as compromised ' +
        '(trellis-root recover)',
    });
  }
  assertLedgerCounts(mesh, scope);
  requireConfirmedPolicy(mesh);
  if (ct === undefined)
    throw new TrellisError('corrupt-store', 'the encrypted intermediate key is missing', {
      file,
      hint: 'restore it from git',
    });
  const pem = await decryptWith(ids, ct, file, 'ci');
  if (!keyMatchesCert(pem, cert)) {
    throw new TrellisError('key-mismatch', `the key does not match intermediate ${fingerprint(cert)}`, {
      file,
      hint: 'restore bundles/<scope>/ from git; if it was tampered with, run trellis-root recover',
    });
  }
  return { scope, ...(await caKeyFromPem('intermediate', cert, pem, seam)) };
}
