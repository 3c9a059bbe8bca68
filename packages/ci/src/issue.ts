/**
 * What renew and revoke share: minting a scope's leaves into the output
 * directory, the scope's leaf CRL, and the records that say so.
 */
import path from 'node:path';
import {
  BACKDATE_MS, TrellisError, certificatePem, iso, crlEntriesFor, scopeTrust, crlStaleness, mintLeaf, nodeCryptoSeam, paths, scopeDef, signAnchorCrl, signCrl, trustOpensslPem, trustPem,
  isMachineFailure, writeFileAtomic, type Certificate, type Created, type Mesh, type MintedLeaf, type SigningIntermediate,
} from '@trellis/core';
import { openIntermediate } from './signer.js';

export async function mintScopeLeaves(mesh: Mesh, scope: string, services: string[], signer: SigningIntermediate, now: Date): Promise<MintedLeaf[]> {
  const def = scopeDef(mesh, scope);
  const out: MintedLeaf[] = [];
  for (const name of services) {
    const service = def.services.find((s) => s.name === name)!;
    out.push(await mintLeaf({
      scope, service, trustDomain: mesh.config.trustDomain, ttl: service.ttl ?? mesh.config.ttl.leaf, algorithm: mesh.config.algorithms.leaf, now,
    }, signer, nodeCryptoSeam));
  }
  return out;
}

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

export function leafCreated(l: MintedLeaf): Created {
  return { kind: 'leaf', fingerprint: l.record.fingerprint, serial: l.record.serial, subject: l.cert.subject, notAfter: iso(l.record.notAfter) };
}

/** Why the scope's crl.pem must be re-signed now, or undefined. */
export function scopeCrlStaleness(mesh: Mesh, scope: string, now: Date): Promise<string | undefined> {
  const m = mesh.material.get(scope)!;
  const defined = (cs: (Certificate | undefined)[]) => cs.filter((c): c is Certificate => c !== undefined);
  return crlStaleness(m.crlPem, defined([m.intermediate, m.previous]), defined([m.previous, m.intermediate, m.next]), m.state!.revoked, now);
}

export interface CrlSigners {
  active: SigningIntermediate;
  previous?: SigningIntermediate;
  next?: SigningIntermediate;
}

/** Opens every intermediate key the scope's crl.pem needs. */
export async function openCrlSigners(mesh: Mesh, scope: string, ids: string[], active: SigningIntermediate): Promise<CrlSigners> {
  const m = mesh.material.get(scope)!;
  return {
    active,
    ...(m.previous ? { previous: await openIntermediate(mesh, scope, ids, 'previous') } : {}),
    ...(m.next ? { next: await openIntermediate(mesh, scope, ids, 'next') } : {}),
  };
}

/**
 * The scope's crl.pem: a leaf CRL from each intermediate whose leaves may be
 * live (active; previous during a switch), and an anchor CRL for each
 * intermediate a bundle trusts (previous, active, next).
 */
export async function scopeCrlWrite(mesh: Mesh, scope: string, signers: CrlSigners, now: Date): Promise<{ path: string; content: string }> {
  const revoked = mesh.material.get(scope)!.state!.revoked;
  const window = { thisUpdate: new Date(now.getTime() - BACKDATE_MS), nextUpdate: new Date(now.getTime() + mesh.config.crl.leaf) };
  const issuing = [signers.active, signers.previous].filter((s): s is SigningIntermediate => s !== undefined);
  const anchored = [signers.previous, signers.active, signers.next].filter((s): s is SigningIntermediate => s !== undefined);
  const crls = [
    ...(await Promise.all(issuing.map((s) => signCrl({ issuer: s.cert, key: s.key, algorithm: s.algorithm, ...window, entries: crlEntriesFor(s.cert, revoked, now) })))),
    ...(await Promise.all(anchored.map((s) => signAnchorCrl({ issuer: s.cert, key: s.key, algorithm: s.algorithm, ...window })))),
  ];
  return { path: paths.scopeCrl(scope), content: crls.join('') };
}
