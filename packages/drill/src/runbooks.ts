/**
 * The three runbooks as rehearsals: each phase's steps run with the real CLIs
 * on the scratch mesh at the phase's simulated instant, then the checklist.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MINUTE, HOUR, DAY, type Rehearsal } from './rehearsal.js';
import { rfc3339 } from './scratch.js';

const after = (t: Date, ms: number) => new Date(t.getTime() + ms);

/**
 * Planned intermediate rotation: offline publish, then CI's switch and retire at their gates; hosts a deploy behind
 * keep working.
 */
export async function rotateIntermediate(r: Rehearsal): Promise<void> {
  const { scope, now } = r.opts;
  await r.check('before', 'before: steady', after(now, MINUTE));

  const t1 = after(now, HOUR);
  r.step(`publish, ${rfc3339(t1)} (offline): a next intermediate beside the active one`);
  let behind = r.snapshot('a deploy behind');
  await r.mesh.root(['rotate', 'intermediate', scope, '--now', rfc3339(t1)]);
  await r.renew(t1);
  await r.check('publish', 'publish: bundles trust {old, new}, signing on old', after(t1, MINUTE), { extra: behind });

  const t2 = r.gate();
  r.step(
    `switch, ${rfc3339(t2)} (CI, at the switch gate): the new intermediate signs, every leaf of ${scope} re-minted`,
  );
  await r.renew(after(t2, -MINUTE), true);
  behind = r.snapshot('a deploy behind');
  await r.renew(t2);
  await r.check('switch', 'switch: signing on new, bundles still {old, new}', after(t2, MINUTE), { extra: behind });

  const t3 = r.gate();
  r.step(
    `retire, ${rfc3339(t3)} (CI, at the retire gate): the old intermediate leaves the bundles, its key is deleted`,
  );
  await r.renew(after(t3, -MINUTE), true);
  behind = r.snapshot('a deploy behind');
  await r.renew(t3);
  const gone = !fs.existsSync(path.join(r.mesh.store, 'bundles', scope, 'intermediate.previous.key.age'));
  await r.check('retire', 'retire: old intermediate out of the bundles', after(t3, MINUTE), {
    extra: behind,
    more: [{ name: "the old intermediate's key is deleted", want: 'yes', got: gone ? 'yes' : 'no' }],
  });
}

/**
 * Compromise recovery: a fresh intermediate, the old one revoked and out of every bundle at once; renew re-mints the
 * scope.
 */
export async function recover(r: Rehearsal): Promise<void> {
  const { scope, now } = r.opts;
  await r.check('before', 'before: steady', after(now, MINUTE));

  const t1 = after(now, HOUR);
  r.step(`recover, ${rfc3339(t1)} (offline, act now): ${scope}'s intermediate is compromised`);
  await r.renew(after(t1, -MINUTE), true);
  const burned = path.join(r.work, 'burned-intermediate.pem');
  fs.copyFileSync(path.join(r.mesh.store, 'bundles', scope, 'intermediate.pem'), burned);
  await r.mesh.root(['recover', scope, '--reason', 'keyCompromise', '--now', rfc3339(t1)]);
  const b = (f: string) => path.join(r.mesh.store, 'bundles', f);
  const revoked = await r.opensslVerify(
    'the burned intermediate against the root CRL (openssl -crl_check)',
    23,
    after(t1, MINUTE),
    ['-crl_check', '-CAfile', b('root/roots.pem'), '-CRLfile', b('root/crl.pem'), burned],
  );
  await r.check(
    'recovered',
    `recovered, before renew: every ${scope} leaf (the burned key's) refused at once`,
    after(t1, MINUTE),
    { refused: scope, more: [revoked] },
  );

  const t2 = after(t1, HOUR);
  r.step(`renew, ${rfc3339(t2)} (CI): every leaf of ${scope} re-minted under the fresh intermediate`);
  await r.renew(t2);
  await r.check('renewed', 'after renew and deploy: the scope serves again', after(t2, MINUTE));
}

/**
 * Root rotation: a new root, intermediates re-signed with their keys kept, a link certificate; finalize drops the old
 * root.
 */
export async function rotateRoot(r: Rehearsal): Promise<void> {
  const { scope, now } = r.opts;
  await r.check('before', 'before: steady', after(now, MINUTE));

  const t1 = after(now, HOUR);
  r.step(`overlap, ${rfc3339(t1)} (offline): rotate root`);
  await r.renew(after(t1, -MINUTE), true);
  await r.mesh.root(['rotate', 'root', '--now', rfc3339(t1)]);
  // The ceremony commit's merge runs CI's renew before anything is deployed: it re-signs the anchor CRLs for the
  // re-signed intermediates.
  await r.renew(t1);
  const b = (f: string) => path.join(r.mesh.store, 'bundles', f);
  const service = fs.readdirSync(path.join(r.mesh.store, '.trellis/out', scope)).sort()[0]!;
  const leaf = path.join(r.mesh.store, '.trellis/out', scope, service, 'cert.pem');
  const at = after(t1, 2 * MINUTE);
  const chain = (label: string, want: boolean, root: string, inter: string) =>
    r.opensslVerify(`${scope}/${service} under ${label}`, want, at, [
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      b(root),
      '-untrusted',
      b(inter),
      leaf,
    ]);
  const chains = [
    await chain(
      'old root, old-root intermediate',
      true,
      'root/root.previous.pem',
      `${scope}/intermediate.old-root.pem`,
    ),
    await chain('new root, re-signed intermediate', true, 'root/root.pem', `${scope}/intermediate.pem`),
    await chain(
      'new root, old-root intermediate (crossed)',
      false,
      'root/root.pem',
      `${scope}/intermediate.old-root.pem`,
    ),
    await chain(
      'old root, re-signed intermediate (crossed)',
      false,
      'root/root.previous.pem',
      `${scope}/intermediate.pem`,
    ),
  ];
  await r.check('overlap', 'overlap: intermediates re-signed, keys kept, no leaf re-minted', after(t1, MINUTE), {
    more: chains,
  });

  const t2 = after(t1, DAY);
  r.step(`finalize, ${rfc3339(t2)} (offline): rotate root --finalize, then CI renew`);
  await r.mesh.root(['rotate', 'root', '--finalize', '--now', rfc3339(t2)]);
  await r.renew(t2);
  const roots = fs.readFileSync(b('root/roots.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)?.length ?? 0;
  await r.check('finalized', 'after finalize: only the new root remains', after(t2, MINUTE), {
    more: [{ name: 'roots.pem holds one root', want: '1', got: String(roots) }],
  });
}
