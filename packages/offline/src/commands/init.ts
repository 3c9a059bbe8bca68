import fs from 'node:fs';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import {
  KEY_ALGORITHMS,
  caKeyFromPem,
  ledgerSigner,
  serializeRootState,
  TrellisError,
  appendToLedger,
  certificatePem,
  encryptTo,
  fingerprint,
  iso,
  newIdentity,
  nodeCryptoSeam,
  parseMeshConfig,
  parseSharesSpec,
  paths,
  policyRecord,
  serializeMeshConfig,
  toYaml,
  validateRecipients,
  type KeyAlgorithm,
  assertPqRecipients,
} from '@trellis/core';
import { STORE_FILE, holdsStore, Store, checkOutFile, writeOutFile } from '@trellis/core/store';
import { actor, clock } from '@trellis/core/shell';
import { mintRoot, rootCrlPem, type MintedCa, type RootSigner } from '../ceremony.js';
import { printShares, writeAllToStdout } from '../identity-out.js';
import { requireOfflinePosture } from '../posture.js';
import { parseTokenUri, tokenAwareSeam } from '../token.js';

interface Args {
  store?: string;
  mesh: string;
  trustDomain: string;
  ciRecipient?: string;
  ciIdentityOut?: string;
  offlineRecipient?: string[];
  algorithm: string;
  shares?: string;
  pq?: boolean;
  rootKey?: string;
  allowOnline?: boolean;
  now?: string;
}

export const init: CommandModule<object, Args> = {
  command: 'init',
  describe: 'Create a store and its root CA (prints a generated offline identity once, on stdout)',
  builder: (y) =>
    y
      .option('mesh', { type: 'string', demandOption: true, describe: 'mesh name ([a-z0-9-])' })
      .option('trust-domain', { type: 'string', demandOption: true, describe: 'trust domain, e.g. mesh.example' })
      .option('ci-recipient', { type: 'string', describe: 'age recipient of the CI identity (age1…)' })
      .option('ci-identity-out', { type: 'string', describe: 'generate the CI identity into this file (0600) instead' })
      .option('offline-recipient', {
        type: 'string',
        array: true,
        describe: 'age recipient(s) the root key is encrypted to; default: generate one identity and print it',
      })
      .option('shares', {
        type: 'string',
        describe:
          'print the generated offline identity as N Shamir shares, any K of which open the root key (K-of-N, ' +
          'e.g. 2-of-3)',
      })
      .option('pq', {
        type: 'boolean',
        describe:
          'post-quantum at rest: generate ML-KEM-768 hybrid identities (age1pq1…) for the offline and CI ' +
          'postures; the age CLI before 1.3 cannot read them',
      })
      .option('algorithm', {
        type: 'string',
        choices: [...KEY_ALGORITHMS],
        default: 'ecdsa-p256',
        describe: 'root key algorithm',
      })
      .option('root-key', {
        type: 'string',
        describe:
          'generate the root key on a PKCS#11 token instead of a file: an RFC 7512 URI, e.g. ' +
          "'pkcs11:token=trellis-root;object=root' (docs/root-on-token.md)",
      })
      .example(
        '$0 init --mesh prod --trust-domain mesh.example --ci-recipient age1…',
        'on the air-gapped workstation',
      ) as never,
  handler: (a) => runInit(a),
};

async function runInit(a: Args): Promise<void> {
  const posture = requireOfflinePosture(a);
  if (Boolean(a.ciRecipient) === Boolean(a.ciIdentityOut)) {
    throw new TrellisError('usage', 'give exactly one of --ci-recipient AGE1 or --ci-identity-out FILE');
  }
  const dir = path.resolve(a.store ?? process.env.TRELLIS_STORE ?? process.cwd());
  // A store whose init was interrupted after its commit point counts too: the next command completes it.
  if (holdsStore(dir)) {
    throw new TrellisError('store-exists', `${dir} already holds a store`, {
      file: STORE_FILE,
      hint: 'init creates a new mesh; to re-key an existing one use trellis-root rotate root',
    });
  }
  // A plaintext identity: outside the store's tracked tree, never through a link, never onto a device (out-path.ts).
  const identityOut = { flag: '--ci-identity-out', secret: true, store: dir };
  if (a.ciIdentityOut && fs.existsSync(checkOutFile(a.ciIdentityOut, identityOut))) {
    throw new TrellisError('usage', `${a.ciIdentityOut} exists; refusing to overwrite an identity`, {
      field: '--ci-identity-out',
      hint: 'choose a new path',
    });
  }
  const offline = a.offlineRecipient ?? [];
  const shares = a.shares === undefined ? undefined : parseSharesSpec(a.shares);
  if (shares && offline.length)
    throw new TrellisError(
      'usage',
      '--shares splits the generated offline identity: it cannot be combined with --offline-recipient',
      { field: '--shares' },
    );
  validateRecipients(offline, { field: '--offline-recipient' });
  if (a.ciRecipient) validateRecipients([a.ciRecipient], { field: '--ci-recipient' });
  // --pq is for both postures: a classic recipient given beside it would leave one tier classic.
  for (const [field, given] of [
    ['--offline-recipient', offline],
    ['--ci-recipient', a.ciRecipient ? [a.ciRecipient] : []],
  ] as const) {
    if (a.pq) assertPqRecipients(given, field);
  }
  if (a.rootKey !== undefined) parseTokenUri(a.rootKey);
  const now = clock(a.now);

  // Validate the configuration as it will be read back, before any key exists.
  const offlineId = offline.length ? undefined : await newIdentity(a.pq);
  const ciId = a.ciIdentityOut ? await newIdentity(a.pq) : undefined;
  const recipients = { offline: offlineId ? [offlineId.recipient] : offline, ci: ciId?.recipient ?? a.ciRecipient! };
  const configText = serializeMeshConfig({
    mesh: a.mesh,
    trustDomain: a.trustDomain,
    recipients,
    rootAlgorithm: a.algorithm as KeyAlgorithm,
  });
  const config = parseMeshConfig(configText, '--mesh/--trust-domain');

  const seam = tokenAwareSeam(nodeCryptoSeam);
  // On a token the key is generated there and never leaves it: the store records only its URI.
  const root: MintedCa & { signer?: RootSigner } = a.rootKey
    ? await mintRoot(config, now, seam, a.rootKey)
    : await mintRoot(config, now, seam);
  const rootPem = certificatePem(root.cert);
  const rootSigner = root.signer ?? (await caKeyFromPem('root', root.cert, root.keyPem));
  const rootState = { phase: 'steady' as const, active: fingerprint(root.cert), since: iso(now), revoked: [] };
  const { text: ledger } = appendToLedger(
    '',
    {
      op: 'init',
      at: iso(now),
      actor: actor(),
      details: {
        mesh: config.mesh,
        trustDomain: config.trustDomain,
        offlineRecipients: recipients.offline,
        ciRecipient: recipients.ci,
        ...(a.rootKey ? { rootKeyUri: a.rootKey } : {}),
        ...policyRecord(config),
        ...posture,
      },
      created: [
        {
          kind: 'root',
          fingerprint: fingerprint(root.cert),
          serial: root.cert.serialNumber,
          subject: root.cert.subject,
          notAfter: iso(root.cert.notAfter),
        },
      ],
    },
    paths.rootLedger,
    ledgerSigner(rootSigner),
  );
  const writes = [
    { path: STORE_FILE, content: configText },
    { path: paths.scopeFile('global'), content: toYaml({ kind: 'global', services: {} }) },
    { path: paths.rootCert, content: rootPem },
    { path: paths.roots, content: rootPem },
    a.rootKey
      ? { path: paths.rootKeyUri, content: `${a.rootKey}\n` }
      : { path: paths.rootKey, content: await encryptTo(recipients.offline, root.keyPem) },
    { path: paths.rootLedger, content: ledger },
    { path: paths.rootState, content: serializeRootState(rootState) },
    { path: paths.rootCrl, content: await rootCrlPem([rootSigner], [], now, config.crl.root, seam) },
  ];
  // The generated identity is the only way into the root key: it must have reached stdout before anything opens with
  // it.
  if (offlineId && shares) {
    await printShares(offlineId.identity, config.mesh, shares.k, shares.n, INIT_STDOUT);
  } else if (offlineId) {
    process.stderr.write(
      'the offline root identity follows on stdout, ONCE: write it to offline media now; it is not stored anywhere\n',
    );
    writeAllToStdout(
      `# trellis offline root identity for mesh ${config.mesh}\n# recipient: ` +
        `${offlineId.recipient}\n${offlineId.identity}\n`,
      { what: 'the offline root identity', ...INIT_STDOUT },
    );
  }
  fs.mkdirSync(dir, { recursive: true });
  if (ciId)
    writeOutFile(
      a.ciIdentityOut!,
      `# trellis CI identity for mesh ${config.mesh}\n# recipient: ${ciId.recipient}\n${ciId.identity}\n`,
      identityOut,
    );
  const store = new Store(dir);
  // The store may be an existing infrastructure repository: extend its .gitignore, never replace it.
  const gitignore = store.read('.gitignore') ?? '';
  const ignoreWork = gitignore.split('\n').includes('.trellis/')
    ? []
    : [{ path: '.gitignore', content: `${gitignore}${gitignore && !gitignore.endsWith('\n') ? '\n' : ''}.trellis/\n` }];
  await store.withLock(async () => store.commit([...writes, ...ignoreWork]));

  process.stderr.write(
    `created mesh ${config.mesh} in ${dir}\nroot ${root.cert.subject}\n     ${fingerprint(root.cert)}, expires ` +
      `${iso(root.cert.notAfter)}\n`,
  );
  if (ciId)
    process.stderr.write(
      `CI identity written to ${a.ciIdentityOut} (recipient ${ciId.recipient}): store it as CI's ` +
        `TRELLIS_CI_IDENTITY secret, then delete it here\n`,
    );
  if (a.rootKey)
    process.stderr.write(
      `the root key was generated on the token (${a.rootKey}) and never left it; every root signature needs ` +
        `the token and its PIN\n`,
    );
  const keep = a.rootKey ? '; they open no root key now: keep them for a rotation back to a file root' : '';
  if (offlineId && shares)
    process.stderr.write(
      `the shares were written to stdout (the terminal, or the file it was redirected to): trellis-root ` +
        `recombines any ${shares.k} of them (--shares-from FILE… or TRELLIS_ROOT_IDENTITY_SHARES)${keep}\n`,
    );
  else if (offlineId)
    process.stderr.write(
      a.rootKey
        ? 'the offline identity was written to stdout (the terminal, or the file it was redirected to): it opens ' +
            'no root key now; keep it for a rotation back to a file root\n'
        : 'the offline root identity was written to stdout (the terminal, or the file it was redirected to): the ' +
            'root key opens with it alone\n',
    );
}

const INIT_STDOUT = {
  outcome: 'nothing was created',
  hint:
    'rerun with stdout going to a terminal or a file on offline media (trellis-root init … > ' +
    '/media/offline/root.identity), or pass --offline-recipient',
};
