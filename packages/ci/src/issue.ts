/**
 * The shell side of issuing: opening the keys a scope's procedures need, and
 * writing minted leaves into the output directory.
 */
import path from 'node:path';
import { TrellisError, certificatePem, crlSetOf, isMachineFailure, liveIntermediates, scopeTrust, trustOpensslPem, trustPem, type Mesh, type MintedLeaf, type ScopeKeys } from '@trellis/core';
import { openIntermediate } from './signer.js';
import { replaceFile } from './out-write.js';
import { LEAF_FILES, makeKeyDir, writeLeafDir } from './leaf-files.js';

/** What renew writes once per scope beside the leaf directories: `<out>/<scope>/<file>`. */
export const SCOPE_OUT_FILES = ['trust.pem', 'trust.openssl.pem', 'crl.pem'] as const;

/**
 * Writes the scope's trust bundles and CRL once (`<out>/<scope>/`) and each
 * leaf's directory: cert, chain (leaf + intermediate) and key (0600). Called
 * before the store records the leaves, and made durable by `outputBarrier`
 * before it does: a crash in between re-mints, it never records a leaf whose
 * key was lost.
 */
export function writeLeafOutput(mesh: Mesh, scope: string, leaves: MintedLeaf[], outDir: string, crlPem: string | undefined, opts: { leafFiles: boolean } = { leafFiles: true }): string[] {
  if (!leaves.length) return [];
  const trust = scopeTrust(mesh, scope);
  const inter = certificatePem(mesh.material.get(scope)!.intermediate!);
  const scopeDir = path.join(outDir, scope);
  const written: string[] = [];
  try {
    makeKeyDir(scopeDir); // inside the output directory prepareOutDir made
    const scopeFiles: [string, string | undefined][] = [['trust.pem', trustPem(trust)], ['trust.openssl.pem', trustOpensslPem(trust)], ['crl.pem', crlPem]];
    for (const [name, content] of scopeFiles) {
      if (content === undefined) continue;
      replaceFile(path.join(scopeDir, name), content);
      written.push(path.join(scopeDir, name));
    }
    for (const l of leaves) {
      // The worker threads that signed them wrote them already when `leafFiles` is false.
      if (opts.leafFiles) writeLeafDir(scopeDir, l, inter);
      for (const f of LEAF_FILES) written.push(path.join(scopeDir, l.service, f));
    }
  } catch (e) {
    throw outputFailure(e, outDir);
  }
  return written;
}

/** A failed write into the output directory: a full disk is not bad usage (runMain reports it, exit 1), a bad --out is. */
export function outputFailure(e: unknown, outDir: string): unknown {
  if (isMachineFailure(e) || e instanceof TrellisError) return e;
  return new TrellisError('usage', `cannot write leaves under ${outDir}: ${(e as Error).message}`, { hint: 'point --out at a writable directory' });
}

/** Opens the scope's signing key and every live key its crl.pem needs (each checked against its certificate). */
export async function openScopeKeys(mesh: Mesh, scope: string, ids: string[]): Promise<ScopeKeys> {
  const signer = await openIntermediate(mesh, scope, ids, 'active');
  const set = crlSetOf(liveIntermediates(mesh, scope));
  const signers = [...new Set([...set.leaf, ...set.anchor])];
  const crl = await Promise.all(signers.map(async (l) => ({
    ...(l.role === 'active' ? signer : await openIntermediate(mesh, scope, ids, l.role)), leafCrl: set.leaf.includes(l), anchorCrl: set.anchor.includes(l),
  })));
  return { signer, crl };
}
