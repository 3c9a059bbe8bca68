import type { CommandModule } from 'yargs';
import {
  TrellisError,
  advanceScope,
  anchorsBy,
  appendToLedger,
  assertBreakglassPosture,
  assertLedgerCounts,
  certificatePem,
  decryptWith,
  effectWrites,
  encryptTo,
  fingerprint,
  caKeyFromPem,
  inRole,
  intermediateProblems,
  iso,
  keyMatchesCert,
  ledgerSigner,
  liveIntermediates,
  nodeCryptoSeam,
  paths,
  requireIdentities,
  scopeCrlWrite,
  scopeDef,
  serializeScopeState,
  signBurnStatement,
  trustBundleFiles,
  type FileWrite,
  type Mesh,
  refuseRootOpeners,
  requireConfirmedCiRecipientOf,
} from '@trellis/core';
import { loadMesh, readBounded, READ_LIMITS } from '@trellis/core/store';
import { actor, clock, withStore } from '@trellis/core/shell';

interface Args {
  store?: string;
  scope: string;
  reason?: string;
  now?: string;
}

/**
 * Break-glass: the scope's standby becomes its active intermediate, and every
 * key it replaces (the burned one, and a rotation's other keys) leaves every
 * bundle at once. No root is involved: the standby was signed at the last
 * ceremony. The next ceremony revokes the burned key in the root CRL.
 */
export const activateStandby: CommandModule<object, Args> = {
  command: 'activate-standby <scope>',
  describe:
    "Swap in a scope's standby intermediate after a compromise (needs the break-glass identity, not the CI one)",
  builder: (y) =>
    y
      .positional('scope', {
        type: 'string',
        demandOption: true,
        describe: 'the scope whose active intermediate is burned',
      })
      .option('reason', {
        type: 'string',
        default: 'keyCompromise',
        describe: 'why, recorded in the ledger and the burn statement',
      })
      .example(
        'TRELLIS_BREAKGLASS_IDENTITY_FILE=bg.txt $0 activate-standby us-east-1',
        'then commit, push, and let renew re-mint the leaves',
      ) as never,
  handler: async (a) => {
    assertBreakglassPosture(process.env);
    const ids = requireIdentities('breakglass', process.env, (p) =>
      readBounded(p, READ_LIMITS.small, { followLink: true }),
    );
    await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const now = clock(a.now);
      const r = await activate(mesh, a.scope, ids, a.reason ?? 'keyCompromise', now);
      store.commit(r.writes);
      process.stdout.write(r.report.map((l) => `${l}\n`).join(''));
    });
  },
};

async function activate(
  mesh: Mesh,
  scope: string,
  ids: string[],
  reason: string,
  now: Date,
): Promise<{ writes: FileWrite[]; report: string[] }> {
  scopeDef(mesh, scope);
  await refuseRootOpeners(mesh, ids, 'the break-glass identity', 'this environment');
  const live = liveIntermediates(mesh, scope);
  const standby = inRole(live, 'standby');
  if (!standby)
    throw new TrellisError('not-yet-minted', `scope ${scope} has no standby intermediate`, {
      file: paths.standbyIntermediate(scope),
      hint:
        `a ceremony mints one: trellis-root intermediate ${scope} --standby; until then, trellis-root recover ` +
        `${scope}`,
    });
  const problems = await intermediateProblems(mesh, scope, standby.cert);
  if (problems.length)
    throw new TrellisError('verification-failed', problems.join('; '), {
      file: standby.file,
      hint: 'restore it from git and run trellis-ci verify; a tampered standby is no way out: trellis-root recover',
    });
  assertLedgerCounts(mesh, scope);
  const pem = await decryptWith(ids, standby.keyAge ?? '', standby.keyFile, 'breakglass');
  if (!keyMatchesCert(pem, standby.cert))
    throw new TrellisError('key-mismatch', `the key does not match standby ${fingerprint(standby.cert)}`, {
      file: standby.keyFile,
      hint: 'restore bundles/<scope>/ from git',
    });
  // The key goes to CI next: only to the CI recipient the custodian confirmed for the scope.
  const ci = requireConfirmedCiRecipientOf(mesh, scope, 'the activated key');
  const m = mesh.material.get(scope)!;
  const burned = live.filter((l) => l.role !== 'standby' && l.role !== 'old-root');
  const fp = fingerprint(standby.cert);
  const t = advanceScope(m.state!, { type: 'recover', fresh: fp }, now, scope);
  const signer = { scope, ...(await caKeyFromPem('intermediate', standby.cert, pem)) };
  const burnedFps = burned.map((l) => fingerprint(l.cert));
  const writes: FileWrite[] = [
    ...effectWrites(mesh, scope, t.effects, { pem: certificatePem(standby.cert), keyAge: await encryptTo([ci], pem) }),
    { path: paths.standbyIntermediate(scope), content: null },
    { path: paths.standbyIntermediateKey(scope), content: null },
    { path: paths.state(scope), content: serializeScopeState({ ...t.state, evidence: undefined }) },
    {
      path: paths.burned(scope),
      content: signBurnStatement(
        { scope, burned: burnedFps, certificates: burned.map((l) => certificatePem(l.cert)), reason, at: iso(now) },
        signer,
      ),
    },
  ];
  // The ledger entry is the standby's: `revoked` makes any later entry the burned key signs count for nothing.
  writes.push({
    path: paths.ledger(scope),
    content: appendToLedger(
      m.ledger,
      {
        op: 'activate-standby',
        at: iso(now),
        actor: actor(),
        details: { scope, activated: fp, revoked: burnedFps, reason },
      },
      paths.ledger(scope),
      ledgerSigner(signer),
    ).text,
  });
  // Every bundle of the mesh, as the store will be: the burned key leaves them all at once.
  writes.push(...trustBundleFiles(mesh, anchorsBy(mesh, writes)));
  // A fresh mesh view is not needed for the CRL: the revoked-leaf list is unchanged, and the standby is its only signer
  // now.
  writes.push(await scopeCrlWrite(mesh, scope, [{ ...signer, leafCrl: true, anchorCrl: true }], now, nodeCryptoSeam));
  return {
    writes,
    report: [
      `${scope}: standby ${fp} is the active intermediate; burned and out of every bundle: ${burnedFps.join(', ')}`,
      `burn statement ${paths.burned(scope)} (signed by the standby) ships in the scope's releases: agents ` +
        `refuse the burned key before any root CRL names it`,
      'commit and push now; the next trellis-ci renew re-mints every leaf of the scope; the next ceremony ' +
        '(trellis-root recover or intermediate --standby) revokes the burned key in the root CRL and mints a new ' +
        'standby',
    ],
  };
}
