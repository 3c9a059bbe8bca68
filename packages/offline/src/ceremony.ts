/**
 * Root-signing code: minting the root and the intermediates under it, and
 * opening the root key. It lives only in @trellis/offline so that nothing
 * reachable from trellis-ci can sign with the root (a test holds this).
 */
import {
  PROFILES, TrellisError, decryptWith, exportPrivateKeyPem, extensionsFor, fingerprint, importSigningKey, paths, permittedNamesFor,
  publicKeyDerOf, randomSerial, signCertificate, spkiDer, validityWithin,
  type Certificate, type CryptoSeam, type KeyAlgorithm, type Mesh, type MeshConfig,
} from '@trellis/core';

export interface MintedCa {
  cert: Certificate;
  keyPem: string;
}

export interface RootSigner {
  cert: Certificate;
  key: CryptoKey;
  algorithm: KeyAlgorithm;
}

/** `YYYYMMDDTHHMMZ`: tells generations of a CA apart in its subject. */
const stamp = (now: Date) => now.toISOString().slice(0, 16).replace(/[-:]/g, '') + 'Z';

export async function mintRoot(config: Pick<MeshConfig, 'mesh' | 'algorithms' | 'ttl'>, now: Date, seam: CryptoSeam): Promise<MintedCa> {
  const keys = await seam.generateKeyPair(config.algorithms.root);
  const name = `O=${config.mesh}, OU=trellis, CN=${config.mesh} root ${stamp(now)}`;
  const cert = await signCertificate({
    serial: randomSerial(seam),
    subject: name,
    issuer: name,
    ...validityWithin('root', now, config.ttl.root),
    subjectPublicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: config.algorithms.root,
    extensions: await extensionsFor(PROFILES.root, { subjectPublicKey: keys.publicKey }),
  });
  return { cert, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** A scope's intermediate: pathLen 0 and critical name constraints to the scope's own trust domain. */
export async function mintIntermediate(scope: string, config: MeshConfig, root: RootSigner, now: Date, seam: CryptoSeam): Promise<MintedCa> {
  const keys = await seam.generateKeyPair(config.algorithms.intermediate);
  const cert = await signCertificate({
    serial: randomSerial(seam),
    subject: `O=${config.mesh}, OU=${scope}, CN=${scope} intermediate ${stamp(now)}`,
    issuer: root.cert.subject,
    ...validityWithin('intermediate', now, config.ttl.intermediate, { notAfter: root.cert.notAfter, label: 'the root' }),
    subjectPublicKey: keys.publicKey,
    signingKey: root.key,
    signingAlgorithm: root.algorithm,
    extensions: await extensionsFor(PROFILES.intermediate, {
      subjectPublicKey: keys.publicKey,
      issuerPublicKey: root.cert.publicKey,
      permitted: permittedNamesFor(scope, config.trustDomain),
    }),
  });
  return { cert, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** Opens the root key with the offline identity: the proof of custody every root operation starts with. */
export async function openRootKey(mesh: Mesh, rootIdentities: string[]): Promise<RootSigner> {
  if (!mesh.root || mesh.rootKeyAge === undefined) {
    throw new TrellisError('corrupt-store', 'the root certificate or its encrypted key is missing', { file: paths.rootKey, hint: 'restore bundles/root/ from git' });
  }
  const pem = await decryptWith(rootIdentities, mesh.rootKeyAge, paths.rootKey, 'root');
  if (!publicKeyDerOf(pem).equals(spkiDer(mesh.root))) {
    throw new TrellisError('key-mismatch', `the root key does not match root.pem (${fingerprint(mesh.root)})`, { file: paths.rootKey, hint: 'restore bundles/root/ from git history' });
  }
  const { key, algorithm } = await importSigningKey(pem);
  return { cert: mesh.root, key, algorithm };
}
