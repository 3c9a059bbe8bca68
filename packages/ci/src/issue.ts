/**
 * What renew and revoke share: minting a scope's leaves into the output
 * directory, the scope's leaf CRL, and the records that say so.
 */
import path from 'node:path';
import {
  BACKDATE_MS, TrellisError, certificatePem, crlEntriesFor, scopeTrust, crlStaleness, mintLeaf, nodeCryptoSeam, paths, scopeDef, signCrl, trustOpensslPem, trustPem,
  writeFileAtomic, type Created, type Mesh, type MintedLeaf, type SigningIntermediate,
} from '@trellis/core';

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
      throw new TrellisError('usage', `cannot write leaves under ${outDir}: ${(e as Error).message}`, { hint: 'point --out at a writable directory' });
    }
  }
}

export function leafCreated(l: MintedLeaf): Created {
  return { kind: 'leaf', fingerprint: l.record.fingerprint, serial: l.record.serial, subject: l.cert.subject, notAfter: l.record.notAfter.toISOString().replace(/\.\d{3}Z$/, 'Z') };
}

/** The intermediates whose leaves may be live, each of which signs a CRL: active, and the previous one during a switch. */
export function crlIssuers(mesh: Mesh, scope: string): ('active' | 'previous')[] {
  return mesh.material.get(scope)!.previous ? ['active', 'previous'] : ['active'];
}

/** Why the scope's leaf CRL must be re-signed now, or undefined. */
export function leafCrlStaleness(mesh: Mesh, scope: string, now: Date): Promise<string | undefined> {
  const m = mesh.material.get(scope)!;
  const issuers = [m.intermediate, m.previous].filter((c) => c !== undefined);
  return crlStaleness(m.crlPem, issuers, m.state!.revoked, now);
}

export async function leafCrlWrite(mesh: Mesh, scope: string, signers: SigningIntermediate[], now: Date): Promise<{ path: string; content: string }> {
  const revoked = mesh.material.get(scope)!.state!.revoked;
  const crls = await Promise.all(signers.map((s) => signCrl({
    issuer: s.cert, key: s.key, algorithm: s.algorithm, thisUpdate: new Date(now.getTime() - BACKDATE_MS), nextUpdate: new Date(now.getTime() + mesh.config.crl.leaf),
    entries: crlEntriesFor(s.cert, revoked, now),
  })));
  return { path: paths.scopeCrl(scope), content: crls.join('') };
}
