/**
 * The burn statement: written by `trellis-ci activate-standby`, signed by the
 * activated standby, naming the intermediates it replaced. Hosts refuse those
 * keys for that scope from the first release that carries it, before any root
 * CRL names them (the root is offline; the statement is not). Pure.
 */
import { certificatePem, fingerprint, parseCertificate, type Certificate } from '../x509/certificates.js';
import { verifyBytes } from '../crypto/crypto.js';
import { canonicalJson } from './ledger.js';
import type { CaKey } from '../x509/seam.js';
import { parseJsonData } from '../model/data.js';

export interface Burn {
  scope: string;
  /** Fingerprints of the intermediates the standby replaced. */
  burned: string[];
  /** Their certificates (PEM), so the next ceremony can revoke them in the root CRL after they left the store. */
  certificates: string[];
  reason: string;
  at: string;
}

interface BurnEnvelope {
  statement: Burn;
  signer: string;
  signature: string;
}

export function signBurnStatement(b: Burn, signer: CaKey<'intermediate'>): string {
  const signature = Buffer.from(signer.signData(Buffer.from(canonicalJson(b))));
  const env: BurnEnvelope = {
    statement: b,
    signer: certificatePem(signer.cert),
    signature: signature.toString('base64'),
  };
  return `${JSON.stringify(env, null, 2)}\n`;
}

/**
 * Reads a burn statement: its statement and the certificate that signed it,
 * or why it is not one. Whether that signer may speak for the scope (an
 * intermediate of the scope under a pinned root) is the caller's to decide.
 */
export function readBurnStatement(text: string): { statement: Burn; signer: Certificate } | { problem: string } {
  let e: BurnEnvelope;
  try {
    e = parseJsonData<BurnEnvelope>(text);
  } catch {
    return { problem: 'the burn statement is not JSON' };
  }
  const s = e?.statement;
  if (
    !s ||
    typeof s.scope !== 'string' ||
    !Array.isArray(s.burned) ||
    !s.burned.every((x) => typeof x === 'string') ||
    !Array.isArray(s.certificates) ||
    typeof s.at !== 'string' ||
    typeof e.signer !== 'string' ||
    typeof e.signature !== 'string'
  ) {
    return { problem: 'not a trellis burn statement' };
  }
  let signer: Certificate;
  try {
    signer = parseCertificate(e.signer);
  } catch {
    return { problem: 'the burn statement signer does not parse' };
  }
  if (
    !verifyBytes(
      new Uint8Array(signer.publicKey.rawData),
      Buffer.from(canonicalJson(s)),
      Buffer.from(e.signature, 'base64'),
    )
  )
    return { problem: 'the burn statement signature does not verify' };
  if (s.burned.includes(fingerprint(signer))) return { problem: 'the burn statement names its own signer' };
  return { statement: s, signer };
}
