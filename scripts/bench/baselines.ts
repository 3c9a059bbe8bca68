/**
 * The yardsticks trellis renew is judged against, each minting the leaf
 * profile of packages/core/src/x509/profiles.ts (ECDSA P-256, 7 d; critical
 * basicConstraints CA:FALSE and keyUsage digitalSignature; EKU serverAuth +
 * clientAuth; non-critical SAN of one SPIFFE URI and one DNS name; SKI; AKI):
 *
 * - `openssl`: the OpenSSL CLI, one `openssl req -x509 -CA` process per leaf, in a shell loop;
 * - `x509`: @peculiar/x509 used the obvious way, in-process: WebCrypto keygen,
 *   `X509CertificateGenerator.create`, PEM of the certificate and of the PKCS#8 key;
 * - `ceiling`: node:crypto keygen + one ECDSA signature over a TBS-sized buffer,
 *   no encoding at all, on 1 worker thread and on one per core.
 *
 * Run as a child process so its memory is its own:
 *   node --import tsx scripts/bench/baselines.ts x509 N ISSUER_DIR
 *   node --import tsx scripts/bench/baselines.ts ceiling MS THREADS TBS_BYTES ISSUER_DIR
 * Each prints one JSON line {n, seconds, threads?, sample?}.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, webcrypto } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

const REPO = path.resolve(import.meta.dirname, '../..');
/** The @peculiar/x509 trellis itself resolves (same version), not one of our own. */
const fromCore = createRequire(path.join(REPO, 'packages/core/package.json'));

const LEAF_DAYS = 7;
const DAY_MS = 86_400_000;

/** A P-256 intermediate-like issuer (CA, pathlen 0, SKI) made with the openssl CLI, shared by every baseline. */
export function makeIssuer(dir: string): { cert: string; key: string } {
  fs.mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, 'issuer.pem');
  const key = path.join(dir, 'issuer.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      '/O=bench/OU=region-01/CN=bench issuer',
      '-days',
      '30',
      '-addext',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-addext',
      'subjectKeyIdentifier=hash',
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/**
 * The OpenSSL config for one leaf of the trellis profile; SANs come from the environment so one file serves the loop.
 */
function opensslLeafConfig(): string {
  return [
    '[req]',
    'distinguished_name = dn',
    'x509_extensions = leaf',
    'prompt = no',
    '[dn]',
    'CN = $ENV::LEAF_DNS',
    '[leaf]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = serverAuth,clientAuth',
    'subjectAltName = URI:$ENV::LEAF_URI,DNS:$ENV::LEAF_DNS',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
    '',
  ].join('\n');
}

/**
 * The shell loop the openssl baseline times: `n` leaves, one process each, keys and certificates written as a CA
 * operator would.
 */
export function opensslLoop(n: number, issuer: { cert: string; key: string }, dir: string): string {
  const conf = path.join(dir, 'leaf.cnf');
  fs.writeFileSync(conf, opensslLeafConfig());
  return `set -e; cd '${dir}'; i=0; while [ $i -lt ${n} ]; do
LEAF_DNS=svc-$i.region-01.mesh.example LEAF_URI=spiffe://region-01.mesh.example/svc-$i \
openssl req -x509 -new -config '${conf}' \
-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key-$i.pem -out cert-$i.pem \
-days ${LEAF_DAYS} -CA '${issuer.cert}' -CAkey '${issuer.key}' 2>/dev/null
i=$((i+1)); done`;
}

async function x509Loop(n: number, issuerDir: string): Promise<{ n: number; seconds: number; sample: string }> {
  await import(fromCore.resolve('reflect-metadata'));
  const x509 = (await import(fromCore.resolve('@peculiar/x509'))) as typeof import('@peculiar/x509');
  const crypto = webcrypto as unknown as Crypto;
  x509.cryptoProvider.set(crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const issuerCert = new x509.X509Certificate(fs.readFileSync(path.join(issuerDir, 'issuer.pem'), 'utf8'));
  const pkcs8 = Buffer.from(
    fs.readFileSync(path.join(issuerDir, 'issuer.key'), 'utf8').replace(/-----[^-]+-----|\s/g, ''),
    'base64',
  );
  const signingKey = await crypto.subtle.importKey('pkcs8', pkcs8, alg, false, ['sign']);
  const issuerPublic = await issuerCert.publicKey.export(alg, ['verify'], crypto);
  let sample = '';
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const keys = (await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
    const dns = `svc-${i}.region-01.mesh.example`;
    const now = Date.now();
    const serial = randomBytes(16);
    serial[0]! &= 0x7f;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial.toString('hex'),
      subject: `CN=${dns}`,
      issuer: issuerCert.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + LEAF_DAYS * DAY_MS),
      publicKey: keys.publicKey,
      signingKey,
      signingAlgorithm: alg,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(issuerPublic),
        new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], false),
        new x509.SubjectAlternativeNameExtension(
          [
            { type: 'url', value: `spiffe://region-01.mesh.example/svc-${i}` },
            { type: 'dns', value: dns },
          ],
          false,
        ),
      ],
    });
    const pem = cert.toString('pem');
    // The key a service needs, as PEM: what renew writes to key.pem.
    const key = x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    if (i === 0) sample = pem;
    if (!pem || !key) throw new Error('empty output');
  }
  return { n, seconds: Number(process.hrtime.bigint() - start) / 1e9, sample };
}

/**
 * Worker body (CommonJS, eval'd, so no loader is needed in the thread): keygen + sign for `ms` after the start signal;
 * posts its count.
 */
const CEILING_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const issuer = crypto.createPrivateKey(workerData.issuerKey);
const tbs = crypto.randomBytes(workerData.tbsBytes);
parentPort.once('message', () => {
  const end = process.hrtime.bigint() + BigInt(workerData.ms) * 1000000n;
  let n = 0;
  do {
    for (let j = 0; j < 50; j++, n++) {
      crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      tbs[n % tbs.length] ^= 1;
      crypto.sign('sha256', tbs, issuer);
    }
  } while (process.hrtime.bigint() < end);
  parentPort.postMessage(n);
});
parentPort.postMessage('ready');
`;

async function ceiling(
  ms: number,
  threads: number,
  tbsBytes: number,
  issuerDir: string,
): Promise<{ n: number; seconds: number; threads: number }> {
  const issuerKey = fs.readFileSync(path.join(issuerDir, 'issuer.key'), 'utf8');
  const workers = Array.from(
    { length: threads },
    () => new Worker(CEILING_WORKER, { eval: true, workerData: { ms, tbsBytes, issuerKey } }),
  );
  // Timed from the moment every thread is loaded and told to start to the moment the last one finishes.
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((ok, bad) => {
          w.once('message', () => ok());
          w.once('error', bad);
        }),
    ),
  );
  const start = process.hrtime.bigint();
  const counts = await Promise.all(
    workers.map(
      (w) =>
        new Promise<number>((ok, bad) => {
          w.once('message', (c: number) => ok(c));
          w.once('error', bad);
          w.postMessage('go');
        }),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await Promise.all(workers.map((w) => w.terminate()));
  return { n: counts.reduce((a, b) => a + b, 0), seconds, threads };
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const [kind, ...rest] = process.argv.slice(2);
  const out =
    kind === 'x509'
      ? await x509Loop(Number(rest[0]), rest[1]!)
      : kind === 'ceiling'
        ? await ceiling(Number(rest[0]), Number(rest[1]), Number(rest[2]), rest[3]!)
        : undefined;
  if (!out) {
    process.stderr.write('usage: baselines.ts x509 N ISSUER_DIR | ceiling MS THREADS TBS_BYTES ISSUER_DIR\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
