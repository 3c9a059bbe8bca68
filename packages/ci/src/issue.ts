/**
 * The shell side of issuing: opening the keys a scope's procedures need, and
 * writing minted leaves into the output directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  TrellisError,
  certificatePem,
  crlSetOf,
  liveIntermediates,
  releaseFor,
  type Mesh,
  type MintedLeaf,
  type ScopeKeys,
  nodeCryptoSeam,
  type CryptoSeam,
} from '@trellis/core';
import { isMachineFailure } from '@trellis/core/shell';
import { openIntermediate } from './signer.js';
import { replaceFile } from './out-write.js';
import { leafFilesOf, makeKeyDir, writeLeafDir } from './leaf-files.js';

/** What renew writes once per scope beside the leaf directories: `<out>/<scope>/<file>`. */
export const SCOPE_OUT_FILES = ['trust.pem', 'trust.openssl.pem', 'crl.pem'] as const;

/**
 * Writes each leaf's directory: cert, chain (leaf + intermediate) and key
 * (0600), and the scope's trust and CRL files (`scopeOutput`). `mesh` is the
 * one that signed; `after` the store as this run leaves it, whose release the
 * scope files must be. Called before the store records the leaves, and made
 * durable by `outputBarrier` before it does: a crash in between re-mints, it
 * never records a leaf whose key was lost.
 */
export function writeLeafOutput(
  mesh: Mesh,
  after: Mesh,
  scope: string,
  leaves: MintedLeaf[],
  outDir: string,
  opts: { leafFiles: boolean } = { leafFiles: true },
): string[] {
  if (!leaves.length) return [];
  const inter = certificatePem(mesh.material.get(scope)!.intermediate!);
  const scopeDir = path.join(outDir, scope);
  const written: string[] = [];
  try {
    makeKeyDir(scopeDir); // inside the output directory prepareOutDir made
    written.push(...scopeOutput(after, scope, outDir));
    for (const l of leaves) {
      // The worker threads that signed them wrote them already when `leafFiles` is false.
      // Host-held leaves are signed in this thread, so no worker wrote them.
      if (opts.leafFiles || l.keyPem === undefined) writeLeafDir(scopeDir, l, inter);
      for (const f of leafFilesOf(l)) written.push(path.join(scopeDir, l.service, f));
    }
  } catch (e) {
    throw outputFailure(e, outDir);
  }
  return written;
}

/**
 * Brings `<out>/<scope>/{trust.pem,trust.openssl.pem,crl.pem}` to exactly the
 * scope's release (releaseFor: what deploy ships), writing only what differs
 * and removing a crl.pem the release no longer has. Returns what it wrote.
 */
export function scopeOutput(mesh: Mesh, scope: string, outDir: string): string[] {
  const release = releaseFor(mesh, scope);
  const written: string[] = [];
  for (const name of SCOPE_OUT_FILES) {
    const file = path.join(outDir, scope, name);
    const want = release[name];
    let have: string | undefined;
    try {
      have = fs.readFileSync(file, 'utf8');
    } catch {
      have = undefined; // not there yet
    }
    if (have === want) continue;
    if (want === undefined) fs.rmSync(file, { force: true });
    else {
      replaceFile(file, want);
      written.push(file);
    }
  }
  return written;
}

/**
 * The scopes of `scopes` that already have a directory in the output: a renew that mints nothing for them still keeps
 * their release current there.
 */
export function scopesInOutput(outDir: string, scopes: string[]): string[] {
  return scopes.filter((s) => {
    try {
      return fs.lstatSync(path.join(outDir, s)).isDirectory();
    } catch {
      return false;
    }
  });
}

/**
 * A failed write into the output directory: a full disk is not bad usage (runMain reports it, exit 1), a bad --out is.
 */
export function outputFailure(e: unknown, outDir: string): unknown {
  if (isMachineFailure(e) || e instanceof TrellisError) return e;
  return new TrellisError('usage', `cannot write leaves under ${outDir}: ${(e as Error).message}`, {
    hint: 'point --out at a writable directory',
  });
}

/** Opens the scope's signing key and every live key its crl.pem needs (each checked against its certificate). */
export async function openScopeKeys(
  mesh: Mesh,
  scope: string,
  ids: string[],
  seam: CryptoSeam = nodeCryptoSeam,
): Promise<ScopeKeys> {
  const signer = await openIntermediate(mesh, scope, ids, 'active', seam);
  const set = crlSetOf(liveIntermediates(mesh, scope));
  const signers = [...new Set([...set.leaf, ...set.anchor])];
  const crl = await Promise.all(
    signers.map(async (l) => ({
      ...(l.role === 'active' ? signer : await openIntermediate(mesh, scope, ids, l.role, seam)),
      leafCrl: set.leaf.includes(l),
      anchorCrl: set.anchor.includes(l),
    })),
  );
  return { signer, crl };
}
