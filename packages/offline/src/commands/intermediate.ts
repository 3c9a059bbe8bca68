import fs from 'node:fs';
import type { CommandModule } from 'yargs';
import {
  TrellisError, actor, appendToLedger, ledgerSigner, certificatePem, clock, encryptTo, fingerprint, iso, loadMesh, nodeCryptoSeam, withStore, paths,
  requireIdentities, scopeDef, serializeScopeState, trustBundleFiles, type Certificate, type FileWrite, type Created,
} from '@trellis/core';
import { mintIntermediate, openRootKey } from '../ceremony.js';
import { requireOfflinePosture } from '../posture.js';
import { recipientsToRecord } from '../records.js';

interface Args {
  store?: string;
  scope?: string;
  pending?: boolean;
  confirmRecipients?: boolean;
  allowOnline?: boolean;
  now?: string;
}

export const intermediate: CommandModule<object, Args> = {
  command: 'intermediate [scope]',
  describe: "Mint a scope's intermediate under the root (needs the offline root identity)",
  builder: (y) => y
    .positional('scope', { type: 'string', describe: 'the scope, as named by scopes/<scope>.yaml' })
    .option('pending', { type: 'boolean', describe: 'mint every declared scope that has no intermediate yet' })
    .example('$0 intermediate us-east-1', 'after merging the PR that adds scopes/us-east-1.yaml')
    .example('$0 intermediate --pending', 'every scope awaiting its ceremony') as never,
  handler: (a) => runIntermediate(a),
};

async function runIntermediate(a: Args): Promise<void> {
  const posture = requireOfflinePosture(a);
  if (Boolean(a.scope) === Boolean(a.pending)) throw new TrellisError('usage', 'give a SCOPE or --pending, not both or neither');
  await withStore(a.store, async (store) => {
    const mesh = loadMesh(store);
    const now = clock(a.now);
    // A scope that ever had an intermediate is not pending even if intermediate.pem went missing: minting over it would orphan its key and leaves.
    const unminted = (s: string) => {
      const m = mesh.material.get(s)!;
      if (m.intermediate) return false;
      if (m.keyAge !== undefined || m.ledger.includes('"kind":"intermediate"')) {
        throw new TrellisError('corrupt-store', `scope ${s} had an intermediate but intermediate.pem is missing`, { file: paths.intermediate(s), hint: 'restore it from git; if it is lost for good, the scope needs trellis-root recover' });
      }
      return true;
    };
    let targets: string[];
    if (a.pending) targets = mesh.scopes.map((s) => s.name).filter(unminted);
    else {
      targets = [scopeDef(mesh, a.scope!).name];
      if (!unminted(a.scope!)) {
        throw new TrellisError('already-minted', `scope ${a.scope} already has an intermediate`, {
          file: paths.intermediate(a.scope!), hint: `to replace it: trellis-root rotate intermediate ${a.scope} (planned) or trellis-root recover ${a.scope} (compromise)`,
        });
      }
    }
    if (!targets.length) {
      process.stdout.write('no scope is pending its intermediate\n');
      return;
    }
    const recipients = recipientsToRecord(mesh, Boolean(a.confirmRecipients));
    const root = await openRootKey(mesh, requireIdentities('root', process.env, (p) => fs.readFileSync(p, 'utf8')), now);

    const minted = new Map<string, Certificate>();
    const writes: FileWrite[] = [];
    const created: Created[] = [];
    for (const scope of targets) {
      const ca = await mintIntermediate(scope, mesh.config, root, now, nodeCryptoSeam);
      const fp = fingerprint(ca.cert);
      const record: Created = { kind: 'intermediate', fingerprint: fp, serial: ca.cert.serialNumber, subject: ca.cert.subject, notAfter: iso(ca.cert.notAfter) };
      created.push(record);
      minted.set(scope, ca.cert);
      writes.push(
        { path: paths.intermediate(scope), content: certificatePem(ca.cert) },
        // The CI recipient only: the root identity must not open what CI signs with.
        { path: paths.intermediateKey(scope), content: await encryptTo([mesh.config.recipients.ci], ca.keyPem) },
        { path: paths.state(scope), content: serializeScopeState({ phase: 'steady', active: fp, since: iso(now), revoked: [] }) },
        { path: paths.leaves(scope), content: '{}\n' },
        {
          path: paths.ledger(scope),
          content: appendToLedger(mesh.material.get(scope)!.ledger, { op: 'intermediate', at: iso(now), actor: actor(), details: { scope, root: fingerprint(root.cert), ...posture }, created: [record] }, paths.ledger(scope), ledgerSigner(root)).text,
        },
      );
    }
    writes.push({
      path: paths.rootLedger,
      content: appendToLedger(mesh.rootLedger, { op: 'intermediate', at: iso(now), actor: actor(), details: { scopes: targets, ...recipients, ...posture }, created }, paths.rootLedger, ledgerSigner(root)).text,
    });
    // A new scope changes what others trust (global trusts every scope), so every bundle is recomposed.
    writes.push(...trustBundleFiles(mesh, (s) => {
      const c = minted.get(s) ?? mesh.material.get(s)?.intermediate;
      return c ? [c] : [];
    }));
    store.commit(writes);
    for (const [scope, cert] of minted) process.stdout.write(`minted ${scope} intermediate ${fingerprint(cert)} (expires ${iso(cert.notAfter)})\n`);
    process.stdout.write('commit the store and open a pull request; CI mints the leaves on its next renew\n');
  });
}
