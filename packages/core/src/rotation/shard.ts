/**
 * CI sharded by scope: `renew --scope S --shard` jobs run in parallel on
 * separate runners, each committing only files that are a function of scope
 * S alone, so their branches merge with git without a conflict. What spans
 * scopes (a trust bundle holds other scopes' intermediates) is written
 * afterwards by `trellis-ci compose` on the merged store: once for all
 * scopes, or as a matrix of `compose --scope S` jobs, each writing only
 * bundles/S/ (its bundles and its ledger entry, signed with S's key alone),
 * so those merge without a conflict too. A scope's composition reads only
 * the merged intermediates, never another scope's bundles: the order of the
 * compose jobs does not matter.
 */
import { TrellisError } from '../model/errors.js';
import { requireScopeKey } from '../custody/scope-custody.js';
import { appendToLedger } from '../ledger/ledger.js';
import { ledgerSigner } from '../ledger/ledger-signature.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import { fingerprint } from '../x509/certificates.js';
import type { SigningIntermediate } from '../x509/leaf.js';
import { staleBundleFiles } from '../procedures/ci-procedures.js';
import { assertSignsAt } from '../x509/profiles.js';
import { mergeWrites, type FileWrite } from '../model/file-write.js';
import { iso } from '../model/time.js';

/** Files of a scope that compose writes, never its shard: their content depends on other scopes. */
function spanningFiles(scope: string): string[] {
  return [paths.trust(scope), paths.trustOpenssl(scope)];
}

/** Whether a shard of `scope` may write `file` (a store-relative path). */
export function shardOwns(scope: string, file: string): boolean {
  return (
    file.startsWith(`bundles/${scope}/`) &&
    !file.slice(`bundles/${scope}/`.length).split('/').includes('..') &&
    !spanningFiles(scope).includes(file) &&
    // The one-anchor-per-file directories hold the same cross-scope composition as the bundles.
    ![paths.capath(scope), paths.anchors(scope)].some((d) => file.startsWith(`${d}/`))
  );
}

/** Refuses a shard's writes before anything is committed if one of them belongs to another scope or to compose. */
export function assertShardWrites(scope: string, writes: FileWrite[]): void {
  const stray = writes.find((w) => !shardOwns(scope, w.path));
  if (stray) {
    throw new TrellisError(
      'shard-outside-scope',
      `a renew sharded to scope ${scope} would write ${stray.path}, which is not the scope's own file: nothing ` +
        `was written`,
      {
        file: stray.path,
        hint:
          `shards write only bundles/${scope}/ (its trust bundles excepted); run trellis-ci compose after ` +
          `merging the shards`,
      },
    );
  }
}

/**
 * What compose would write: the bundle files of `scopes` (every scope when unset) whose composition differs from the
 * store.
 */
export function composePlan(
  mesh: Mesh,
  current: (path: string) => string | undefined,
  scopes: string[] = mesh.scopes.map((s) => s.name),
): FileWrite[] {
  return staleBundleFiles(mesh, scopes, current);
}

/** The scopes a compose touches, in the order of the mesh. */
export function composeTouched(stale: FileWrite[]): string[] {
  return [...new Set(stale.map((f) => f.path.split('/')[1]!))];
}

/** `trellis-ci compose`: the recomposed bundles, and one signed ledger entry for each scope whose bundles changed. */
export function composeScopes(i: {
  mesh: Mesh;
  stale: FileWrite[];
  signers: Map<string, SigningIntermediate>;
  now: Date;
  actor: string;
}): FileWrite[] {
  const writes: FileWrite[] = [...i.stale];
  for (const scope of composeTouched(i.stale)) {
    const signer = requireScopeKey(i.signers, scope);
    // --now must lie inside the validity of the key that signs the entry.
    assertSignsAt(
      {
        label: `${scope} intermediate ${fingerprint(signer.cert)}`,
        notBefore: signer.cert.notBefore,
        notAfter: signer.cert.notAfter,
        file: paths.intermediate(scope),
        tier: 'intermediate',
      },
      i.now,
    );
    const files = i.stale
      .filter((f) => f.path.startsWith(`bundles/${scope}/`))
      .map((f) => f.path.slice(`bundles/${scope}/`.length));
    writes.push({
      path: paths.ledger(scope),
      content: appendToLedger(
        i.mesh.material.get(scope)!.ledger,
        { op: 'compose', at: iso(i.now), actor: i.actor, details: { bundles: 'recomposed', files } },
        paths.ledger(scope),
        ledgerSigner(signer),
      ).text,
    });
  }
  return mergeWrites(writes);
}
