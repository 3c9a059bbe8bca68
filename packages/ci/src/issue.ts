/**
 * The shell side of issuing: opening the keys a scope's procedures need, and
 * writing minted leaves into the output directory.
 */
import path from 'node:path';
import { TrellisError, certificatePem, isMachineFailure, liveIntermediates, scopeTrust, trustOpensslPem, trustPem, writeFileAtomic, type Mesh, type MintedLeaf, type ScopeKeys } from '@trellis/core';
import { openIntermediate } from './signer.js';

/**
 * Writes each leaf's directory: cert, chain (leaf + intermediate), key (0600)
 * and the scope's trust bundles. Called before the store records the leaves:
 * a crash in between re-mints, it never records a leaf whose key was lost.
 */
export function writeLeafOutput(mesh: Mesh, scope: string, leaves: MintedLeaf[], outDir: string, crlPem: string | undefined): void {
  const trust = scopeTrust(mesh, scope);
  const inter = certificatePem(mesh.material.get(scope)!.intermediate!);
  for (const l of leaves) {
    const dir = path.join(outDir, scope, l.service);
    const files: [string, string, number?][] = [
      ['key.pem', l.keyPem, 0o600], ['cert.pem', l.certPem], ['chain.pem', l.certPem + inter],
      ['trust.pem', trustPem(trust)], ['trust.openssl.pem', trustOpensslPem(trust)], ...(crlPem === undefined ? [] : [['crl.pem', crlPem] as [string, string]]),
    ];
    try {
      for (const [name, content, mode] of files) writeFileAtomic(path.join(dir, name), content, mode);
    } catch (e) {
      if (isMachineFailure(e)) throw e; // a full disk is not bad usage: runMain reports it (exit 1)
      throw new TrellisError('usage', `cannot write leaves under ${outDir}: ${(e as Error).message}`, { hint: 'point --out at a writable directory' });
    }
  }
}

/** Opens the scope's signing key and every live key its crl.pem needs (each checked against its certificate). */
export async function openScopeKeys(mesh: Mesh, scope: string, ids: string[]): Promise<ScopeKeys> {
  const signer = await openIntermediate(mesh, scope, ids, 'active');
  const live = liveIntermediates(mesh, scope).filter((l) => l.issuing || l.anchored);
  const crl = await Promise.all(live.map(async (l) => ({ ...(l.role === 'active' ? signer : await openIntermediate(mesh, scope, ids, l.role)), issuing: l.issuing, anchored: l.anchored })));
  return { signer, crl };
}
