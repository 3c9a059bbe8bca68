import fs from 'node:fs';
import {
  TrellisError, activeIntermediate, decryptWith, fingerprint, importSigningKey, paths, permittedNamesFor, profileViolations, publicKeyDerOf,
  requireIdentities, signedBy, spkiDer,
  type Mesh, type SigningIntermediate,
} from '@trellis/core';

export function ciIdentities(): string[] {
  return requireIdentities('ci', process.env, (p) => fs.readFileSync(p, 'utf8'));
}

/** Opens a scope's intermediate key with the CI identity, refusing a key that does not match its certificate. */
export async function openIntermediate(mesh: Mesh, scope: string, ids: string[]): Promise<SigningIntermediate> {
  const cert = activeIntermediate(mesh, scope);
  // Never sign under an intermediate that does not chain to a trusted root or has drifted from its profile.
  const chained = (await Promise.all(mesh.roots.map((r) => signedBy(cert, r)))).some(Boolean);
  const violations = profileViolations(cert, 'intermediate', { permitted: permittedNamesFor(scope, mesh.config.trustDomain) });
  if (!chained || violations.length) {
    throw new TrellisError('verification-failed', chained ? `intermediate violates its profile: ${violations.join('; ')}` : 'intermediate is not signed by any root in roots.pem', {
      file: paths.intermediate(scope), hint: 'restore it from git and run trellis-ci verify; if it was tampered with, treat the scope as compromised',
    });
  }
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
