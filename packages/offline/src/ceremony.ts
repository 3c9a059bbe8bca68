/**
 * Root-signing code: minting the root and the intermediates under it, and
 * opening the root key. It lives only in @trellis/offline so that nothing
 * reachable from trellis-ci can sign with the root (a test holds this).
 */
import {
  BACKDATE_MS,
  PROFILES,
  TrellisError,
  caStamp,
  intermediatePlan,
  assertLedgerCounts,
  assertSignsAt,
  crlEntriesFor,
  decryptWith,
  exportPrivateKeyPem,
  extensionsFor,
  fingerprint,
  caKeyFromPem,
  type CaKey,
  keyMatchesCert,
  paths,
  permittedNamesFor,
  randomSerial,
  validityWithin,
  type Certificate,
  type CryptoSeam,
  type KeyAlgorithm,
  type Mesh,
  type MeshConfig,
  type Revocation,
  nodeCryptoSeam,
} from '@trellis/core';
import { generateOnToken, openTokenKey, type TokenKey } from './token.js';

export interface MintedCa {
  cert: Certificate;
  keyPem: string;
}

/** An opened root key: in memory from its age file, or a handle to it on a PKCS#11 token. */
export type RootSigner = CaKey<'root'>;

/**
 * A new root: its key in a file (keyPem, for the caller to encrypt) or, given `tokenUri`, generated on that PKCS#11
 * token (`signer`, no keyPem).
 */
export async function mintRoot(
  config: Pick<MeshConfig, 'mesh' | 'algorithms' | 'ttl'>,
  now: Date,
  seam: CryptoSeam,
): Promise<MintedCa>;
export async function mintRoot(
  config: Pick<MeshConfig, 'mesh' | 'algorithms' | 'ttl'>,
  now: Date,
  seam: CryptoSeam,
  tokenUri: string,
): Promise<MintedCa & { signer: RootSigner }>;
export async function mintRoot(
  config: Pick<MeshConfig, 'mesh' | 'algorithms' | 'ttl'>,
  now: Date,
  seam: CryptoSeam,
  tokenUri?: string,
): Promise<MintedCa & { signer?: RootSigner }> {
  const keys = tokenUri
    ? ((await generateOnToken(tokenUri, config.algorithms.root)) as unknown as CryptoKeyPair)
    : await seam.generateKeyPair(config.algorithms.root);
  const name = `O=${config.mesh}, OU=trellis, CN=${config.mesh} root ${caStamp(now)}`;
  const cert = await seam.signCertificate({
    serial: randomSerial(seam),
    subject: name,
    issuer: name,
    ...validityWithin('root', now, config.ttl.root),
    subjectPublicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: config.algorithms.root,
    extensions: await extensionsFor(PROFILES.root, { subjectPublicKey: keys.publicKey }),
  });
  if (tokenUri)
    return {
      cert,
      keyPem: '',
      signer: tokenSigner(cert, keys.privateKey as unknown as TokenKey, config.algorithms.root),
    };
  return { cert, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

// The token is the seam's other implementation for a root: its key never leaves it, so it signs data itself.
const tokenSigner = (cert: Certificate, key: TokenKey, algorithm: KeyAlgorithm): RootSigner => ({
  role: 'root',
  cert,
  key: key as unknown as CryptoKey,
  algorithm,
  signData: (data: Uint8Array) => key.signDer(data),
});

/**
 * A scope's intermediate: pathLen 0 and critical name constraints to the scope's own trust domain.
 * Its subject, validity and constraints are `intermediatePlan`'s, the summary the custodian was shown.
 */
export async function mintIntermediate(
  scope: string,
  config: MeshConfig,
  root: RootSigner,
  now: Date,
  seam: CryptoSeam,
): Promise<MintedCa> {
  const plan = intermediatePlan(scope, config, root.cert, now);
  const keys = await seam.generateKeyPair(plan.algorithm);
  const cert = await seam.signCertificate({
    serial: randomSerial(seam),
    subject: plan.subject,
    issuer: plan.issuer,
    notBefore: plan.notBefore,
    notAfter: plan.notAfter,
    subjectPublicKey: keys.publicKey,
    signingKey: root.key,
    signingAlgorithm: root.algorithm,
    extensions: await extensionsFor(PROFILES.intermediate, {
      subjectPublicKey: keys.publicKey,
      issuerPublicKey: root.cert.publicKey,
      permitted: plan.permitted,
    }),
  });
  return { cert, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/**
 * Opens a root key with the offline identity and checks it is the key of `cert`: the proof of custody every root
 * operation starts with.
 */
async function openRoot(
  cert: Certificate | undefined,
  keyAge: string | undefined,
  file: string,
  certFile: string,
  ids: string[],
  now: Date,
  keyUri?: string,
  seam: CryptoSeam = nodeCryptoSeam,
): Promise<RootSigner> {
  if (!cert || (keyAge === undefined && keyUri === undefined)) {
    throw new TrellisError('corrupt-store', 'the root certificate or its encrypted key is missing', {
      file,
      hint: 'restore bundles/root/ from git',
    });
  }
  // An expired root vouches for nothing (not a successor, an intermediate, a CRL); before its notBefore it cannot have
  // signed anything.
  if (cert.notAfter <= now) {
    throw new TrellisError(
      'issuer-expiring',
      `the root ${fingerprint(cert)} expired at ${cert.notAfter.toISOString()}`,
      {
        file: certFile,
        hint:
          'a root rotation must finish before the old root expires; past that, stand up a new mesh (trellis-root ' +
          'init) and re-establish trust in it out of band',
      },
    );
  }
  assertSignsAt(
    {
      label: `the root ${fingerprint(cert)}`,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      file: certFile,
      tier: 'root',
    },
    now,
  );
  if (keyUri !== undefined) {
    const { key, algorithm } = openTokenKey(keyUri, cert, certFile);
    return tokenSigner(cert, key, algorithm);
  }
  const pem = await decryptWith(ids, keyAge!, file, 'root');
  if (!keyMatchesCert(pem, cert)) {
    throw new TrellisError('key-mismatch', `the key does not match ${certFile} (${fingerprint(cert)})`, {
      file,
      hint: 'restore bundles/root/ from git history',
    });
  }
  return caKeyFromPem('root', cert, pem, seam);
}

/** A token root opens with its PIN (root.key.uri); a file root with the offline identity. */
export function openRootKey(
  mesh: Mesh,
  rootIdentities: string[],
  now: Date,
  seam: CryptoSeam = nodeCryptoSeam,
): Promise<RootSigner> {
  assertLedgerCounts(mesh, 'root');
  return openRoot(
    mesh.root,
    mesh.rootKeyAge,
    paths.rootKey,
    paths.rootCert,
    rootIdentities,
    now,
    mesh.rootKeyUri,
    seam,
  );
}

/** During a root overlap, the retiring root's key too (for its CRL). */
export async function openRootKeys(mesh: Mesh, rootIdentities: string[], now: Date): Promise<RootSigner[]> {
  const active = await openRootKey(mesh, rootIdentities, now);
  if (!mesh.previousRoot) return [active];
  const uri = mesh.previousRootKeyUri;
  return [
    active,
    await openRoot(
      mesh.previousRoot,
      mesh.previousRootKeyAge,
      uri ? paths.rootPreviousKeyUri : paths.rootPreviousKey,
      paths.rootPrevious,
      rootIdentities,
      now,
      uri,
    ),
  ];
}

/**
 * The same intermediate under a new root: same subject, key, name constraints
 * and expiry, a new serial. Leaves it signed keep verifying under either.
 */
export async function resignIntermediate(
  cert: Certificate,
  scope: string,
  config: MeshConfig,
  root: RootSigner,
  now: Date,
  seam: CryptoSeam,
): Promise<Certificate> {
  const publicKey = await cert.publicKey.export();
  const { notBefore } = validityWithin('intermediate', now, cert.notAfter.getTime() - now.getTime(), {
    notBefore: root.cert.notBefore,
    notAfter: root.cert.notAfter,
    label: 'the new root',
    file: paths.rootCert,
  });
  return seam.signCertificate({
    serial: randomSerial(seam),
    subject: cert.subject,
    issuer: root.cert.subject,
    notBefore,
    notAfter: cert.notAfter,
    subjectPublicKey: publicKey,
    signingKey: root.key,
    signingAlgorithm: root.algorithm,
    extensions: await extensionsFor(PROFILES.intermediate, {
      subjectPublicKey: publicKey,
      issuerPublicKey: root.cert.publicKey,
      permitted: permittedNamesFor(scope, config.trustDomain),
    }),
  });
}

/**
 * The link certificate: the new root's name and key, signed by the old root, for consumers that only know the old one.
 */
export async function linkCertificate(
  newRoot: Certificate,
  oldRoot: RootSigner,
  now: Date,
  seam: CryptoSeam,
): Promise<Certificate> {
  const publicKey = await newRoot.publicKey.export();
  const notAfter = newRoot.notAfter < oldRoot.cert.notAfter ? newRoot.notAfter : oldRoot.cert.notAfter;
  return seam.signCertificate({
    serial: randomSerial(seam),
    subject: newRoot.subject,
    issuer: oldRoot.cert.subject,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter,
    subjectPublicKey: publicKey,
    signingKey: oldRoot.key,
    signingAlgorithm: oldRoot.algorithm,
    extensions: await extensionsFor(
      { ...PROFILES.root, authorityKeyId: true },
      { subjectPublicKey: publicKey, issuerPublicKey: oldRoot.cert.publicKey },
    ),
  });
}

/** `bundles/root/crl.pem`: one CRL per root trusted now, each listing the intermediates it revoked. */
export async function rootCrlPem(
  signers: RootSigner[],
  revoked: Revocation[],
  now: Date,
  validity: number,
  seam: CryptoSeam,
): Promise<string> {
  const crls = await Promise.all(
    signers.map((s) =>
      seam.signCrl({
        issuer: s.cert,
        key: s.key,
        algorithm: s.algorithm,
        thisUpdate: new Date(now.getTime() - BACKDATE_MS),
        nextUpdate: new Date(now.getTime() + validity),
        entries: crlEntriesFor(s.cert, revoked, now),
      }),
    ),
  );
  return crls.join('');
}
