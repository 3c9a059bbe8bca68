/**
 * The shell side of issuing: opening the keys a scope's procedures need, and
 * writing minted leaves into the output directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TrellisError, certificatePem, isMachineFailure, liveIntermediates, scopeTrust, trustOpensslPem, trustPem, type Mesh, type MintedLeaf, type ScopeKeys } from '@trellis/core';
import { openIntermediate } from './signer.js';
import { replaceFile } from './out-write.js';

/** What renew writes once per scope beside the leaf directories: `<out>/<scope>/<file>`. */
export const SCOPE_OUT_FILES = ['trust.pem', 'trust.openssl.pem', 'crl.pem'] as const;

/**
 * Writes the scope's trust bundles and CRL once (`<out>/<scope>/`) and each
 * leaf's directory: cert, chain (leaf + intermediate) and key (0600). Called
 * before the store records the leaves, and made durable by `outputBarrier`
 * before it does: a crash in between re-mints, it never records a leaf whose
 * key was lost.
 */
export function writeLeafOutput(mesh: Mesh, scope: string, leaves: MintedLeaf[], outDir: string, crlPem: string | undefined): void {
  if (!leaves.length) return;
  const trust = scopeTrust(mesh, scope);
  const inter = certificatePem(mesh.material.get(scope)!.intermediate!);
  const scopeDir = path.join(outDir, scope);
  try {
    fs.mkdirSync(scopeDir, { recursive: true });
    replaceFile(path.join(scopeDir, 'trust.pem'), trustPem(trust));
    replaceFile(path.join(scopeDir, 'trust.openssl.pem'), trustOpensslPem(trust));
    if (crlPem !== undefined) replaceFile(path.join(scopeDir, 'crl.pem'), crlPem);
    for (const l of leaves) {
      const dir = path.join(scopeDir, l.service);
      try {
        fs.mkdirSync(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      replaceFile(path.join(dir, 'key.pem'), l.keyPem, 0o600);
      replaceFile(path.join(dir, 'cert.pem'), l.certPem);
      replaceFile(path.join(dir, 'chain.pem'), l.certPem + inter);
    }
  } catch (e) {
    if (isMachineFailure(e)) throw e; // a full disk is not bad usage: runMain reports it (exit 1)
    throw new TrellisError('usage', `cannot write leaves under ${outDir}: ${(e as Error).message}`, { hint: 'point --out at a writable directory' });
  }
}

/** Opens the scope's signing key and every live key its crl.pem needs (each checked against its certificate). */
export async function openScopeKeys(mesh: Mesh, scope: string, ids: string[]): Promise<ScopeKeys> {
  const signer = await openIntermediate(mesh, scope, ids, 'active');
  const live = liveIntermediates(mesh, scope).filter((l) => l.issuing || l.anchored);
  const crl = await Promise.all(live.map(async (l) => ({ ...(l.role === 'active' ? signer : await openIntermediate(mesh, scope, ids, l.role)), issuing: l.issuing, anchored: l.anchored })));
  return { signer, crl };
}
