/**
 * Standby intermediates, the ceremony side: a second key per scope, signed by
 * the root now and encrypted to the break-glass recipient only, so the on-call
 * security team can swap it in (trellis-ci activate-standby) when the active
 * key is burned, without reaching the air-gapped root. It is in no bundle.
 */
import {
  TrellisError,
  certRef,
  certificatePem,
  encryptTo,
  fingerprint,
  inRole,
  iso,
  keyId,
  lastConfirmedRecord,
  liveIntermediates,
  parseCertificate,
  paths,
  readBurnStatement,
  scopeDef,
  signedBy,
  type FileWrite,
  type RevokedIntermediate,
} from '@trellis/core';
import { mintIntermediate, type RootSigner } from './ceremony.js';
import { rootRecords, type Ceremony, type ProcedureResult } from './root-procedures.js';
import { offlineEntry } from './records.js';

/**
 * The break-glass recipient must be one the custodian confirmed: trellis.yaml
 * is a file a pull request can edit, and a redirected recipient would hand the
 * standby key to whoever wrote it. First use and every change need --confirm-recipients.
 */
export function breakglassToRecord(c: Ceremony, confirmed: boolean): Record<string, unknown> {
  const current = c.mesh.config.recipients.breakglass;
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
  const recorded = lastConfirmedRecord(c.mesh, 'breakglassRecipient')?.breakglassRecipient;
  if (recorded === current) return {};
  if (!confirmed) {
    const since =
      recorded === undefined
        ? 'has never been confirmed'
        : `changed since the root ledger last recorded it (${String(recorded)} → ${current})`;
    throw new TrellisError(
      'custody-recipients',
      `recipients.breakglass ${since}: the standby key would be encrypted to it`,
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
 * `trellis-root intermediate --standby SCOPE…`: one standby per target scope that has an active intermediate and no
 * standby yet.
 */
export async function mintStandbys(
  c: Ceremony,
  targets: string[],
  root: RootSigner,
  confirmed: boolean,
): Promise<ProcedureResult> {
  const { mesh, now } = c;
  const recorded = breakglassToRecord(c, confirmed);
  const breakglass = mesh.config.recipients.breakglass!;
  const writes: FileWrite[] = [];
  const minted: { scope: string; fp: string; ref: ReturnType<typeof certRef> }[] = [];
  const revoked: RevokedIntermediate[] = [];
  for (const scope of targets) {
    scopeDef(mesh, scope);
    revoked.push(...(await burnedToRevoke(c, scope, root)));
    const live = liveIntermediates(mesh, scope);
    if (!inRole(live, 'active'))
      throw new TrellisError('not-yet-minted', `scope ${scope} has no intermediate yet: a standby stands beside one`, {
        file: paths.intermediate(scope),
        hint: `trellis-root intermediate ${scope} first`,
      });
    if (inRole(live, 'standby'))
      throw new TrellisError('already-minted', `scope ${scope} already has a standby intermediate`, {
        file: paths.standbyIntermediate(scope),
        hint: 'one standby per scope; it is replaced after activate-standby, at the next ceremony',
      });
    const ca = await mintIntermediate(scope, mesh.config, root, now, c.seam);
    const ref = certRef(ca.cert);
    minted.push({ scope, fp: fingerprint(ca.cert), ref });
    writes.push(
      { path: paths.standbyIntermediate(scope), content: certificatePem(ca.cert) },
      // The break-glass recipient only: neither CI nor the custodian can open it.
      { path: paths.standbyIntermediateKey(scope), content: await encryptTo([breakglass], ca.keyPem) },
      {
        path: paths.ledger(scope),
        content: offlineEntry(
          mesh.material.get(scope)!.ledger,
          'standby',
          now,
          c.posture,
          {
            scope,
            root: fingerprint(root.cert),
            standby: fingerprint(ca.cert),
            revoked: revoked.filter((r) => r.scope === scope).map((r) => r.fingerprint),
          },
          [{ kind: 'intermediate', ...ref }],
          root,
        ),
      },
    );
  }
  // The keys a standby activation burned: now in the root CRL too, for every verifier that reads it.
  if (revoked.length)
    writes.push(
      ...(await rootRecords(c, { ...mesh.rootState!, revoked: [...mesh.rootState!.revoked, ...revoked] }, [root])),
    );
  writes.push({
    path: paths.rootLedger,
    content: offlineEntry(
      mesh.rootLedger,
      'standby',
      now,
      c.posture,
      { scopes: targets, revoked: revoked.map((r) => r.fingerprint), ...c.recipients, ...recorded },
      minted.map((m) => ({ kind: 'intermediate' as const, ...m.ref })),
      root,
    ),
  });
  return {
    writes,
    report: [
      ...minted.map(
        (m) =>
          `minted ${m.scope} standby intermediate ${m.fp}, encrypted to the break-glass recipient only; in no bundle`,
      ),
      ...revoked.map(
        (r) => `revoked in the root CRL: ${r.scope} intermediate ${r.fingerprint} (burned by activate-standby)`,
      ),
      'commit the store; on a compromise of the active key the on-call team runs trellis-ci activate-standby SCOPE',
    ],
  };
}

/**
 * The intermediates the scope's last standby activation burned that the root
 * CRL does not name yet. The burn statement must be signed by the scope's
 * active intermediate (the activated standby), and each burned certificate
 * must be one this root issued: a forged statement revokes nothing.
 */
async function burnedToRevoke(c: Ceremony, scope: string, root: RootSigner): Promise<RevokedIntermediate[]> {
  const text = c.mesh.material.get(scope)?.burned;
  if (!text) return [];
  const read = readBurnStatement(text);
  const active = inRole(liveIntermediates(c.mesh, scope), 'active');
  if (
    'problem' in read ||
    read.statement.scope !== scope ||
    !active ||
    fingerprint(read.signer) !== fingerprint(active.cert)
  ) {
    throw new TrellisError(
      'corrupt-store',
      `${'problem' in read ? read.problem : `not signed by the active intermediate of ${scope}`}: the burned ` +
        `keys cannot be revoked from it`,
      {
        file: paths.burned(scope),
        hint:
          'restore it from git (trellis-ci activate-standby wrote it); if it was forged, treat the scope as ' +
          'compromised: trellis-root recover',
      },
    );
  }
  const known = new Set(c.mesh.rootState!.revoked.map((r) => r.fingerprint));
  const out: RevokedIntermediate[] = [];
  for (const pem of read.statement.certificates) {
    const cert = parseCertificate(pem);
    const fp = fingerprint(cert);
    if (known.has(fp) || !read.statement.burned.includes(fp) || !(await signedBy(cert, root.cert))) continue;
    out.push({
      scope,
      serial: cert.serialNumber,
      fingerprint: fp,
      issuer: keyId(root.cert),
      notAfter: iso(cert.notAfter),
      at: iso(c.now),
      reason: read.statement.reason || 'keyCompromise',
    });
  }
  return out;
}
