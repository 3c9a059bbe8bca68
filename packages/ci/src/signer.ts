import fs from 'node:fs';
import {
  TrellisError, activeIntermediate, decryptWith, fingerprint, importSigningKey, paths, publicKeyDerOf, requireIdentities, spkiDer,
  type Mesh, type SigningIntermediate,
} from '@trellis/core';

export function ciIdentities(): string[] {
  return requireIdentities('ci', process.env, (p) => fs.readFileSync(p, 'utf8'));
}

/** Opens a scope's intermediate key with the CI identity, refusing a key that does not match its certificate. */
export async function openIntermediate(mesh: Mesh, scope: string, ids: string[]): Promise<SigningIntermediate> {
  const cert = activeIntermediate(mesh, scope);
  const file = paths.intermediateKey(scope);
  const ct = mesh.material.get(scope)?.keyAge;
  if (ct === undefined) throw new TrellisError('corrupt-store', 'the encrypted intermediate key is missing', { file, hint: 'restore it from git' });
  const pem = await decryptWith(ids, ct, file, 'ci');
  if (!publicKeyDerOf(pem).equals(spkiDer(cert))) {
    throw new TrellisError('key-mismatch', `the key does not match intermediate ${fingerprint(cert)}`, { file, hint: 'restore bundles/<scope>/ from git; if it was tampered with, run trellis-root recover' });
  }
  const { key, algorithm } = await importSigningKey(pem);
  return { scope, cert, key, algorithm };
}
