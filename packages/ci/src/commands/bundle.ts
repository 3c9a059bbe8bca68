import type { CommandModule } from 'yargs';
import { TrellisError, loadMesh, scopeTrust, trustOpensslPem, trustPem, withStore } from '@trellis/core';
import { requireCiPosture } from '../posture.js';

interface Args { store?: string; scope: string; format: string }

export const bundle: CommandModule<object, Args> = {
  command: 'bundle <scope>',
  describe: "Print a scope's trust bundle",
  builder: (y) => y
    .positional('scope', { type: 'string', demandOption: true })
    .option('format', { type: 'string', choices: ['pem', 'openssl'], default: 'pem', describe: 'pem: plain CERTIFICATE blocks (Go, most stacks); openssl: TRUSTED CERTIFICATE blocks' }) as never,
  handler: async (a) => {
    requireCiPosture();
    const mesh = await withStore(a.store, async (store) => loadMesh(store));
    const certs = scopeTrust(mesh, a.scope);
    if (!certs.length) throw new TrellisError('not-yet-minted', `scope ${a.scope} trusts no intermediate yet`, { hint: 'trellis-root intermediate --pending' });
    process.stdout.write(a.format === 'openssl' ? trustOpensslPem(certs) : trustPem(certs));
  },
};
