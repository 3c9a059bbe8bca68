import fs from 'node:fs';
import type { CommandModule } from 'yargs';
import {
  TrellisError,
  certificateParty,
  explainHandshake,
  parseCertificates,
  recordParty,
  renderExplanation,
  STACKS,
  type Certificate,
  type Mesh,
  type Party,
  type Stack,
} from '@trellis/core';
import { loadMesh } from '@trellis/core/store';
import { clock, withStore } from '@trellis/core/shell';

interface Args {
  store?: string;
  client: string;
  server: string;
  now?: string;
  json?: boolean;
  stack: Stack;
}

/** A party is a certificate file when the path exists, else SCOPE/SERVICE from the issuance record. */
function partyOf(mesh: Mesh, ref: string): Party {
  if (!fs.existsSync(ref)) return recordParty(mesh, ref);
  let certs: Certificate[];
  try {
    certs = parseCertificates(fs.readFileSync(ref, 'utf8'));
  } catch (e) {
    throw new TrellisError('usage', `holds a certificate that does not parse (${(e as Error).message})`, { file: ref });
  }
  if (!certs.length)
    throw new TrellisError('usage', 'holds no PEM certificate', {
      file: ref,
      hint: 'give a leaf (cert.pem or chain.pem), or SCOPE/SERVICE',
    });
  return certificateParty(mesh, ref, certs[0]!);
}

export const explain: CommandModule<object, Args> = {
  command: 'explain <client> <server>',
  describe: 'Would the mTLS handshake between CLIENT and SERVER pass, each direction, and why',
  builder: (y) =>
    y
      .positional('client', {
        type: 'string',
        demandOption: true,
        describe: 'SCOPE/SERVICE (its current leaf in leaves.yaml) or a certificate file',
      })
      .positional('server', { type: 'string', demandOption: true, describe: 'SCOPE/SERVICE or a certificate file' })
      .option('json', { type: 'boolean', describe: 'machine-readable output' })
      .option('stack', {
        choices: STACKS,
        default: 'openssl' as Stack,
        describe: "the verifying peer's TLS stack: jvm and botan declare what they do not check (docs/conformance.md)",
      })
      .example('$0 explain us-east-1/web eu-west-1/api', 'refused: the regional boundary')
      .example(
        '$0 explain us-east-1/api global/control --stack jvm',
        'what a JVM peer checks only with the scope check',
      )
      .example(
        '$0 explain ./old-cert.pem global/control --now 2026-12-24T00:00:00Z',
        'a certificate file, judged as of a time',
      )
      .epilogue('Exit 0 when both directions pass, 1 when either is refused.') as never,
  handler: async (a) => {
    const e = await withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      return explainHandshake(mesh, partyOf(mesh, a.client), partyOf(mesh, a.server), clock(a.now), a.stack);
    });
    process.stdout.write(a.json ? `${JSON.stringify(e, null, 2)}\n` : renderExplanation(e));
    if (!e.passes) process.exitCode = 1;
  },
};
